"""What the CLI asks an engine for beyond rows: the declared and the engine's own
column types (``xt columns``), the stored objects (``xt assets ls``) and the user's own
SQL (``xt sql``), for the SQLite engine (and DuckDB's, on the same file); the DuckDB
and PostgreSQL packages have their own ``user_sql.py``. The defaults are on
:class:`~xetrack.store.base.Engine`.

The user's SQL is the one place where text a user typed runs as SQL: on the engine's
user connection (the database attached as ``db``), never on the one xetrack writes with.

>>> from xetrack.store import open_engine, IN_MEMORY
>>> open_engine(IN_MEMORY).run_sql("SELECT 1 AS one")
(['one'], [(1,)], -1)
"""

from __future__ import annotations

from typing import Any

from ...schema import ASSET_COUNTS, ASSETS_TABLE, quote
from ..base import SQLError
from ..tables import MODELS
from .guard import FileGuard

#: The model registry's versions table (``xetrack.models``): stored objects it points at are counted.

Result = tuple["list[str] | None", "list[tuple[Any, ...]]", int]


class SQLiteUserSQL:
    """For :class:`~xetrack.store.sqlite.engine.SQLiteEngine` (and DuckDB's, on the same file)."""

    _guard: FileGuard
    _live: Any
    conn: Any
    columns: Any
    query: Any

    def declared_types(self, table: str) -> dict[str, str]:
        self.columns(table)  # raises TableNotFoundError, naming the tables
        with self._guard.lock:
            rows = self._live().execute("SELECT name, type FROM pragma_table_info(?)", (table,)).fetchall()
        return {name: (decl or "") for name, decl in rows}

    def asset_listing(self) -> list[tuple[str, int, int, int]]:
        tables = {
            n
            for (n,) in self.query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)", (ASSET_COUNTS, MODELS)
            )
        }
        refs = f"coalesce((SELECT c.count FROM {quote(ASSET_COUNTS)} c WHERE c.hash = a.key), 0)"
        models = f"(SELECT count(*) FROM {quote(MODELS)} m WHERE m.hash = a.key AND m.kind = 'asset')"
        # length() reads a blob's size without loading it
        listing: list[tuple[str, int, int, int]] = self.query(
            f"SELECT a.key, length(a.value), {refs if ASSET_COUNTS in tables else 0}, "
            f"{models if MODELS in tables else 0} FROM {quote(ASSETS_TABLE)} a ORDER BY a.rowid"
        )
        return listing

    def run_sql(self, query: str) -> Result:
        import sqlite3

        try:
            cursor = self.conn.execute(query)
            names = [d[0] for d in cursor.description] if cursor.description else None
            rows = cursor.fetchall() if names is not None else []
        except (sqlite3.Error, sqlite3.Warning) as exc:
            raise SQLError(str(exc)) from None
        return names, rows, cursor.rowcount


__all__ = ["SQLiteUserSQL"]
