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

Rows are written with ``sqlite3`` directly rather than through a Tracker, because a
Tracker sets ``timestamp`` and ``track_id`` itself and the copy must keep them.

This module stays light on import (``xetrack`` imports it for ``xetrack.copy``): the
store and the Reader are imported inside the calls.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from .assets import is_asset_hash
from .store.base import has_table, rowid_alias
from .store.busy import retry_busy
from .store.guard import holding
from .store.column_types import logical_types, read_types, record_types
from .schema import ASSETS_TABLE, BASE_COLUMNS, TIMESTAMP, TRACK_ID, is_internal_table, quote

#: The CLI shows a progress bar when a copy reads more rows than this.
PROGRESS_THRESHOLD = 100_000

_CELLS_PER_BATCH = 200_000  # values held in memory at once, whatever the table's width
_MAX_ROWS_PER_BATCH = 10_000
_ASSET_BYTES_PER_BATCH = 64 * 2**20
_TIMEOUT = 60.0

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
    from .store.pg_connect import is_url

    source_path, target_path = os.fspath(source), os.fspath(target)
    if is_url(source_path) or is_url(target_path):  # SQLite <-> PostgreSQL (docs/postgres.md)
        from .copy_pg import copy_with_postgres

        return copy_with_postgres(source_path, target_path, assets, tables, progress)
    if os.path.isdir(target_path):
        raise IsADirectoryError(f"{target_path!r} is a directory, not a database file")
    reader = Reader(source_path)  # never creates or changes SOURCE; raises if it is missing
    # Both files' guards are held: DuckDB in another thread of this process waits for
    # the copy instead of closing its connections under it (store/guard.py).
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
    try:
        if os.path.exists(target_path) and os.path.samefile(source_path, target_path):
            raise ValueError(f"SOURCE and TARGET are the same file: {source_path!r}")
        src = reader.conn
        src.execute("BEGIN")  # one read snapshot for the whole copy
        try:
            result = CopyResult()
            plans = _plan(src, _chosen_tables(src, source_path, tables), tables is not None, result)
            dst = _open_target(target_path)  # only now: a refused copy leaves no TARGET behind
            try:
                paths = (source_path, target_path)
                return _all_or_nothing(dst, target_path, lambda: _copy(src, dst, plans, assets, result, progress, paths))
            finally:
                dst.close()
        finally:
            if src.in_transaction:
                src.execute("COMMIT")
    finally:
        reader.close()


# -- source -------------------------------------------------------------------------
def _source_tables(src: sqlite3.Connection) -> list[str]:
    rows = src.execute("SELECT name FROM main.sqlite_master WHERE type = 'table' ORDER BY rowid").fetchall()
    return [name for (name,) in rows if not is_internal_table(name)]


def _chosen_tables(src: sqlite3.Connection, path: str, tables: Sequence[str] | str | None) -> list[str]:
    existing = _source_tables(src)
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


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """``[(name, declared type)]`` in table order. ``schema`` is a constant: main/db."""
    rows = conn.execute(f"SELECT name, type FROM {schema}.pragma_table_info(?)", (table,)).fetchall()
    return [(name, decl or "") for name, decl in rows]


# -- target -------------------------------------------------------------------------
def _open_target(path: str) -> sqlite3.Connection:
    """A connection with the store's settings: WAL, synchronous=NORMAL, a busy timeout."""
    from .errors import DatabaseError
    from .store.faults import check_writable, fault

    check_writable(path)  # a read-only file or folder: PermissionError naming it
    try:
        conn = sqlite3.connect(path, timeout=_TIMEOUT, isolation_level=None, check_same_thread=False)
    except sqlite3.OperationalError as exc:  # e.g. its folder does not exist
        raise OSError(f"Cannot open {path!r} to copy into: {exc}") from None
    try:
        retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone(), _TIMEOUT)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS xt_runs (track_id TEXT PRIMARY KEY) WITHOUT ROWID"
        )
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS xt_seen (track_id TEXT NOT NULL, timestamp TEXT NOT NULL,"
            " PRIMARY KEY (track_id, timestamp)) WITHOUT ROWID"
        )
    except sqlite3.DatabaseError as exc:
        conn.close()
        clear = fault(exc, path)
        if clear is not None and not isinstance(clear, DatabaseError):
            raise clear from None  # out of disk, read-only
        if "not a database" not in str(exc) and "malformed" not in str(exc):
            raise  # busy: SQLite's own message says it
        raise DatabaseError(f"{path!r} is not a SQLite database or is damaged ({exc})") from None
    return conn


