"""A copy between two SQLite files: ``xetrack.copy("worker.db", "all.db")``.

- All or nothing: the whole copy is one transaction of TARGET (``BEGIN IMMEDIATE``, with
  SQLite's busy timeout), so a copy that fails or is killed leaves nothing of itself
  behind. Other processes writing to TARGET wait for it (up to their busy timeout) and
  then go on. Memory stays bounded: rows travel in batches, and SQLite spills the
  transaction to TARGET's WAL. SOURCE is read in one snapshot and never written.
- Rows are written on TARGET's own connection rather than through a Tracker, because a
  Tracker sets ``timestamp`` and ``track_id`` itself and the copy must keep them.

This module decides what to copy and in which order, and runs the batch loop; the two
connections are opaque handles that SQLite's copy module opens, locks and runs every
statement on (:mod:`xetrack.store.sqlite.copy`, reached as
``dialect_features("sqlite").copy``: its file-to-file calls are SQLite's alone, typed by
:class:`~xetrack.store.features.SQLiteFileCopySQL`). The side tables follow
(:mod:`.files_side_tables`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from ..assets import is_asset_hash
from ..schema import TIMESTAMP, TRACK_ID
from ..store import dialect_features
from ..store.base import table_not_found
from .files_side_tables import SideCopy
from .result import CopyResult, Progress, skipped_message

if TYPE_CHECKING:
    from ..store.features import SQLiteFileCopySQL

_CELLS_PER_BATCH = 200_000  # values held in memory at once, whatever the table's width
_MAX_ROWS_PER_BATCH = 10_000
_TIMEOUT = 60.0  # TARGET's busy timeout: other writers wait for the copy up to theirs


def _ends() -> SQLiteFileCopySQL:
    """SQLite's copy module: both ends are SQLite files."""
    return cast("SQLiteFileCopySQL", dialect_features("sqlite").copy)


def copy_files(
    source_path: str,
    target_path: str,
    assets: bool,
    tables: Sequence[str] | str | None,
    progress: Progress | None,
) -> CopyResult:
    """:func:`xetrack.copy.copy_tables` when both ends are SQLite files."""
    from ..reader import Reader

    if os.path.isdir(target_path):
        raise IsADirectoryError(f"{target_path!r} is a directory, not a database file")
    reader = Reader(source_path)  # never creates or changes SOURCE; raises if it is missing
    # Both files' guards are held: DuckDB in another thread of this process waits for
    # the copy instead of closing its connections under it (store/sqlite/guard.py).
    with _ends().holding(source_path, target_path):
        return _copy_files(reader, source_path, target_path, assets, tables, progress)


def _copy_files(
    reader: Any,
    source_path: str,
    target_path: str,
    assets: bool,
    tables: Sequence[str] | str | None,
    progress: Progress | None,
) -> CopyResult:
    ends = _ends()
    try:
        if os.path.exists(target_path) and os.path.samefile(source_path, target_path):
            raise ValueError(f"SOURCE and TARGET are the same file: {source_path!r}")
        with ends.snapshot(reader) as src:  # one read snapshot for the whole copy
            result = CopyResult()
            plans = _plan(src, _chosen_tables(src, source_path, tables), tables is not None, result)
            dst = ends.open_target(target_path, _TIMEOUT)  # only now: a refused copy leaves no TARGET behind
            try:
                paths = (source_path, target_path)
                body = lambda: _copy(src, dst, plans, assets, result, progress, paths)  # noqa: E731
                return ends.all_or_nothing(dst, target_path, body, _TIMEOUT)
            finally:
                ends.close(dst)
    finally:
        reader.close()


# -- source -------------------------------------------------------------------------
def _chosen_tables(src: Any, path: str, tables: Sequence[str] | str | None) -> list[str]:
    existing = _ends().source_tables(src)
    if tables is None:
        return existing
    if isinstance(tables, str):
        tables = [tables]
    lowered = {name.lower(): name for name in existing}
    chosen: list[str] = []
    for name in tables:
        if not isinstance(name, str):
            raise TypeError(f"Table names must be str, got {type(name).__name__}: {name!r}")
        found = lowered.get(name.lower())
        if found is None:
            raise table_not_found(name, path, existing)
        if found not in chosen:
            chosen.append(found)
    return chosen


def _transaction(conn: Any, body: Callable[[], Any]) -> Any:
    """``body`` in a write transaction of TARGET: inside the copy's one transaction, just
    ``body`` (:func:`xetrack.store.sqlite.copy.transaction`)."""
    return _ends().transaction(conn, body, _TIMEOUT)


# -- the copy -----------------------------------------------------------------------
_Plan = tuple[str, list[tuple[str, str]], dict[str, str], int]  # table, columns, lower -> name, rows


