"""Mob membership and reconciliation, as SQL over ms_bindings (the indexed binding facts).

The membership rule (docs/membership.md; meerkat's mob session service,
meerkat-mob/src/runtime/session_service.rs:36-71@v0.5.2): session S belongs to mob M iff
metadata.session_metadata.comms_name splits on "/" into exactly three non-empty parts
(M, profile, meerkat_id), realm_id == "mob:" + M, and peer_meta.labels has
mob_id == M, role == profile, meerkat_id == meerkat_id. Comparisons are SQLite's `=`
under BINARY collation: byte-exact (no case folding, normalisation, trimming or
pattern matching; `_`, `%`, `*` in ids are ordinary bytes).

With accept_newer=True, reconciliation also accepts what meerkat writes since
2026-04-26: realm "mob.<M>" in the rule, and a typed mob_member_binding
{mob_id, role, member} naming M (meerkat-core/src/connection.rs:254-263,423-430@c7b8518b4).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, NamedTuple

from . import _args
from .errors import InvalidInputError
from .sessions import check_text

# The rule is written once, here, in SQL that SQLite (reconcile_mob, mob_members) and DuckDB
# (engine/fleet/: many store files at once, and the Parquet export's reconcile.sql) read the
# same way: `IS DISTINCT FROM` rather than SQLite's `IS NOT`, explicit NULLS FIRST, `||`,
# CASE. Strings compare byte for byte in both (SQLite BINARY collation, DuckDB's default).
# The renderers take the SQL text of the mob id and of the accept-newer flag (a parameter
# marker such as `:mob` or `$mob`, or an expression such as getvariable('mob_id')) and the
# name of the bindings relation; none of them is ever data.


def member_rule(mob: str) -> str:
    """The membership rule over one bindings row aliased b; `mob` is the SQL text of the mob id."""
    return f"""
    b.comms_mob = {mob} AND b.comms_parts = 3 AND b.comms_mob <> ''
    AND b.comms_profile <> '' AND b.comms_member <> ''
    AND b.realm_id = 'mob:' || {mob}
    AND b.label_mob_id = {mob} AND b.label_role = b.comms_profile AND b.label_meerkat_id = b.comms_member
"""  # sql-safe: mob is a parameter marker or expression chosen by our code, never data


def claim_condition(mob: str) -> str:
    """True for every bindings row (aliased b) that could claim the mob under either
    accept_newer setting: the rows claims_cte reads. The fleet asks each SQLite file for
    these rows (an indexed search) and judges them in DuckDB."""
    return f"(b.comms_mob = {mob} OR b.binding_mob_id = {mob})"  # sql-safe: mob is a marker chosen by our code


def claims_cte(bindings: str, mob: str, newer: str) -> str:
    """A `claims AS (...)` CTE for a WITH clause: every row of `bindings` that claims the mob,
    with `via` saying through which field. `newer` is the SQL text of the accept-newer flag:
    with it the typed mob_member_binding claims too."""
    return f"""
