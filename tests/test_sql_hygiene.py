"""STYLE.md "Bind every value; never format SQL with data": no SQL text in engine/*.py is built
by f-string, `%`, `.format()` or `+` / `+=` from a non-constant, unless the line says why it is
safe.

The marker is a comment on any line of the offending statement:

    con.execute(f"SAVEPOINT {name}")  # sql-safe: name is our own depth counter, never data

`sql-safe:` must be followed by the reason (at least three words). Only SQL-looking text is
checked: string literals that start with an SQL statement keyword or contain an upper-case
clause keyword (FROM, WHERE, VALUES, SET, JOIN, INTO, ORDER BY, GROUP BY, LIMIT).
"""

from __future__ import annotations

import ast
import os
import re

import pytest

ENGINE = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "engine"))
MARKER = re.compile(r"#\s*sql-safe:\s*(?P<why>.*)$")
SQL_TEXT = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|PRAGMA|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE"
    r"|WITH|VACUUM|ATTACH|DETACH|ANALYZE|REINDEX|EXPLAIN)\b"
    r"|\b(FROM|WHERE|VALUES|SET|JOIN|INTO|ORDER BY|GROUP BY|LIMIT)\b"
)
SQL_NAME = re.compile(r"sql|query|stmt|statement", re.IGNORECASE)


def _literal_text(node: ast.AST) -> str | None:
    """The constant text of a str literal or of an f-string's literal parts; else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return None


def _is_sql(node: ast.AST) -> bool:
    text = _literal_text(node)
    return text is not None and SQL_TEXT.search(text) is not None


def _is_plain_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _name_of(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def find_formatted_sql(source: str) -> list[tuple[int, int, str]]:
    """(first line, last line, what) of every expression that builds SQL from a non-constant."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        what = None
        if isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values):
            if _is_sql(node):
                what = "f-string"
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_sql(node.left):
            what = "% formatting"
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            sides = (node.left, node.right)
            if any(_is_sql(s) for s in sides) and not all(_is_plain_str(s) for s in sides):
                what = "+ concatenation"
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) and not _is_plain_str(node.value):
            if SQL_NAME.search(_name_of(node.target)) or _is_sql(node.value):
                what = "+= concatenation"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            receiver = node.func.value
            if _is_sql(receiver) or SQL_NAME.search(_name_of(receiver)):
                what = ".format()"
        if what:
            found.append((node.lineno, node.end_lineno or node.lineno, what))
    return found


def _statement_spans(source: str) -> list[tuple[int, int]]:
    return [(n.lineno, n.end_lineno or n.lineno) for n in ast.walk(ast.parse(source)) if isinstance(n, ast.stmt)]


def offences(source: str) -> list[tuple[int, str, str]]:
    """(line, what, source line) of formatted SQL without a justified `# sql-safe:` marker on a
    line of its innermost enclosing statement."""
    lines = source.splitlines()
    spans = _statement_spans(source)
    out = []
    seen = set()
    for first, last, what in find_formatted_sql(source):
        enclosing = min((s for s in spans if s[0] <= first and last <= s[1]), key=lambda s: s[1] - s[0],
                        default=(first, last))
        justified = False
        for n in range(enclosing[0], enclosing[1] + 1):
            m = MARKER.search(lines[n - 1])
            if m and len(m.group("why").split()) >= 3:
                justified = True
        if not justified and (first, what) not in seen:
            seen.add((first, what))
            out.append((first, what, lines[first - 1].strip()))
    return sorted(out)


def engine_files() -> list[str]:
    """Every module of the package, subpackages (cli/, fleet/, ...) included."""
    return sorted(os.path.join(root, n) for root, _dirs, names in os.walk(ENGINE) for n in names if n.endswith(".py"))


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: os.path.relpath(p, ENGINE))
def test_no_sql_formatted_with_data(path):
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    found = offences(source)
    listing = "\n".join(f"  {os.path.relpath(path, ENGINE)}:{line}: {what}: {text}" for line, what, text in found)
    assert not found, ("SQL built from non-constants; bind the value, or if it is not data add "
                       "`# sql-safe: <why>` on the statement:\n" + listing)


# The detector itself must be able to fail.

FLAGGED = [
    'con.execute(f"SELECT * FROM {table} WHERE id = ?", (x,))',
    'con.execute("DELETE FROM t WHERE id = %s" % value)',
    'con.execute("UPDATE t SET a = " + value)',
    'q = "SELECT a FROM t WHERE b = " + str(b)',
    'con.execute("SELECT {} FROM t".format(column))',
    'sql = "SELECT a FROM t WHERE b = {}"\ncon.execute(sql.format(op))',
    'sql = "SELECT 1"\nsql += user_text',
    'con.execute(f"PRAGMA user_version = {n}")',
    'con.execute(f"SAVEPOINT {name}")  # sql-safe:',
    'con.execute(f"SAVEPOINT {name}")  # sql-safe: ok',
]
CLEAN = [
    'raise ValueError(f"cannot open {path!r}: {exc}")',
    'con.execute("SELECT a FROM t WHERE b = ?", (b,))',
    'con.execute("SELECT a FROM t "\n            "WHERE b = ?", (b,))',
    'sql = "SELECT a FROM t WHERE 1"\nsql += " AND b = ?"',
    'x = "SELECT a " + "FROM t"',
    'con.execute(f"SAVEPOINT {name}")  # sql-safe: name is our own depth counter',
    'rows = con.execute(\n    f"SELECT {col} FROM t",  # sql-safe: col comes from a fixed tuple of ours\n    (),\n)',
    'label = f"message {index} of {total}"',
]


@pytest.mark.parametrize("snippet", FLAGGED)
def test_detector_flags(snippet):
    assert offences(snippet), snippet


@pytest.mark.parametrize("snippet", CLEAN)
def test_detector_passes(snippet):
    assert not offences(snippet), snippet
