"""Merging tables and assets from one database file into another: ``xetrack.copy``.

>>> import xetrack
>>> xetrack.copy("worker.db", "all.db")  # doctest: +SKIP
1200

- Every experiment table of SOURCE (or the ones named) is copied into TARGET, which is
  created if missing. Tables and columns TARGET lacks are added with the declared types
  they have in SOURCE.
- A row whose ``(track_id, timestamp)`` TARGET already has is skipped, so copying the
  same file twice, or a file that kept growing since the last copy, copies each row once.
- Assets are copied unless ``assets=False``, and each copied row that points at a stored
  asset counts one reference, as ``log()`` counts it.
- The side tables come along (:mod:`xetrack.copy_side`): the runs' lifecycle rows, kept
  predictions and artifact entries of every table copied, the artifact bytes they point
  at, and the model registry with the bytes of its versions.
- All or nothing: the whole copy is one transaction of TARGET (``BEGIN IMMEDIATE``, with
  SQLite's busy timeout), so a copy that fails or is killed leaves nothing of itself
  behind. Other processes writing to TARGET wait for it (up to their busy timeout) and
  then go on. Memory stays bounded: rows travel in batches, and SQLite spills the
  transaction to TARGET's WAL. SOURCE is read in one snapshot and never written.

Rows are written by :mod:`xetrack.store.sqlite.copy` on TARGET's own connection rather
than through a Tracker, because a Tracker sets ``timestamp`` and ``track_id`` itself and
the copy must keep them. This module decides what to copy and in which order; every
statement is in that store module (and :mod:`xetrack.store.sqlite.copy_side`).

This module stays light on import (``xetrack`` imports it for ``xetrack.copy``): the
store and the Reader are imported inside the calls.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from .assets import is_asset_hash
from .store.sqlite.guard import holding
from .schema import TIMESTAMP, TRACK_ID

#: The CLI shows a progress bar when a copy reads more rows than this.
PROGRESS_THRESHOLD = 100_000

_CELLS_PER_BATCH = 200_000  # values held in memory at once, whatever the table's width
_MAX_ROWS_PER_BATCH = 10_000
_TIMEOUT = 60.0  # TARGET's busy timeout: other writers wait for the copy up to theirs

Progress = Callable[[int, int], None]


@dataclass
class CopyResult:
    """What a copy did: rows written, rows TARGET already had, and what else came along."""

    rows: int = 0
    skipped: int = 0
    assets: int = 0
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows written
    skipped_tables: list[str] = field(default_factory=list)  # no track_id/timestamp columns
    runs: int = 0  # xetrack_runs rows added, or replaced (running -> finished/failed/killed)
    predictions: int = 0  # xetrack_predictions rows added
    artifacts: int = 0  # artifact entries added
    blobs: int = 0  # artifact byte strings stored (each once, however many entries share it)
    models: int = 0  # model versions added to the registry
    aliases: int = 0  # model aliases set
    left_out: int = 0  # artifact entries and model versions whose bytes TARGET lacks


def copy(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    assets: bool = True,
    tables: Sequence[str] | str | None = None,
    *,
    progress: Progress | None = None,
) -> int:
    """Copy the rows of SOURCE's tables (and its assets) into TARGET; returns the number of
    rows copied.

    Rows TARGET already holds, with the same ``track_id`` and ``timestamp``, are skipped.

    >>> xetrack.copy("worker.db", "all.db", tables=["default"])  # doctest: +SKIP
    1200

    Along with the rows of each table copied come its side rows:

    - runs (``xetrack_runs``): a run TARGET has is kept as it is, unless TARGET says
      ``running`` and SOURCE says ``finished``, ``failed`` or ``killed``: then SOURCE's
      row replaces it (copying a worker's file again once it finished);
    - predictions: those TARGET lacks (by track_id, table, name and index);
    - artifact entries: those TARGET lacks by ``(track_id, table, name)`` (TARGET's entry
      wins), with their bytes, copied chunk by chunk and checked against their digest.
      Bytes TARGET holds already are not copied again; a hash TARGET holds with other
      bytes raises :class:`~xetrack.errors.IntegrityError` before anything is written.

    The model registry is file-wide and is copied whatever ``tables`` says, with the
    bytes of its versions. A version TARGET has already (same name, hash and creation
    time) is not added again; the others become TARGET's next version numbers, in
    SOURCE's order, so they may be renumbered. A SOURCE alias is set only when TARGET has
    no alias of that name for the model, and points at the version's number in TARGET.
    Copying the same SOURCE again adds nothing.

    ``assets=False`` copies no stored bytes, neither objects nor artifact bytes. An
    artifact entry or model version is then copied only when TARGET holds its bytes
    already, so every entry in TARGET stays readable; the others are counted in
    ``CopyResult.left_out``. (Rows of the experiment tables keep their asset hashes.)

    Args:
        source: an existing database file; it is only read.
        target: the file to merge into, created if missing.
        assets: also copy stored bytes: objects logged as hashes and artifact bytes.
        tables: the tables to copy, with their runs, predictions and artifacts; None
            copies every experiment table.
        progress: called as ``progress(rows_read, rows_total)`` after every batch.
    """
    result = copy_tables(source, target, assets=assets, tables=tables, progress=progress)
    for name in result.skipped_tables:
        warnings.warn(_skipped_message(name), stacklevel=2)
    return result.rows


def _skipped_message(table: str) -> str:
    return f"Table {table!r} was not copied: it has no {TRACK_ID} and {TIMESTAMP} columns to tell its rows apart"


def copy_tables(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    assets: bool = True,
    tables: Sequence[str] | str | None = None,
    *,
    progress: Progress | None = None,
) -> CopyResult:
    """:func:`copy`, returning a :class:`CopyResult` with the details."""
    from .reader import Reader
    from .store.postgres.connect import is_url

    source_path, target_path = os.fspath(source), os.fspath(target)
    if is_url(source_path) or is_url(target_path):  # SQLite <-> PostgreSQL (docs/postgres.md)
        from .copy_pg import copy_with_postgres

        return copy_with_postgres(source_path, target_path, assets, tables, progress)
    if os.path.isdir(target_path):
        raise IsADirectoryError(f"{target_path!r} is a directory, not a database file")
    reader = Reader(source_path)  # never creates or changes SOURCE; raises if it is missing
    # Both files' guards are held: DuckDB in another thread of this process waits for
    # the copy instead of closing its connections under it (store/sqlite/guard.py).
    with holding(source_path, target_path):
        return _copy_files(reader, source_path, target_path, assets, tables, progress)


def _copy_files(
    reader: Any,
    source_path: str,
    target_path: str,
    assets: bool,
    tables: Sequence[str] | str | None,
    progress: Progress | None,
) -> CopyResult:
    from .store.sqlite import copy as ends  # both ends are SQLite files

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
    from .store.sqlite import copy as ends

    existing = ends.source_tables(src)
    if tables is None:
        return existing
    if isinstance(tables, str):
        tables = [tables]
    from .store.base import table_not_found

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
    from .store.sqlite import copy as ends

    return ends.transaction(conn, body, _TIMEOUT)


# -- the copy -----------------------------------------------------------------------
_Plan = tuple[str, list[tuple[str, str]], dict[str, str], int]  # table, columns, lower -> name, rows


def _plan(src: Any, tables: list[str], explicit: bool, result: CopyResult) -> list[_Plan]:
    from .store.sqlite import copy as ends

    plans = []
    for table in tables:
        columns = ends.columns(src, table)
        lowered = {name.lower(): name for name, _ in columns}
        if TRACK_ID not in lowered or TIMESTAMP not in lowered:
            if explicit:
                raise ValueError(_skipped_message(table))
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
    from .copy_side import SideCopy
    from .store.sqlite import copy as ends

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
            _transaction(dst, lambda: ends.ensure_table(dst, table, columns, copier.types))
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
        from .store.sqlite import copy as sqlite_copy

        self.ends = sqlite_copy
        self.src, self.dst, self.table, self.columns = src, dst, table, columns
        self.names = [name for name, _ in columns]
        self.types = sqlite_copy.source_types(src, table, columns)  # SOURCE's, in its snapshot
        self.key_positions = (self.names.index(track_id), self.names.index(timestamp))
        self.batch_size = max(1, min(_MAX_ROWS_PER_BATCH, _CELLS_PER_BATCH // max(1, len(columns))))
        self.mark: int | None = None  # None: no TARGET row seen yet
        self.seen = 0  # TARGET rows seen: 0 means no row needs checking
        self.insert_sql: dict[Any, str] = {}
        self.counts_refs = sqlite_copy.has_assets(dst) or sqlite_copy.has_assets(src)
        sqlite_copy.reset_seen(src, dst, table, track_id, _MAX_ROWS_PER_BATCH)

    def batches(self) -> Iterator[list[tuple[Any, ...]]]:
        return self.ends.row_pages(self.src, self.table, self.names, self.batch_size)

    def write(self, batch: list[tuple[Any, ...]]) -> tuple[int, int]:
        """Write one batch in one transaction; returns (rows written, rows skipped)."""
        tid, ts = self.key_positions
        dst, ends = self.dst, self.ends

        def body() -> tuple[int, int, int, int]:
            target = ends.ensure_table(dst, self.table, self.columns, self.types)
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