claims AS (
    SELECT b.*,
        CASE
            WHEN {newer} AND b.binding_mob_id = {mob} THEN 'binding'
            WHEN b.comms_mob = {mob} THEN 'comms'
        END AS via
    FROM {bindings} b
    WHERE b.comms_mob = {mob}
    UNION ALL
    SELECT b.*, 'binding' FROM {bindings} b
    WHERE {newer} AND b.binding_mob_id = {mob} AND (b.comms_mob IS DISTINCT FROM {mob})
)"""  # sql-safe: relation name and markers are chosen by our code, never data


def judgement(mob: str, newer: str) -> str:
    """The select list judging one row of `claims`: its profile, its meerkat_id and the
    first reason it fails the rule (NULL for a valid member). With `newer`, realm "mob.<M>"
    is accepted too."""
    return f"""
    CASE via WHEN 'binding' THEN binding_role ELSE comms_profile END AS profile,
    CASE via WHEN 'binding' THEN binding_member ELSE comms_member END AS meerkat_id,
    CASE
        WHEN via = 'binding' THEN
            CASE
                WHEN comms_mob IS NOT NULL AND comms_parts = 3
                     AND (comms_mob IS DISTINCT FROM {mob} OR comms_profile IS DISTINCT FROM binding_role
                          OR comms_member IS DISTINCT FROM binding_member)
                    THEN 'binding_conflicts_comms_name'
                WHEN binding_role = '' OR binding_member = '' THEN 'binding_empty_part'
            END
        WHEN comms_parts <> 3 THEN 'comms_name_not_three_parts'
        WHEN comms_mob = '' OR comms_profile = '' OR comms_member = '' THEN 'comms_name_empty_part'
        WHEN realm_id IS NULL THEN 'realm_missing'
        WHEN NOT (realm_id = 'mob:' || {mob} OR ({newer} AND realm_id = 'mob.' || {mob})) THEN 'realm_mismatch'
        WHEN has_peer_meta = 0 THEN 'peer_meta_missing'
        WHEN label_mob_id IS NULL AND label_role IS NULL AND label_meerkat_id IS NULL THEN 'labels_missing'
        WHEN label_mob_id IS DISTINCT FROM {mob} THEN 'label_mob_id_mismatch'
        WHEN label_role IS DISTINCT FROM comms_profile THEN 'label_role_mismatch'
        WHEN label_meerkat_id IS DISTINCT FROM comms_member THEN 'label_meerkat_id_mismatch'
    END AS reason"""  # sql-safe: markers are chosen by our code, never data


# Claims are listed in this order everywhere (SQLite sorts NULL first by default, DuckDB last).
CLAIM_ORDER = "profile NULLS FIRST, meerkat_id NULLS FIRST, session_id"

_BELONGS_SQL = f"SELECT EXISTS (SELECT 1 FROM ms_bindings b WHERE b.session_id = ?2 AND {member_rule('?1')})"  # sql-safe: module constant, values bound

_MEMBERS_SQL = f"""
SELECT b.session_id, b.comms_profile, b.comms_member FROM ms_bindings b
WHERE {member_rule('?1')}
ORDER BY b.comms_profile, b.comms_member, b.session_id
"""  # sql-safe: module constant, values bound

# Every session that claims mob M, with whether it is valid and, if not, the first reason.
# :newer = 1 also accepts realm "mob.<M>" and the typed mob_member_binding.
_CLAIMS_SQL = f"""
WITH {claims_cte('ms_bindings', ':mob', ':newer')}
SELECT session_id, comms_name, realm_id, {judgement(':mob', ':newer')}
FROM claims
ORDER BY {CLAIM_ORDER}
"""  # sql-safe: module constant, values bound

class Member(NamedTuple):
    """A valid member of a mob. A tuple: mob_members builds 1,000 of them in well under a
    millisecond (a frozen dataclass costs several times more per instance)."""

    session_id: str
    profile: str
    meerkat_id: str


@dataclasses.dataclass(frozen=True)
class BrokenClaim:
    """A session whose metadata names the mob but fails the rule; `reason` is a code:
    comms_name_not_three_parts, comms_name_empty_part, realm_missing, realm_mismatch,
    peer_meta_missing, labels_missing, label_mob_id_mismatch, label_role_mismatch,
    label_meerkat_id_mismatch (and, with accept_newer, binding_conflicts_comms_name,
    binding_empty_part)."""

    session_id: str
    reason: str
    comms_name: str | None
    realm_id: str | None


@dataclasses.dataclass(frozen=True)
class Duplicate:
    """Several sessions validly claiming the same (mob, profile, meerkat_id)."""

    profile: str
    meerkat_id: str
    session_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Reconciliation:
    mob_id: str
    members: tuple[Member, ...]
    missing: tuple[tuple[str, str], ...]      # roster (profile, meerkat_id) with no valid session
    unexpected: tuple[Member, ...]            # valid members not in the roster
    broken: tuple[BrokenClaim, ...]
    duplicates: tuple[Duplicate, ...]
    roster_given: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.broken or self.duplicates)

    def to_dict(self) -> dict:
        return {
            "mob_id": self.mob_id,
            "ok": self.ok,
            "members": [m._asdict() for m in self.members],
            "missing": [{"profile": p, "meerkat_id": m} for p, m in self.missing],
            "unexpected": [m._asdict() for m in self.unexpected],
            "broken": [dataclasses.asdict(b) for b in self.broken],
            "duplicates": [
                {"profile": d.profile, "meerkat_id": d.meerkat_id, "session_ids": list(d.session_ids)}
                for d in self.duplicates
            ],
            "roster_given": self.roster_given,
        }


def _roster_pairs(roster: Iterable) -> set[tuple[str, str]]:
    if isinstance(roster, (str, bytes, dict)):
        raise InvalidInputError(f"roster must be a list of (profile, meerkat_id) pairs, not {type(roster).__name__}")
    try:
        entries = iter(roster)
    except TypeError:
        raise InvalidInputError(f"roster must be a list of (profile, meerkat_id) pairs, not {type(roster).__name__}") from None
    pairs = set()
    for i, entry in enumerate(entries):
        if isinstance(entry, str) or not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise InvalidInputError(f"roster[{i}] must be a (profile, meerkat_id) pair, not {entry!r}")
        pairs.add((check_text(entry[0], f"roster[{i}][0]"), check_text(entry[1], f"roster[{i}][1]")))
    return pairs


@dataclasses.dataclass(frozen=True)
class MobSummary:
    """One mob named in a store: how many sessions claim it, how many are valid members,
    how many claims are broken, and how many (profile, meerkat_id) slots are duplicated."""

    mob_id: str
    claims: int
    members: int
    broken: int
    duplicated_slots: int


_MOB_IDS_SQL = """
SELECT comms_mob FROM ms_bindings WHERE comms_mob IS NOT NULL
UNION
SELECT binding_mob_id FROM ms_bindings WHERE :newer AND binding_mob_id IS NOT NULL
ORDER BY 1
"""


class MembershipMixin:
    """session_belongs_to_mob, mob_members and reconcile_mob of Store."""

    def session_belongs_to_mob(self, session_id: str, mob_id: str) -> bool:
        """The membership rule for one session, as one indexed SQL statement (primary-key lookup on
        ms_bindings). Unknown session or missing metadata -> False.

        Runs: SELECT EXISTS (SELECT 1 FROM ms_bindings b WHERE b.session_id = ? AND <membership rule>)"""
        if not isinstance(session_id, str) or not isinstance(mob_id, str):
            raise InvalidInputError("session_id and mob_id must be strings")
        try:
            with self._statement() as con:
                return con.execute(_BELONGS_SQL, (mob_id, session_id)).fetchone()[0] == 1
        except UnicodeEncodeError:
            raise InvalidInputError("session_id or mob_id contains a lone surrogate") from None

    def mob_members(self, mob_id: str) -> list[Member]:
        """Valid members of mob M by the membership rule, ordered by (profile, meerkat_id, session_id).

        Runs: one range scan of the covering index ms_bindings_comms_mob."""
        check_text(mob_id, "mob_id")
        with self._statement() as con:
            rows = con.execute(_MEMBERS_SQL, (mob_id,)).fetchall()
        return list(map(Member._make, rows))

    def mobs(self, *, accept_newer: bool = False) -> list[MobSummary]:
        """Every mob id that some session claims (comms_name's first part; with accept_newer
        also mob_member_binding.mob_id), with its member / broken / duplicate counts under the
        same rule as reconcile_mob. Sorted by mob id.

        Runs: SELECT DISTINCT mob ids from ms_bindings' indexes, then reconcile_mob's one
        query per mob (each an index range: the total work is proportional to the claims)."""
        _args.flag(accept_newer, "accept_newer")
        with self.reading() as con:
            mob_ids = [row[0] for row in con.execute(_MOB_IDS_SQL, {"newer": 1 if accept_newer else 0})]
            out = []
            for mob_id in mob_ids:
                rec = self.reconcile_mob(mob_id, accept_newer=accept_newer)
                out.append(MobSummary(mob_id, len(rec.members) + len(rec.broken), len(rec.members),
                                      len(rec.broken), len(rec.duplicates)))
        return out

    def reconcile_mob(
        self, mob_id: str, roster: Iterable[tuple[str, str]] | None = None, *, accept_newer: bool = False
    ) -> Reconciliation:
        """Members, broken claims, duplicates and (given a roster) the roster diff of mob M,
        from one snapshot of the file. accept_newer also accepts realm "mob.<M>" and the
        typed mob_member_binding (newer meerkat); off by default (the strict rule).

        Runs: one query over the claims of M (index ms_bindings_comms_mob, plus
        ms_bindings_binding_mob with accept_newer); the roster diff is a set difference
        over that result."""
        check_text(mob_id, "mob_id")
        _args.flag(accept_newer, "accept_newer")
        wanted = None if roster is None else _roster_pairs(roster)
        params = {"mob": mob_id, "newer": 1 if accept_newer else 0}
        with self._statement() as con:
            claims = con.execute(_CLAIMS_SQL, params).fetchall()
        members: list[Member] = []
        broken: list[BrokenClaim] = []
        for session_id, comms_name, realm_id, profile, meerkat_id, reason in claims:
            if reason is None:
                members.append(Member(session_id, profile, meerkat_id))
            else:
                broken.append(BrokenClaim(session_id, reason, comms_name, realm_id))
        by_slot: dict[tuple[str, str], list[str]] = {}
        for m in members:
            by_slot.setdefault((m.profile, m.meerkat_id), []).append(m.session_id)
        duplicates = tuple(Duplicate(p, k, tuple(ids)) for (p, k), ids in by_slot.items() if len(ids) > 1)
        if wanted is None:
            missing: tuple = ()
            unexpected: tuple = ()
        else:
            missing = tuple(sorted(wanted - by_slot.keys()))
            unexpected = tuple(m for m in members if (m.profile, m.meerkat_id) not in wanted)
        return Reconciliation(
            mob_id=mob_id,
            members=tuple(members),
            missing=missing,
            unexpected=unexpected,
            broken=tuple(broken),
            duplicates=duplicates,
            roster_given=wanted is not None,
        )
