"""Garbage collection and a deleted run's side rows on a SQLite file (the sqlite and
duckdb engines). :mod:`xetrack.garbage` decides; :mod:`.pg_gc` has the same functions
for PostgreSQL: :func:`delete_run`, :func:`collect`, :func:`vacuum`.

Under Tracker.SKIP_INSERT (no file) there is nothing to delete or collect.

>>> from xetrack.store import open_engine, IN_MEMORY
>>> collect(open_engine(IN_MEMORY), dry_run=True)
({}, {}, {})
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from ...schema import ASSET_COUNTS, ASSETS_TABLE, is_internal_table, quote
from ..base import Engine, has_table
from ..tables import BLOBS, CHUNKS, POINTING_TABLES, RUN_SIDE_TABLES, SPILL
from . import blobs
from .busy import retry_busy
from .engine import sqlite_of

#: The side tables with one row per run (or several), keyed by ``"track_id"`` and ``"table"``.
Collected = tuple[dict[str, int], dict[str, int], dict[str, int]]


def delete_run(engine: Engine, table: str, track_id: str) -> None:
    """Forget a deleted run's side rows (lifecycle, predictions, artifact entries, tags, name)."""
    sq = sqlite_of(engine)
    if sq is None:
        return

    def body(conn: sqlite3.Connection) -> None:
        for side in RUN_SIDE_TABLES:
            if has_table(conn, side):
                conn.execute(f'DELETE FROM {quote(side)} WHERE "track_id" = ? AND "table" = ?', (track_id, table))

    sq.write(body)


def collect(engine: Engine, dry_run: bool) -> Collected:
    """``(dead objects, dead artifact bytes, orphan chunks)``, each ``{hash: bytes}``, found
    and (unless ``dry_run``) removed in one write transaction."""
    sq = sqlite_of(engine)
    if sq is None:
        return {}, {}, {}
    return sq.write(lambda conn: _collect(conn, dry_run))


def vacuum(engine: Engine) -> int:
    """Give freed pages back to the file system (checkpoint the WAL, ``VACUUM``, checkpoint
    again); returns how many bytes the file shrank. The run summaries are dropped before and
    after (VACUUM may renumber rowids: the next read rebuilds them). 0 without a file."""
    from .summary import drop as drop_summaries  # SQLite-only tables of the run summary

    sq = sqlite_of(engine)
    if sq is None or sq.path is None:
        return 0
    sq.write(drop_summaries)
    with sq.reading() as conn:
        # In WAL mode the file only shrinks when the WAL is checkpointed into it.
        checkpoint = lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # noqa: E731
        retry_busy(checkpoint, sq.timeout, sq.path)
        before = os.path.getsize(sq.path)
        retry_busy(lambda: conn.execute("VACUUM"), sq.timeout, sq.path)
        retry_busy(checkpoint, sq.timeout, sq.path)
    sq.write(drop_summaries)  # again: another process may have built one before the VACUUM
    return max(0, before - os.path.getsize(sq.path))


def _collect(conn: sqlite3.Connection, dry_run: bool) -> Collected:
    assets = dict(_rows(conn, ASSETS_TABLE, f"SELECT key, length(value) FROM {quote(ASSETS_TABLE)}"))
    stored = dict(_rows(conn, BLOBS, f'SELECT "hash", "size" FROM {quote(BLOBS)}'))
    headless = f' WHERE "hash" NOT IN (SELECT "hash" FROM {quote(BLOBS)})' if stored else ""
    uploading = blobs.uploads_in_progress(conn, clean=not dry_run)
    orphans = {  # chunks of uploads that died before they finished
        key: size
        for key, size in _rows(
            conn, CHUNKS, f'SELECT "hash", sum(length("data")) FROM {quote(CHUNKS)}{headless} GROUP BY "hash"'
        )
        if key not in uploading
    }
    used = _referenced(conn, set(assets) | set(stored), POINTING_TABLES)
    dead_assets = {k: assets[k] or 0 for k in sorted(set(assets) - used)}
    dead_blobs = {k: stored[k] for k in sorted(set(stored) - used)}
    if dry_run:
        return dead_assets, dead_blobs, orphans
    counts = has_table(conn, ASSET_COUNTS)
    for key in dead_assets:
        conn.execute(f"DELETE FROM {quote(ASSETS_TABLE)} WHERE key = ?", (key,))
        if counts:
            conn.execute(f"DELETE FROM {quote(ASSET_COUNTS)} WHERE hash = ?", (key,))
    for key in list(dead_blobs) + sorted(orphans):
        conn.execute(f'DELETE FROM {quote(CHUNKS)} WHERE "hash" = ?', (key,))
        conn.execute(f'DELETE FROM {quote(BLOBS)} WHERE "hash" = ?', (key,))
    return dead_assets, dead_blobs, orphans


def _rows(conn: sqlite3.Connection, table: str, sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall() if has_table(conn, table) else []


def _referenced(conn: sqlite3.Connection, candidates: set[str], side_tables: Sequence[str]) -> set[str]:
    """The candidate hashes some row points at: a value of any column of any experiment
    table (a logged object), an artifact entry or a model version."""
    used: set[str] = set()
    if not candidates:
        return used
    lengths = {len(c) for c in candidates}
    for side in side_tables:
        if has_table(conn, side):
            used.update(h for (h,) in conn.execute(f'SELECT DISTINCT "hash" FROM {quote(side)}') if h in candidates)
    if has_table(conn, SPILL):  # a logged object under a key past a table's columns
        cursor = conn.execute(f'SELECT "value" FROM {quote(SPILL)} WHERE typeof("value") = \'text\'')
        used.update(v for (v,) in cursor if len(v) in lengths and v in candidates)
    names = [
        n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if not is_internal_table(n)
    ]
    for table in names:
        columns = [c for (c,) in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))]
        if not columns:
            continue
        cursor = conn.execute(f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)}")
        while True:
            batch = cursor.fetchmany(10_000)
            if not batch:
                break
            for row in batch:
                for value in row:
                    if type(value) is str and len(value) in lengths and value in candidates:
                        used.add(value)
    return used


__all__ = ["delete_run", "collect", "vacuum"]
