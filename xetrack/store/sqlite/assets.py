"""The asset store on a SQLite file (objects logged by value, pickled once by hash): the
engine's asset methods (a mixin of :class:`~xetrack.store.sqlite.engine.SQLiteEngine`),
and the writes that go with a row's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from ...schema import ASSET_COUNTS, ASSETS_TABLE, quote
from ..base import AssetWrites
from .busy import retry_busy
from .faults import surfaces_faults
from .guard import FileGuard
from .limits import check_pickle_size


class SQLiteAssets:
    """The asset methods of :class:`~xetrack.store.sqlite.engine.SQLiteEngine`."""

    path: str | None
    timeout: float
    _guard: FileGuard
    _live: Callable[[], sqlite3.Connection]
    _checked: Callable[..., Any]
    _writing: Callable[..., Any]
    _asset_query: Callable[..., list[tuple[Any, ...]]]  # SQLiteEngine.query, whatever a subclass reads with

    # -- assets -----------------------------------------------------------------
    def asset_get(self, key: str) -> bytes | None:
        rows = self._asset_query(f"SELECT value FROM {quote(ASSETS_TABLE)} WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def has_asset(self, key: str) -> bool:
        return bool(self._asset_query(f"SELECT 1 FROM {quote(ASSETS_TABLE)} WHERE key = ?", (key,)))

    def asset_keys(self) -> list[str]:
        return [k for (k,) in self._asset_query(f"SELECT key FROM {quote(ASSETS_TABLE)} ORDER BY rowid")]

    def asset_count(self) -> int:
        rows = self._asset_query(f"SELECT count(*) FROM {quote(ASSETS_TABLE)}")
        return rows[0][0] if rows else 0

    def asset_refs(self, key: str) -> int:
        rows = self._asset_query(f"SELECT count FROM {quote(ASSET_COUNTS)} WHERE hash = ?", (key,))
        return rows[0][0] if rows else 0

    @surfaces_faults
    def asset_delete(self, key: str, table: str | None = None, column: str | None = None) -> int:
        with self._guard.lock:
            conn = self._live()
            if table is not None and column is not None:
                self._checked(conn, table, {column: None})

            def write() -> int:
                with self._writing(conn, table or ASSETS_TABLE):
                    create_asset_tables(conn)
                    conn.execute(f"DELETE FROM {quote(ASSETS_TABLE)} WHERE key = ?", (key,))
                    conn.execute(f"DELETE FROM {quote(ASSET_COUNTS)} WHERE hash = ?", (key,))
                    if table is None or column is None:
                        return 0
                    cur = conn.execute(
                        f"UPDATE {quote(table)} SET {quote(column)} = NULL WHERE {quote(column)} = ?",
                        (key,),
                    )
                    return cur.rowcount

            return retry_busy(write, self.timeout, self.path)


def create_asset_tables(conn: sqlite3.Connection) -> None:
    # The assets table is sqlitedict's own layout, so SqliteDict(db, tablename="assets")
    # opens it and pickle.loads gives the objects back.
    conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(ASSETS_TABLE)} (key TEXT PRIMARY KEY, value BLOB)")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(ASSET_COUNTS)} (hash TEXT PRIMARY KEY, count INTEGER NOT NULL)")


def write_assets(conn: sqlite3.Connection, assets: AssetWrites) -> None:
    """Inside the rows' transaction: store new blobs once, count the rows pointing at each."""
    create_asset_tables(conn)
    for key, data in assets.blobs.items():
        check_pickle_size(conn, key, data)
        conn.execute(
            f"INSERT OR IGNORE INTO {quote(ASSETS_TABLE)} (key, value) VALUES (?, ?)",
            (key, sqlite3.Binary(data)),
        )
    for key, n in assets.refs.items():
        conn.execute(
            f"INSERT INTO {quote(ASSET_COUNTS)} (hash, count) "
            f"SELECT ?, ? WHERE EXISTS (SELECT 1 FROM {quote(ASSETS_TABLE)} WHERE key = ?) "
            "ON CONFLICT (hash) DO UPDATE SET count = count + excluded.count",
            (key, n, key),
        )