def _plan(src: Any, tables: list[str], explicit: bool, result: CopyResult) -> list[_Plan]:
    ends = _ends()
    plans = []
    for table in tables:
        columns = ends.columns(src, table)
        lowered = {name.lower(): name for name, _ in columns}
        if TRACK_ID not in lowered or TIMESTAMP not in lowered:
            if explicit:
                raise ValueError(skipped_message(table))
            result.skipped_tables.append(table)
            continue
        plans.append((table, columns, lowered, ends.count(src, table)))
    return plans


def _copy(
    src: Any,
    dst: Any,
    plans: list[_Plan],
    assets: bool,
    result: CopyResult,
    progress: Progress | None,
    paths: tuple[str, str],
) -> CopyResult:
    ends = _ends()
    side = SideCopy(src, dst, *paths, [table for table, *_ in plans], assets, result)
    side.check()  # a hash collision refuses the copy before anything is written
    if assets and ends.has_assets(src):
        result.assets = ends.copy_assets(src, dst, _TIMEOUT)
    total = sum(count for *_, count in plans)
    done = 0
    if progress is not None:
        progress(0, total)
    for table, columns, lowered, _count in plans:
        copier = _TableCopy(src, dst, table, columns, lowered[TRACK_ID], lowered[TIMESTAMP])
        written = 0
        for batch in copier.batches():
            copied, skipped = copier.write(batch)
            written += copied
            result.skipped += skipped
            done += len(batch)
            if progress is not None:
                progress(done, total)
        if not written:
            # A table with no new rows still gets its columns, so TARGET has SOURCE's schema.
            _transaction(dst, partial(ends.ensure_table, dst, table, columns, copier.types, copier.preferred))
        result.tables[table] = written
        result.rows += written
    side.run()
    return result


def _hashes(row: Sequence[Any]) -> set[str]:
    """The distinct values of a row that look like asset hashes (16 lowercase hex)."""
    return {v for v in row if type(v) is str and is_asset_hash(v)}


class _TableCopy:
    """One table's rows, read in batches from SOURCE and written to TARGET once each.

    Deduplication runs in TARGET's connection, on disk, so memory stays bounded
    (:mod:`xetrack.store.sqlite.copy`): a temp table holds SOURCE's track_ids, another
    the ``(track_id, timestamp)`` of TARGET's rows of those runs. ``mark`` is the highest
    row of TARGET the second one covers; each write transaction first takes in the
    rows other processes added since, so a row that arrives meanwhile is not doubled.
    """

    def __init__(
        self,
        src: Any,
        dst: Any,
        table: str,
        columns: list[tuple[str, str]],
        track_id: str,
        timestamp: str,
    ) -> None:
        self.ends = ends = _ends()
        self.src, self.dst, self.table, self.columns = src, dst, table, columns
        self.names = [name for name, _ in columns]
        self.types = ends.source_types(src, table, columns)  # SOURCE's, in its snapshot
        # Keys past TARGET's columns are spilled (store/sqlite/spill.py); params and steps
        # (SOURCE's and TARGET's) take the columns kept for them, as when they are logged.
        self.preferred = {k.lower() for conn in (src, dst) for k in ends.params_of(conn, table)}
        self.key_positions = (self.names.index(track_id), self.names.index(timestamp))
        self.batch_size = max(1, min(_MAX_ROWS_PER_BATCH, _CELLS_PER_BATCH // max(1, len(columns))))
        self.mark: int | None = None  # None: no TARGET row seen yet
        self.seen = 0  # TARGET rows seen: 0 means no row needs checking
        self.insert_sql: dict[Any, Any] = {}
        self.counts_refs = ends.has_assets(dst) or ends.has_assets(src)
        ends.reset_seen(src, dst, table, track_id, _MAX_ROWS_PER_BATCH)

    def batches(self) -> Iterator[list[tuple[Any, ...]]]:
        return self.ends.row_pages(self.src, self.table, self.names, self.batch_size)

    def write(self, batch: list[tuple[Any, ...]]) -> tuple[int, int]:
        """Write one batch in one transaction; returns (rows written, rows skipped)."""
        tid, ts = self.key_positions
        dst, ends = self.dst, self.ends

        def body() -> tuple[int, int, int, int]:
            target = ends.ensure_table(dst, self.table, self.columns, self.types, self.preferred)
            seen = self.seen + ends.catch_up(dst, self.table, target, self.mark)
            rows = ends.unseen(dst, batch, tid, ts) if seen else batch
            if rows:
                ends.insert_rows(dst, self.table, tuple(target[n.lower()] for n in self.names), rows, self.insert_sql)
                if self.counts_refs:
                    self._count_references(rows)
            return len(rows), len(batch) - len(rows), seen, ends.top(dst, self.table, target)

        written, skipped, seen, top = _transaction(dst, body)
        self.seen, self.mark = seen, top  # only once committed
        return written, skipped

    def _count_references(self, rows: list[tuple[Any, ...]]) -> None:
        """Each row that points at a stored asset counts one reference, as ``log()`` counts."""
        refs: Counter[str] = Counter()
        for row in rows:
            refs.update(_hashes(row))
        self.ends.count_references(self.dst, refs)