def _all_or_nothing(dst: sqlite3.Connection, path: str, body: Callable[[], Any]) -> Any:
    """The whole copy as ONE transaction of TARGET: a copy that fails, or whose process is
    killed, leaves nothing of itself in TARGET. Other writers of TARGET wait for it, up
    to their busy timeout (60 s); a copy of a million rows takes a few seconds."""
    from .errors import DatabaseError
    from .store.faults import fault

    retry_busy(lambda: dst.execute("BEGIN IMMEDIATE"), _TIMEOUT)
    try:
        value = body()
        dst.execute("COMMIT")
        return value
    except BaseException as exc:
        if dst.in_transaction:
            try:
                dst.execute("ROLLBACK")
            except sqlite3.Error:  # after an I/O error SQLite may have rolled back already
                pass
        clear = fault(exc, path) if isinstance(exc, sqlite3.Error) else None
        if clear is None or isinstance(clear, DatabaseError):
            raise  # a damaged file may be SOURCE as well as TARGET: SQLite's words stand
        raise clear from None


def _transaction(conn: sqlite3.Connection, body: Callable[[], Any]) -> Any:
    """``body`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back and retried when busy;
    inside the copy's one transaction (:func:`_all_or_nothing`), just ``body``."""
    if conn.in_transaction:
        return body()

    def attempt() -> Any:
        conn.execute("BEGIN IMMEDIATE")
        try:
            value = body()
            conn.execute("COMMIT")
            return value
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    return retry_busy(attempt, _TIMEOUT)


def _ensure_table(
    dst: sqlite3.Connection, table: str, columns: list[tuple[str, str]], types: dict[str, str] | None = None
) -> dict[str, str]:
    """Under the write lock: create the table and add its missing columns, as the store does.

    ``types``: SOURCE's logical types (:mod:`xetrack.store.column_types`), which widen
    TARGET's as the values would: an untyped column takes SOURCE's type, an INTEGER one
    becomes REAL when SOURCE's is.

    Returns lower-cased name -> the target's spelling of every column.
    """
    declared = dict(_columns(dst, "main", table))
    existing = {name.lower(): name for name in declared}
    if not existing:
        base = ", ".join(f"{quote(n)} {t}" for n, t in BASE_COLUMNS.items())
        dst.execute(f"CREATE TABLE IF NOT EXISTS main.{quote(table)} ({base})")
        index = quote(f"ix_{table}_{TRACK_ID}")
        dst.execute(f"CREATE INDEX IF NOT EXISTS main.{index} ON {quote(table)} ({quote(TRACK_ID)})")
        existing = {name.lower(): name for name in BASE_COLUMNS}
        declared = dict(BASE_COLUMNS)
    for name, decl in columns:
        if name.lower() not in existing:
            dst.execute(f"ALTER TABLE main.{quote(table)} ADD COLUMN {quote(name)} {decl}".rstrip())
            existing[name.lower()] = name
            declared[name] = decl.upper()
    if types:
        proposed = {existing[name.lower()]: kind for name, kind in types.items() if name.lower() in existing}
        record_types(dst, table, proposed, {name: decl.upper() for name, decl in declared.items()})
    return existing


# -- the copy -----------------------------------------------------------------------
_Plan = tuple[str, list[tuple[str, str]], dict[str, str], int]  # table, columns, lower -> name, rows


def _plan(src: sqlite3.Connection, tables: list[str], explicit: bool, result: CopyResult) -> list[_Plan]:
    plans = []
    for table in tables:
        columns = _columns(src, "main", table)
        lowered = {name.lower(): name for name, _ in columns}
        if TRACK_ID not in lowered or TIMESTAMP not in lowered:
            if explicit:
                raise ValueError(_skipped_message(table))
            result.skipped_tables.append(table)
            continue
        count = src.execute(f"SELECT count(*) FROM main.{quote(table)}").fetchone()[0]
        plans.append((table, columns, lowered, count))
    return plans


