"""Cleaning up: the side rows of a deleted run, and garbage collection of stored bytes.

Deleting a run deletes its rows and its side rows (lifecycle, predictions, artifact
entries), never bytes: another run, a row of another table or a model version may point
at the same ones. ``gc`` removes stored objects and artifact bytes nothing points at any
more, and the chunks of uploads that died before they finished.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any, Sequence

from .artifacts import ARTIFACTS
from .assets import HASH_LENGTH
from .schema import ASSET_COUNTS, ASSETS_TABLE, is_internal_table, quote
from .store import blobs, sqlite_engine
from .store.base import has_table
from .store.busy import retry_busy


def delete_run(engine: Any, table: str, track_id: str) -> None:
    """Forget a deleted run's side rows (lifecycle, predictions, artifact entries, tags, name).

    The bytes stay: another run may hold the same ones. ``gc`` removes what nothing
    points at any more.
    """
    from .meta import NAMES, TAGS
    from .runs import PREDICTIONS_TABLE, RUNS_TABLE

    if engine.dialect == "postgres":
        from .store.pg_gc import delete_entries
        from .store.pg_side import delete_run as delete_side_rows

        delete_side_rows(engine, table, track_id)
        return delete_entries(engine, table, track_id)
    sq = sqlite_engine(engine)
    if sq is None:
        return

    def body(conn: sqlite3.Connection) -> None:
        for side in (RUNS_TABLE, PREDICTIONS_TABLE, ARTIFACTS, TAGS, NAMES):
            if has_table(conn, side):
                conn.execute(f'DELETE FROM {quote(side)} WHERE "track_id" = ? AND "table" = ?', (track_id, table))

    sq.write(body)


@dataclass
class Garbage:
    """What ``gc`` removed (or, with ``dry_run``, would remove)."""

    assets: int = 0
    artifacts: int = 0
    bytes: int = 0
    hashes: list[str] | None = None
    file_bytes: int = 0  # how much smaller the file got (with vacuum; else 0)


def gc(engine: Any, dry_run: bool = False, vacuum: bool = False) -> Garbage:
    """Remove stored objects and artifact bytes that nothing points at any more: no row of
    any table, no artifact entry and no model version. One write transaction: writers
    wait meanwhile, and nothing logged concurrently can lose its bytes.

    Freed pages are reused by later writes; ``vacuum`` also gives them back to the file
    system (SQLite's VACUUM: it rewrites the file and needs as much free disk).
    """
    if engine.dialect == "postgres":
        return _gc_postgres(engine, dry_run, vacuum)
    sq = sqlite_engine(engine)
    if sq is None:
        return Garbage(hashes=[])
    result = sq.write(lambda conn: _collect(conn, dry_run))
    if vacuum and not dry_run and sq.path is not None:
        from .summary import drop as drop_summaries

        sq.write(drop_summaries)  # VACUUM may renumber rowids: the run summaries are rebuilt on next read
        with sq._guard.lock:
            conn = sq._live()
            # In WAL mode the file only shrinks when the WAL is checkpointed into it.
            checkpoint = lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # noqa: E731
            retry_busy(checkpoint, sq.timeout)
            before = os.path.getsize(sq.path)
            retry_busy(lambda: conn.execute("VACUUM"), sq.timeout)
            retry_busy(checkpoint, sq.timeout)
        sq.write(drop_summaries)  # again: another process may have built one before the VACUUM
        result.file_bytes = max(0, before - os.path.getsize(sq.path))
    return result


def _gc_postgres(engine: Any, dry_run: bool, vacuum: bool) -> Garbage:
    """:func:`gc` on PostgreSQL (the SQL is in :mod:`.store.pg_gc`); ``vacuum`` runs
    PostgreSQL's VACUUM on the byte tables."""
    from .store import pg_gc

    assets, stored, orphans = pg_gc.collect(engine, dry_run)
    result = Garbage(assets=len(assets), artifacts=len(stored),
                     bytes=sum(assets.values()) + sum(stored.values()) + sum(orphans.values()),
                     hashes=list(assets) + list(stored))
    if vacuum and not dry_run:
        result.file_bytes = pg_gc.vacuum(engine)
    return result


def _collect(conn: sqlite3.Connection, dry_run: bool) -> Garbage:
    from .models import MODELS

    assets = dict(_rows(conn, ASSETS_TABLE, f"SELECT key, length(value) FROM {quote(ASSETS_TABLE)}"))
    stored = dict(_rows(conn, blobs.BLOBS, f'SELECT "hash", "size" FROM {quote(blobs.BLOBS)}'))
    headless = f' WHERE "hash" NOT IN (SELECT "hash" FROM {quote(blobs.BLOBS)})' if stored else ""
    uploading = blobs.uploads_in_progress(conn, clean=not dry_run)
    orphans = {  # chunks of uploads that died before they finished
        key: size
        for key, size in _rows(
            conn, blobs.CHUNKS, f'SELECT "hash", sum(length("data")) FROM {quote(blobs.CHUNKS)}{headless} GROUP BY "hash"'
        )
        if key not in uploading
    }
    used = _referenced(conn, set(assets) | set(stored), (ARTIFACTS, MODELS))
    dead_assets = sorted(set(assets) - used)
    dead_blobs = sorted(set(stored) - used)
    result = Garbage(
        assets=len(dead_assets),
        artifacts=len(dead_blobs),
        bytes=sum(assets[k] or 0 for k in dead_assets) + sum(stored[k] for k in dead_blobs) + sum(orphans.values()),
        hashes=dead_assets + dead_blobs,
    )
    if dry_run:
        return result
    counts = has_table(conn, ASSET_COUNTS)
    for key in dead_assets:
        conn.execute(f"DELETE FROM {quote(ASSETS_TABLE)} WHERE key = ?", (key,))
        if counts:
            conn.execute(f"DELETE FROM {quote(ASSET_COUNTS)} WHERE hash = ?", (key,))
    for key in dead_blobs + sorted(orphans):
        conn.execute(f'DELETE FROM {quote(blobs.CHUNKS)} WHERE "hash" = ?', (key,))
        conn.execute(f'DELETE FROM {quote(blobs.BLOBS)} WHERE "hash" = ?', (key,))
    return result


def _rows(conn: sqlite3.Connection, table: str, sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall() if has_table(conn, table) else []


def _referenced(conn: sqlite3.Connection, candidates: set[str], side_tables: Sequence[str]) -> set[str]:
    """The candidate hashes some row points at: a value of any column of any experiment
    table (a logged object), an artifact entry or a model version."""
    used: set[str] = set()
    if not candidates:
        return used
    for side in side_tables:
        if has_table(conn, side):
            used.update(h for (h,) in conn.execute(f'SELECT DISTINCT "hash" FROM {quote(side)}') if h in candidates)
    names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if not is_internal_table(n)]
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
                    if type(value) is str and len(value) == HASH_LENGTH and value in candidates:
                        used.add(value)
    return used
