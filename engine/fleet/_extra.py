"""The optional packages of the fleet commands, and the one DuckDB connection setup.

DuckDB normally downloads its sqlite extension the first time a query needs it, which
fails offline. The extension is also published on PyPI as `duckdb-extension-sqlite-scanner`
(one release per DuckDB release, same version number); the `fleet` extra pins that pair,
and connect() loads the extension file from the installed package, with DuckDB's
automatic install and load turned off, so nothing reaches the network.
"""

from __future__ import annotations

import os
from importlib import metadata

from ..errors import MissingExtraError

INSTALL_HINT = 'pip install "mobstore[fleet]"'
EXTENSION_PACKAGE = "duckdb-extension-sqlite-scanner"


def _missing(what: str, exc: BaseException | None = None) -> MissingExtraError:
    detail = f" ({exc})" if exc is not None else ""
    return MissingExtraError(f"{what} is needed for this command{detail}; install it with {INSTALL_HINT}")


def duckdb_module():
    try:
        import duckdb
    except ImportError as exc:
        raise _missing("duckdb", exc) from None
    return duckdb


def pyarrow_modules():
    """(pyarrow, pyarrow.parquet)."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise _missing("pyarrow", exc) from None
    return pyarrow, pyarrow.parquet


def extension_path() -> str:
    """The sqlite extension file of the installed duckdb-extension-sqlite-scanner, for the
    installed duckdb's version exactly (DuckDB refuses an extension built for another)."""
    duckdb = duckdb_module()
    try:
        import duckdb_extension_sqlite_scanner as package
    except ImportError as exc:
        raise _missing(EXTENSION_PACKAGE, exc) from None
    version = duckdb.__version__
    try:
        packaged = metadata.version(EXTENSION_PACKAGE)
    except metadata.PackageNotFoundError:
        packaged = "unknown"
    path = os.path.join(os.path.dirname(package.__file__), "extensions", f"v{version}",
                        "sqlite_scanner.duckdb_extension")
    if not os.path.isfile(path):
        raise MissingExtraError(
            f"{EXTENSION_PACKAGE} {packaged} has no sqlite extension for duckdb {version} "
            f"(their versions must be equal); reinstall the pinned pair with {INSTALL_HINT}"
        )
    return path


def connect(*, threads: int | None = None):
    """An in-memory DuckDB connection with the sqlite extension loaded from the package.

    Settings: no automatic extension install or load (nothing is downloaded; an unknown
    function fails instead of fetching code), `threads` worker threads (default: one per
    core, DuckDB's own default)."""
    duckdb = duckdb_module()
    path = extension_path()
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if threads is not None:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    try:
        # LOAD takes no parameters; the path is our package's file, quoted as a literal.
        con.execute("LOAD " + sql_string(path))  # sql-safe: path of the installed extension file, quoted
    except BaseException:
        con.close()
        raise
    return con


def sql_string(text: str) -> str:
    """A DuckDB string literal for `text` (standard SQL: the quote doubled). Only for the
    statements that take no parameters (ATTACH, LOAD), and only for file paths."""
    if "\x00" in text:
        raise ValueError("a NUL character cannot be in a file path")
    return "'" + text.replace("'", "''") + "'"