def _copy(
    src: sqlite3.Connection,
    dst: sqlite3.Connection,
    plans: list[_Plan],
    assets: bool,
    result: CopyResult,
    progress: Progress | None,
    paths: tuple[str, str],
) -> CopyResult:
    from .copy_side import SideCopy

    side = SideCopy(src, dst, *paths, [table for table, *_ in plans], assets, result)
    side.check()  # a hash collision refuses the copy before anything is written
    if assets and has_table(src, ASSETS_TABLE):
        result.assets = _copy_assets(src, dst)
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
            _transaction(dst, lambda: _ensure_table(dst, table, columns, copier.types))
        result.tables[table] = written
        result.rows += written
    side.run()
    return result


def _copy_assets(src: sqlite3.Connection, dst: sqlite3.Connection) -> int:
    """Copy the objects TARGET lacks; returns how many. Reference counts follow the rows."""
    from .store.sqlite import _create_asset_tables

    copied = 0
    batch: list[tuple[str, bytes]] = []
    size = 0

    def flush() -> None:
        nonlocal copied, batch, size

        def body() -> int:
            _create_asset_tables(dst)
            sql = f"INSERT OR IGNORE INTO main.{quote(ASSETS_TABLE)} (key, value) VALUES (?, ?)"
            return sum(dst.execute(sql, item).rowcount for item in batch)

        copied += _transaction(dst, body)
        batch, size = [], 0

    target_has_assets = has_table(dst, ASSETS_TABLE)
    last = None
    while True:
        page_sql = f"SELECT rowid, key FROM main.{quote(ASSETS_TABLE)}"
        page = src.execute(
            page_sql + (" WHERE rowid > ?" if last is not None else "") + " ORDER BY rowid LIMIT 1000",
            () if last is None else (last,),
        ).fetchall()
        if not page:
            break
        last = page[-1][0]
        for _, key in page:
            if target_has_assets and dst.execute(
                f"SELECT 1 FROM main.{quote(ASSETS_TABLE)} WHERE key = ?", (key,)
            ).fetchone():
                continue  # content-addressed: the same key holds the same bytes
            (value,) = src.execute(f"SELECT value FROM main.{quote(ASSETS_TABLE)} WHERE key = ?", (key,)).fetchone()
            batch.append((key, value))
            size += len(value) if isinstance(value, (bytes, str)) else 0
            if size >= _ASSET_BYTES_PER_BATCH or len(batch) >= 1000:
                flush()
                target_has_assets = True
    if batch:
        flush()
    return copied


def _hashes(row: Sequence[Any]) -> set[str]:
    """The distinct values of a row that look like asset hashes (16 lowercase hex)."""
    return {v for v in row if type(v) is str and is_asset_hash(v)}


