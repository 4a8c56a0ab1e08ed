"""What the CLI asks an engine for beyond rows: the declared and the engine's own
column types (``xt columns``), the stored objects (``xt assets ls``) and the user's own
SQL (``xt sql``). One mixin per engine, mixed into its class; the defaults are on
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

#: The model registry's versions table (``xetrack.models``): stored objects it points at are counted.

Result = tuple["list[str] | None", "list[tuple[Any, ...]]", int]


class SQLiteUserSQL:
    """For :class:`~xetrack.store.sqlite.engine.SQLiteEngine` (and DuckDB's, on the same file)."""

    _guard: Any
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
        tables = {n for (n,) in self.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
                                           (ASSET_COUNTS, MODELS))}
        refs = f"coalesce((SELECT c.count FROM {quote(ASSET_COUNTS)} c WHERE c.hash = a.key), 0)"
        models = f"(SELECT count(*) FROM {quote(MODELS)} m WHERE m.hash = a.key AND m.kind = 'asset')"
        # length() reads a blob's size without loading it
        return self.query(f"SELECT a.key, length(a.value), {refs if ASSET_COUNTS in tables else 0}, "
                          f"{models if MODELS in tables else 0} FROM {quote(ASSETS_TABLE)} a ORDER BY a.rowid")

    def run_sql(self, query: str) -> Result:
        import sqlite3

        try:
            cursor = self.conn.execute(query)
            names = [d[0] for d in cursor.description] if cursor.description else None
            rows = cursor.fetchall() if names is not None else []
        except (sqlite3.Error, sqlite3.Warning) as exc:
            raise SQLError(str(exc)) from None
        return names, rows, cursor.rowcount


class DuckDBUserSQL:
    """For the DuckDB engines, on a SQLite file or a PostgreSQL server: ``conn`` is DuckDB
    with the database attached as ``db``."""

    conn: Any
    columns: Any

    def native_types(self, table: str) -> dict[str, str]:
        self.columns(table)  # raises TableNotFoundError, naming the tables
        return {row[0]: row[1] for row in self.conn.execute(f"DESCRIBE db.{quote(table)}").fetchall()}

    def run_sql(self, query: str) -> Result:
        import duckdb

        conn = self.conn
        try:
            conn.execute("USE db")  # unqualified names resolve in the database, too
            result = conn.execute(query)
            names, rows = list(result.columns), result.fetchall()
        except duckdb.Error as exc:
            raise SQLError(str(exc)) from None
        if names == ["NULL"] and not rows:  # a statement with no result set
            return None, [], -1
        return names, rows, -1


class PostgresUserSQL:
    """For :class:`~xetrack.store.postgres.engine.PostgresEngine`: ``conn`` is a psycopg
    connection in autocommit, the user's own."""

    conn: Any
    _run: Any
    _url: str

    def asset_listing(self) -> list[tuple[str, int, int, int]]:
        from psycopg import sql

        from ..postgres.blobs import has_table

        def read(conn: Any) -> list[tuple[Any, ...]]:
            if not has_table(conn, ASSETS_TABLE):
                return []
            refs = (sql.SQL("coalesce((SELECT c.count FROM {} c WHERE c.hash = a.key), 0)").format(sql.Identifier(ASSET_COUNTS))
                    if has_table(conn, ASSET_COUNTS) else sql.SQL("0"))
            models = (sql.SQL("(SELECT count(*) FROM {} m WHERE m.hash = a.key AND m.kind = 'asset')").format(
                sql.Identifier(MODELS)) if has_table(conn, MODELS) else sql.SQL("0"))
            query = sql.SQL("SELECT a.key, octet_length(a.value), {}, {} FROM {} a ORDER BY a.seq").format(
                refs, models, sql.Identifier(ASSETS_TABLE))
            return [(k, int(n), int(r), int(m)) for k, n, r, m in conn.execute(query).fetchall()]

        return self._run(read)

    def run_sql(self, query: str) -> Result:
        import psycopg

        from ..postgres.connect import scrub

        try:
            cursor = self.conn.execute(query)
            names = [d.name for d in cursor.description] if cursor.description else None
            rows = cursor.fetchall() if names is not None else []
        except psycopg.Error as exc:
            raise SQLError(scrub(str(exc).strip(), self._url)) from None
        return names, rows, cursor.rowcount


__all__ = ["SQLiteUserSQL", "DuckDBUserSQL", "PostgresUserSQL"]
