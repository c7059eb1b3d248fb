"""The fleet's SQL, rendered from the membership rule in engine/membership.py (never a copy).

Two renderings of one reconciliation query:
- over SQLite store files: DuckDB asks each file for its claim rows (an indexed search in
  SQLite) into a table, then runs the query with the mob, the accept-newer flag and the
  roster bound as parameters;
- over a Parquet export: reconcile.sql, shipped in this package and copied into every
  export, reads bindings/store=*/*.parquet and takes its inputs from DuckDB variables.
  tests/test_fleet.py checks that the file is exactly reconcile_sql_file() and that both
  renderings give reconcile_mob's answers.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

from ..membership import claim_condition, claims_cte, judgement, member_rule
from ..sessions import BindingFacts

# ms_bindings' columns in schema order with their DuckDB types (BindingFacts is the row).
BINDING_COLUMNS: tuple[tuple[str, str], ...] = (("session_id", "VARCHAR"),) + tuple(
    (f.name, "BIGINT" if str(f.type).startswith("int") else "VARCHAR") for f in dataclasses.fields(BindingFacts)
)
_COLUMN_LIST = ", ".join(name for name, _type in BINDING_COLUMNS)

# What each SQLite file is asked (one statement, so one read snapshot per file); ?1 = mob id.
SQLITE_CLAIM_ROWS = f"SELECT {_COLUMN_LIST} FROM ms_bindings b WHERE {claim_condition('?1')}"  # sql-safe: column names from BindingFacts, marker bound

# The DuckDB table those rows land in: idx numbers the store in fleet_stores.
CLAIMS_TABLE_DDL = (
    "CREATE OR REPLACE TABLE fleet_claims (idx INTEGER NOT NULL, "
    + ", ".join(f"{name} {kind}" for name, kind in BINDING_COLUMNS)
    + ")"
)  # sql-safe: column names and types from BindingFacts
STORES_TABLE_DDL = "CREATE OR REPLACE TABLE fleet_stores (idx INTEGER PRIMARY KEY, store VARCHAR NOT NULL, path VARCHAR NOT NULL)"
ROSTER_TABLE_DDL = "CREATE OR REPLACE TABLE fleet_roster (profile VARCHAR NOT NULL, meerkat_id VARCHAR NOT NULL)"

# The loaded claim rows as a bindings relation with a store column.
LOADED_BINDINGS = "(SELECT s.store, c.* EXCLUDE (idx) FROM fleet_claims c JOIN fleet_stores s USING (idx))"

FINDINGS = ("broken", "duplicate", "member", "missing", "unexpected")
RESULT_COLUMNS = ("finding", "store", "session_id", "profile", "meerkat_id", "reason", "comms_name", "realm_id")


def reconcile_query(bindings: str, *, mob: str, newer: str, roster: str, roster_given: str, inputs: str = "") -> str:
    """The fleet reconciliation of one mob as one SELECT: a row per finding.

    `bindings` is a relation with ms_bindings' columns plus `store`; `roster` a relation of
    (profile, meerkat_id); the other arguments are SQL text of the mob id, the accept-newer
    flag and whether a roster was given; `inputs`, CTEs placed first (that those may name).
    Findings (column `finding`):
      member     a valid member (store, session_id, profile, meerkat_id);
      broken     a claim failing the rule, with the first reason, comms_name and realm_id;
      duplicate  a member whose (profile, meerkat_id) slot has more than one valid claim
                 anywhere in the fleet (in one store or across stores);
      missing    a roster slot with no valid member in any store;
      unexpected a member whose slot is not in the roster (only when a roster is given).
    Sorted by finding, profile, meerkat_id, session_id, store (NULLs first)."""
    return f"""WITH {inputs}{claims_cte(bindings, mob, newer)},
judged AS (
    SELECT store, session_id, comms_name, realm_id, {judgement(mob, newer)}
    FROM claims
),
members AS (SELECT store, session_id, profile, meerkat_id FROM judged WHERE reason IS NULL),
slots AS (SELECT profile, meerkat_id, count(*) AS claims FROM members GROUP BY profile, meerkat_id),
wanted AS (SELECT DISTINCT r.profile, r.meerkat_id FROM {roster} r)
SELECT 'member' AS finding, store, session_id, profile, meerkat_id,
       CAST(NULL AS VARCHAR) AS reason, CAST(NULL AS VARCHAR) AS comms_name, CAST(NULL AS VARCHAR) AS realm_id
FROM members
UNION ALL
SELECT 'broken', store, session_id, profile, meerkat_id, reason, comms_name, realm_id
FROM judged WHERE reason IS NOT NULL
UNION ALL
SELECT 'duplicate', m.store, m.session_id, m.profile, m.meerkat_id, NULL, NULL, NULL
FROM members m JOIN slots s ON s.profile = m.profile AND s.meerkat_id = m.meerkat_id
WHERE s.claims > 1
UNION ALL
SELECT 'missing', NULL, NULL, w.profile, w.meerkat_id, NULL, NULL, NULL
FROM wanted w
WHERE NOT EXISTS (SELECT 1 FROM slots s WHERE s.profile = w.profile AND s.meerkat_id = w.meerkat_id)
UNION ALL
SELECT 'unexpected', m.store, m.session_id, m.profile, m.meerkat_id, NULL, NULL, NULL
FROM members m
WHERE {roster_given}
  AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.profile = m.profile AND w.meerkat_id = m.meerkat_id)
