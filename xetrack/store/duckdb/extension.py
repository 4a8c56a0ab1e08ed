"""Where DuckDB's sqlite extension is on disk: shipped by a pip wheel, so no network.

DuckDB's own way, ``INSTALL sqlite; LOAD sqlite;``, downloads the extension from
DuckDB's server. The ``duckdb-extension-sqlite-scanner`` wheel (a dependency of
xetrack) ships the same file; ``LOAD '<path>'`` loads it offline, in Python or in the
DuckDB CLI. Nothing here imports duckdb, so asking for the path is cheap.
"""

from __future__ import annotations

import glob
import os
from importlib import metadata

from ..sqlite.spill import duckdb_views

WHEEL = "duckdb-extension-sqlite-scanner"
FILE_NAME = "sqlite_scanner.duckdb_extension"


def duckdb_version() -> str | None:
    """The installed ``duckdb`` package's version, which the bundled extension is built for."""
    try:
        return metadata.version("duckdb")
    except metadata.PackageNotFoundError:
        return None


def bundled_extension() -> str | None:
    """The extension's path in the wheel, or None when the wheel is absent."""
    try:
        import duckdb_extension_sqlite_scanner as package
    except ImportError:
        return None
    root = os.path.dirname(package.__file__)
    version = duckdb_version()
    if version is not None:
        exact = os.path.join(root, "extensions", f"v{version}", FILE_NAME)
        if os.path.exists(exact):
            return exact
    found = glob.glob(os.path.join(root, "extensions", "*", FILE_NAME))
    return found[0] if len(found) == 1 else None


def duckdb_extension_path() -> str:
    """The path of DuckDB's sqlite extension (``sqlite_scanner``) shipped by the
    ``duckdb-extension-sqlite-scanner`` wheel, to ``LOAD`` without network access.

    >>> import xetrack
    >>> xetrack.duckdb_extension_path().endswith("sqlite_scanner.duckdb_extension")
    True

    In the DuckDB CLI: ``LOAD '<path>'; ATTACH 'exp.db' AS db (TYPE sqlite);``
    (``xt duckdb exp.db`` does this for you). Raises FileNotFoundError, saying what to
    install, when the wheel (or its file for this DuckDB version) is missing.
    """
    path = bundled_extension()
    if path is None:
        version = duckdb_version()
        pin = f"=={version}" if version else ""
        raise FileNotFoundError(
            f"DuckDB's sqlite extension is not installed: pip install {WHEEL}{pin} "
            "(the wheel's version must match duckdb's). Online, DuckDB can fetch it "
            "itself: INSTALL sqlite; LOAD sqlite;"
        )
    return path


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def shell_setup_sql(db: str, write: bool, extension: str | None) -> str:
    """The statements a ``duckdb`` shell runs first to open ``db``: load the sqlite
    scanner (``extension``, a file, or installed from DuckDB's repository when None),
    attach the file (read-only unless ``write``) and make it the default schema.

    >>> shell_setup_sql("/data/exp.db", False, None)
    "INSTALL sqlite; LOAD sqlite; ATTACH '/data/exp.db' AS db (TYPE sqlite, READ_ONLY); USE db;"
    """
    load = f"LOAD {_literal(extension)};" if extension else "INSTALL sqlite; LOAD sqlite;"
    mode = "" if write else ", READ_ONLY"
    setup = f"{load} ATTACH {_literal(os.path.abspath(db))} AS db (TYPE sqlite{mode}); USE db;"
    # a table with keys past its columns: the view "<table>_all" shows them as columns
    views = duckdb_views(os.path.abspath(db)) if os.path.isfile(db) else []
    return " ".join([setup, *views])


__all__ = ["duckdb_extension_path", "bundled_extension", "shell_setup_sql"]
