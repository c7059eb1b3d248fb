"""Read-only SQL over a store (Store.query, `mobstore sql`).

Why it exists: people reach for pandas or the standard library's sqlite3 to look inside the
file, and a second SQLite library opening the same file in the same process as a mobstore
writer can corrupt it (two SQLite builds in one process cancel each other's POSIX advisory
locks when one closes the file; https://www.sqlite.org/howtocorrupt.html section 2.2).
Store.query runs on the store's own connection instead, so no second library is needed.

Read-only is enforced twice: `PRAGMA query_only` for the duration of the call, and an
authorizer that allows only reading statements (SELECT, reads of columns, functions,
recursive CTEs and argument-less pragmas such as table_info). Writes, ATTACH, transaction
control and pragmas that set a value are refused before they run.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import apsw

from .errors import InvalidInputError, StoreError

MAX_QUERY_ROWS = 1_000_000  # a guard against an accidental cross join filling memory

_ALLOWED = {
    apsw.SQLITE_SELECT,
    apsw.SQLITE_READ,
    apsw.SQLITE_FUNCTION,
    apsw.SQLITE_RECURSIVE,
}
# Pragmas that only report; with an argument (p2) a pragma may set something: refused.
_READ_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "page_count", "page_size", "freelist_count", "user_version",
    "schema_version", "journal_mode", "compile_options", "integrity_check", "quick_check",
    "foreign_key_check", "database_list", "function_list", "collation_list",
})
_READ_PRAGMAS_WITH_ARGUMENT = frozenset({
    "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "integrity_check", "quick_check", "foreign_key_check",
})


class QueryResult(NamedTuple):
    """Column names and rows (tuples of SQLite values: int, float, str, bytes, None)."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def _authorize(op: int, p1: str | None, p2: str | None, _db: str | None, _trigger: str | None) -> int:
    if op in _ALLOWED:
        return apsw.SQLITE_OK
    if op == apsw.SQLITE_PRAGMA and p1 is not None:
        name = p1.lower()
        if name in _READ_PRAGMAS and (p2 is None or name in _READ_PRAGMAS_WITH_ARGUMENT):
            return apsw.SQLITE_OK
    return apsw.SQLITE_DENY


class QueryMixin:
    """Store.query: read-only SQL on the store's own connection."""

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = (), *,
              max_rows: int = MAX_QUERY_ROWS) -> QueryResult:
        """Run one read-only SQL statement (several `;`-separated statements: the last one's
        rows) in a consistent snapshot and return its columns and rows. A statement that
        would write, attach, control transactions or set a pragma raises InvalidInputError
        before it runs; more than `max_rows` rows raise InvalidInputError (add a LIMIT)."""
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidInputError("sql must be a non-empty string")
        if not isinstance(params, (list, tuple, dict)):
            raise InvalidInputError(f"params must be a list, tuple or dict, not {type(params).__name__}")
        with self.reading() as con:
            previous = con.authorizer
            (was_query_only,) = con.execute("PRAGMA query_only").fetchone()
            con.execute("PRAGMA query_only = ON")
            con.authorizer = _authorize
            try:
                described: list[tuple[str, ...]] = []
                rows: list[tuple[Any, ...]] = []

                def remember_columns(cur: apsw.Cursor, _sql: str, _bindings: Any) -> bool:
                    # Called before each statement runs, once it is prepared: the last
                    # statement's columns are known even when it returns no row.
                    described.append(tuple(d[0] for d in cur.get_description()))
                    rows.clear()  # only the last statement's rows are the answer
                    return True

                cursor = con.cursor()
                cursor.exec_trace = remember_columns
                for row in cursor.execute(sql, params):
                    rows.append(row)
                    if len(rows) > max_rows:
                        raise InvalidInputError(f"the query returned more than {max_rows:,} rows; add a LIMIT")  # sql-safe: an error message, not SQL
                columns = described[-1] if described else ()
            except apsw.AuthError:
                raise InvalidInputError("only read-only SQL is allowed (SELECT, read pragmas); "
                                        "the statement would write or change the connection") from None
            except apsw.ReadOnlyError:
                raise InvalidInputError("only read-only SQL is allowed; the statement would write") from None
            except (apsw.SQLError, apsw.BindingsError, apsw.MismatchError, apsw.RangeError) as exc:
                raise InvalidInputError(f"SQL error: {exc}") from None
            except apsw.Error as exc:
                raise StoreError(f"SQLite error: {exc}") from None
            finally:
                con.authorizer = previous
                if not was_query_only:  # a read-only store's connection stays query_only
                    con.execute("PRAGMA query_only = OFF")
        return QueryResult(columns, rows)
