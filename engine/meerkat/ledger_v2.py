"""meerkat 0.8.10, session-store ledger version 2: the `meerkat_schema` ledger and
`session_strand_links` strand supersession (meerkat-store/src/sqlite_store.rs:92-105@c7b8518b4).

A linked strand owns [splice_start, splice_end) and any tail beyond strand_len; index
i < splice_start is successor row i, and splice_end <= i < strand_len is successor row
i - splice_end + successor_end (meerkat-core/src/session_store.rs:5991-6103@c7b8518b4).
"""

from __future__ import annotations

from . import heads
from ._common import Damaged

WHERE = "session_strand_links"


def strand_links(realm, sid: str) -> dict[str, tuple[str, int, int, int, int]]:
    if WHERE not in realm.tables:
        return {}
    links = {}
    for strand, successor, length, start, end, succ_end in realm.rows(
        "SELECT strand, successor, strand_len, splice_start, splice_end, successor_end "
        "FROM session_strand_links WHERE session_id = ?",
        (sid,),
    ):
        numbers = (length, start, end, succ_end)
        if not (isinstance(strand, str) and isinstance(successor, str) and all(type(n) is int for n in numbers)
                and 0 <= start <= end <= length and 0 <= start <= succ_end):
            raise Damaged(WHERE, f"malformed link of strand {strand!r}")
        links[strand] = (successor, length, start, end, succ_end)
    return links


def resolve_strand(realm, sid, strand, start, end, links, hops) -> list[bytes]:
    """Logical rows [start, end) of `strand`, following supersession links."""
    if start >= end:
        return []
    link = links.get(strand)
    if link is None:
        return heads.physical_rows(realm, sid, strand, start, end)
    if hops <= 0:
        raise Damaged(WHERE, f"strand links cycle through {strand!r}")
    successor, length, s_start, s_end, succ_end = link
    out: list[bytes] = []
    linked_end = min(end, length)
    if start < min(s_start, linked_end):  # shared prefix
        out += resolve_strand(realm, sid, successor, start, min(s_start, linked_end), links, hops - 1)
    lo, hi = max(start, s_start), min(s_end, linked_end)
    if lo < hi:  # the span this strand owns
        out += heads.physical_rows(realm, sid, strand, lo, hi)
    lo = max(start, s_end)
    if lo < linked_end:  # shared suffix
        out += resolve_strand(realm, sid, successor, lo - s_end + succ_end, linked_end - s_end + succ_end,
                              links, hops - 1)
    if max(start, length) < end:  # tail appended after the link was written
        out += heads.physical_rows(realm, sid, strand, max(start, length), end)
    return out