ORDER BY finding, profile NULLS FIRST, meerkat_id NULLS FIRST, session_id NULLS FIRST, store NULLS FIRST
"""  # sql-safe: relations and markers are chosen by our code, never data


def members_query(bindings: str, *, mob: str) -> str:
    """Valid members of a mob by the membership rule, across stores."""
    return f"""SELECT b.store, b.session_id, b.comms_profile AS profile, b.comms_member AS meerkat_id
FROM {bindings} b
WHERE {member_rule(mob)}
ORDER BY profile, meerkat_id, session_id, b.store
"""  # sql-safe: relation and marker are chosen by our code, never data


# Over the loaded claim rows, inputs bound: $mob, $newer (BOOLEAN), $roster_given (BOOLEAN).
FLEET_RECONCILE_SQL = reconcile_query(
    LOADED_BINDINGS, mob="$mob", newer="$newer", roster="fleet_roster", roster_given="$roster_given")
FLEET_MEMBERS_SQL = members_query(LOADED_BINDINGS, mob="$mob")

# ------------------------------------------------------------------------------------------
# reconcile.sql: the same query over a Parquet export, inputs from DuckDB variables.

# Inputs inline rather than in a params CTE: DuckDB folds getvariable() to a constant and
# pushes `comms_mob = <mob>` into the Parquet scan; through a scalar subquery it could not
# (measured on 1,000 store partitions: 1.38 s with a params CTE, 0.76 s inline, medians of 6).
_MOB = "coalesce(CAST(getvariable('mob_id') AS VARCHAR), error('SET VARIABLE mob_id first'))"
_NEWER = "coalesce(CAST(getvariable('accept_newer') AS BOOLEAN), false)"
_PARQUET_INPUTS = """
roster AS (SELECT r.profile, r.meerkat_id FROM (SELECT unnest(getvariable('roster')) AS r) AS given),
bindings AS (
    SELECT * FROM read_parquet(coalesce(getvariable('export_dir'), '.') || '/bindings/*/*.parquet',
                               hive_partitioning = true, hive_types = {'store': VARCHAR})
),"""

_HEADER = """\
-- mobstore fleet reconciliation over a Parquet export (mobstore export-parquet).
--
-- Generated from engine/membership.py by engine/fleet/sql.py (reconcile_sql_file); the same
-- rule and query as `mobstore fleet reconcile` and Store.reconcile_mob. Do not edit: the
-- tests check this file is exactly what the renderer writes. docs/fleet.md explains it.
--
-- Inputs (DuckDB variables; SET VARIABLE name = value; before running the file):
--   mob_id        VARCHAR, required       the mob to reconcile
--   accept_newer  BOOLEAN, default false  also accept realm "mob.<M>" and mob_member_binding
--   roster        LIST of STRUCT(profile VARCHAR, meerkat_id VARCHAR), optional
--                 the expected members, e.g. [{'profile': 'coder', 'meerkat_id': 'agent-7'}]
--                 or from a file: (SELECT list({'profile': profile, 'meerkat_id': meerkat_id})
--                                  FROM read_csv('roster.csv', all_varchar = true))
--   export_dir    VARCHAR, default '.'    the export directory (it holds bindings/store=<id>/)
--
--   (echo "SET VARIABLE mob_id = 'crew'; SET VARIABLE export_dir = 'out';"; cat out/reconcile.sql) | duckdb
--
-- Output: one row per finding, columns finding, store, session_id, profile, meerkat_id,
-- reason, comms_name, realm_id; findings member, broken (reason = the first rule the claim
-- fails), duplicate (a slot with more than one valid claim in the whole fleet), missing and
-- unexpected (against the roster, when one is set).
--
-- Other engines (Spark SQL, Trino): register bindings/ as a table partitioned by store (a
-- string) in place of the `bindings` CTE, give the `roster` CTE your roster table, and
-- replace each getvariable(...) expression with a parameter or literal; the rest is plain
-- SQL (CASE, IS DISTINCT FROM, UNION ALL, NOT EXISTS, NULLS FIRST).
"""


def reconcile_sql_file() -> str:
    """The text of reconcile.sql: the header and the reconciliation over the export."""
    return _HEADER + "\n" + reconcile_query(
        "bindings",
        inputs=_PARQUET_INPUTS,
        mob=_MOB,
        newer=_NEWER,
        roster="roster",
        roster_given="(getvariable('roster') IS NOT NULL)",
    ).rstrip("\n") + ";\n"


def packaged_reconcile_sql() -> str:
    """reconcile.sql as shipped inside the installed package."""
    return resources.files("engine.fleet").joinpath("reconcile.sql").read_text(encoding="utf-8")