class _TableCopy:
    """One table's rows, read in batches from SOURCE and written to TARGET once each.

    Deduplication runs in TARGET's connection, on disk, so memory stays bounded:
    ``temp.xt_runs`` holds SOURCE's track_ids, and ``temp.xt_seen`` the
    ``(track_id, timestamp)`` of TARGET's rows of those runs. ``mark`` is the highest
    rowid of TARGET that ``xt_seen`` covers; each write transaction first takes in the
    rows other processes added since, so a row that arrives meanwhile is not doubled.
    """

    def __init__(
        self,
        src: sqlite3.Connection,
        dst: sqlite3.Connection,
        table: str,
        columns: list[tuple[str, str]],
        track_id: str,
        timestamp: str,
    ) -> None:
        self.src, self.dst, self.table, self.columns = src, dst, table, columns
        self.names = [name for name, _ in columns]
        self.types = logical_types(dict(columns), read_types(src, table))  # SOURCE's, in its snapshot
        self.key_positions = (self.names.index(track_id), self.names.index(timestamp))
        self.rowid = rowid_alias(self.names)
        self.batch_size = max(1, min(_MAX_ROWS_PER_BATCH, _CELLS_PER_BATCH // max(1, len(columns))))
        self.mark: int | None = None  # None: xt_seen not loaded yet
        self.seen = 0  # rows in xt_seen: 0 means no row needs checking
        self.insert_sql: dict[tuple[str, ...], str] = {}
        self.counts_refs = has_table(dst, ASSETS_TABLE) or has_table(src, ASSETS_TABLE)
        dst.execute("DELETE FROM temp.xt_runs")
        dst.execute("DELETE FROM temp.xt_seen")
        self._load_runs()

    def _load_runs(self) -> None:
        cursor = self.src.execute(
            f"SELECT DISTINCT {quote(self.names[self.key_positions[0]])} FROM main.{quote(self.table)}"
            f" WHERE {quote(self.names[self.key_positions[0]])} IS NOT NULL"
        )
        while True:
            chunk = cursor.fetchmany(_MAX_ROWS_PER_BATCH)
            if not chunk:
                break
            self.dst.executemany("INSERT OR IGNORE INTO temp.xt_runs (track_id) VALUES (?)", chunk)

    def batches(self) -> Iterator[list[tuple[Any, ...]]]:
        cols = ", ".join(quote(n) for n in self.names)
        base = f"SELECT {self.rowid}, {cols} FROM main.{quote(self.table)}"
        last = None
        while True:
            if last is None:
                sql, params = f"{base} ORDER BY {self.rowid} LIMIT ?", (self.batch_size,)
            else:
                sql, params = f"{base} WHERE {self.rowid} > ? ORDER BY {self.rowid} LIMIT ?", (last, self.batch_size)
            rows = self.src.execute(sql, params).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [row[1:] for row in rows]

    def _catch_up(self, target: dict[str, str]) -> int:
        """Under the write lock: add TARGET's rows of these runs past ``mark`` to xt_seen."""
        table = quote(self.table)
        rowid = rowid_alias(target.values())
        track_id, timestamp = quote(target[TRACK_ID]), quote(target[TIMESTAMP])
        select = (
            f"SELECT {track_id}, {timestamp} FROM main.{table} WHERE {track_id} IN"
            f" (SELECT track_id FROM temp.xt_runs) AND {timestamp} IS NOT NULL"
        )
        params: tuple[Any, ...] = ()
        if self.mark is not None:
            select += f" AND {rowid} > ?"
            params = (self.mark,)
        added = self.dst.execute(f"INSERT OR IGNORE INTO temp.xt_seen {select}", params).rowcount
        return max(0, added)

    def _top(self, target: dict[str, str]) -> int:
        rowid = rowid_alias(target.values())
        return self.dst.execute(f"SELECT max({rowid}) FROM main.{quote(self.table)}").fetchone()[0] or 0

    def write(self, batch: list[tuple[Any, ...]]) -> tuple[int, int]:
        """Write one batch in one transaction; returns (rows written, rows skipped)."""
        tid, ts = self.key_positions
        dst = self.dst

        def body() -> tuple[int, int, int, int]:
            target = _ensure_table(dst, self.table, self.columns, self.types)
            seen = self.seen + self._catch_up(target)
            rows = batch
            if seen:
                exists = "SELECT 1 FROM temp.xt_seen WHERE track_id = ? AND timestamp = ?"
                rows = [r for r in batch if not dst.execute(exists, (r[tid], r[ts])).fetchone()]
            if rows:
                names = tuple(target[n.lower()] for n in self.names)
                sql = self.insert_sql.get(names)
                if sql is None:
                    marks = ", ".join("?" * len(names))
                    sql = self.insert_sql[names] = (
                        f"INSERT INTO main.{quote(self.table)} ({', '.join(quote(n) for n in names)}) VALUES ({marks})"
                    )
                dst.executemany(sql, rows)
                if self.counts_refs:
                    self._count_references(rows)
            return len(rows), len(batch) - len(rows), seen, self._top(target)

        written, skipped, seen, top = _transaction(dst, body)
        self.seen, self.mark = seen, top  # only once committed
        return written, skipped

    def _count_references(self, rows: list[tuple[Any, ...]]) -> None:
        """Each row that points at a stored asset counts one reference, as ``log()`` counts."""
        refs: Counter[str] = Counter()
        for row in rows:
            refs.update(_hashes(row))
        if not refs or not has_table(self.dst, ASSETS_TABLE):
            return
        from .store.base import AssetWrites
        from .store.sqlite import _write_assets

        _write_assets(self.dst, AssetWrites(refs=refs))
