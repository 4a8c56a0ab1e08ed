"""``xetrack.copy`` / ``xt copy`` when SOURCE or TARGET is a PostgreSQL URL.

>>> import xetrack
>>> xetrack.copy("laptop.db", "postgresql://ana@db-host/experiments")  # doctest: +SKIP
1200

What it carries: the rows of every experiment table (or the ones named), the assets
those rows point at (each stored once, counted as ``log()`` counts them) and the runs'
lifecycle rows. A row TARGET already has (same ``track_id`` and ``timestamp``) is
skipped, so a second copy adds nothing and a copy that was killed resumes where it
stopped when run again. Rows travel in batches, each batch one transaction of TARGET:
memory stays bounded, and a kill loses at most the batch in flight (it is copied by the
next run). Values are written through the engine interface, so each engine stores them
by its own rules (docs/postgres.md); the reads and side writes of each end are in
``xetrack.store.sqlite.copy`` / ``xetrack.store.postgres.copy`` (``features(engine).copy``).
Then come the predictions and artifact entries of the tables copied, the artifact bytes
they point at, the tags, run names, kinds and descriptions, and the model registry
(:mod:`.postgres_side_tables`), by the same rules as a copy between two files.

Keys past a table's columns (spilled, docs/runs.md) travel with their rows: each engine's
pages read them, and TARGET's writes place them by its own rules. A table that holds
some is refused, naming it, before anything is written when TARGET's engine keeps no
such keys or SOURCE's does not read them with its rows (never a silent loss).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..assets import HASH_LENGTH, is_asset_hash
from ..meta import kinds
from ..schema import TIMESTAMP, TRACK_ID
from ..store import features, open_engine
from ..store.base import AssetWrites
from .postgres_side_tables import PgSideCopy
from .result import CopyResult, Progress

BATCH_ROWS = 5_000


def copy_with_postgres(
    source: str, target: str, assets: bool, tables: Sequence[str] | str | None, progress: Progress | None
) -> CopyResult:
    """:func:`xetrack.copy.copy_tables` when one side is a PostgreSQL URL."""
    src = open_engine(source, create=False)
    dst = open_engine(target, create=True)
    result = CopyResult()
    try:
        stored = src.tables()
        names = stored if tables is None else ([tables] if isinstance(tables, str) else list(tables))
        lowered = {name.lower(): name for name in stored}  # a table as SOURCE spells it (its spilled keys too)
        names = [n if n in stored or not isinstance(n, str) else lowered.get(n.lower(), n) for n in names]
        for name in names:  # before anything is written
            _check_spill(src, dst, name, source, target)
        total = sum(src.count(name) for name in names)
        done = 0
        for name in names:
            columns = {c.lower() for c in src.columns(name)}
            if TRACK_ID not in columns or TIMESTAMP not in columns:
                result.skipped_tables.append(name)
                continue
            dst.ensure_table(name)
            result.tables[name] = 0
            roles = kinds(src, name)  # params keep their columns near TARGET's limit, as in SOURCE
            for keys, rows in _pages(src, name):
                fresh = _unseen(dst, name, keys, rows)
                result.skipped += len(rows) - len(fresh)
                if fresh:
                    writes = _assets(src, dst, fresh) if assets else None
                    page_roles = {k: roles[k] for k in keys if k in roles}
                    dst.insert_many(name, keys, fresh, _first_value(fresh), writes, roles=page_roles or None)
                    result.rows += len(fresh)
                    result.tables[name] += len(fresh)
                    result.assets += len(writes.blobs) if writes else 0
                done += len(rows)
                if progress is not None:
                    progress(done, total)
            result.runs += _copy_runs(src, dst, name)
        PgSideCopy(src, dst, assets, result).run([n for n in names if n in result.tables])
    finally:
        src.close()
        dst.close()
    return result


def _spills(engine: Any) -> bool:
    """Whether the engine keeps keys past a table's columns (SQLite's spill,
    store/sqlite/spill.py): it says which with its own ``spilled``."""
    from ..store.base import Engine

    return type(engine).spilled is not Engine.spilled


def _check_spill(src: Any, dst: Any, table: str, source: str, target: str) -> None:
    """Refuse, naming the table, a table with keys past its columns that TARGET cannot
    hold or SOURCE's engine does not read with its rows yet: never a silent loss."""
    from ..store import shown

    keys = src.spilled(table)
    if not keys:
        return
    listed = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    held = f"Table {table!r} of {shown(source)} holds {len(keys)} keys past its columns ({listed})"
    if not _spills(dst):
        raise NotImplementedError(
            f"{held}; {type(dst).__name__} of {shown(target)} cannot hold keys past its columns yet. "
            "Nothing was copied: copy the other tables with tables=[...], or into a SQLite file"
        )
    first = next(iter(_pages(src, table)), None)
    if first is not None and not {k.lower() for k in keys} <= {k.lower() for k in first[0]}:
        raise NotImplementedError(
            f"{held}; {type(src).__name__} does not read them with its rows yet. Nothing was copied"
        )


def _pages(engine: Any, table: str) -> Iterator[tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
    """(column names, rows) in table order, ``BATCH_ROWS`` at a time, values as logged."""
    return features(engine).copy.pages(engine, table, BATCH_ROWS)


def _unseen(dst: Any, table: str, keys: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows whose (track_id, timestamp) TARGET does not hold."""
    lowered = [k.lower() for k in keys]
    tid, ts = lowered.index(TRACK_ID), lowered.index(TIMESTAMP)
    runs = sorted({r[tid] for r in rows if r[tid] is not None})
    # Only the pairs in the batch's span of timestamps can match: a long run is not read
    # back whole for every batch (timestamps share one text format, so text order is time order).
    stamps = [r[ts] for r in rows]
    between = (min(stamps), max(stamps)) if all(type(s) is str for s in stamps) else None
    seen: set[tuple[Any, Any]] = set()
    stored_pairs = features(dst).copy.stored_pairs
    for start in range(0, len(runs), 500):
        seen |= stored_pairs(dst, table, runs[start : start + 500], between)
    return [r for r in rows if (r[tid], r[ts]) not in seen]


def _assets(src: Any, dst: Any, rows: list[tuple[Any, ...]]) -> AssetWrites | None:
    """The stored objects these rows point at: bytes TARGET lacks, and one reference per row."""
    writes = AssetWrites()
    known: dict[str, bool] = {}
    for row in rows:
        for value in row:
            if type(value) is str and len(value) == HASH_LENGTH and is_asset_hash(value):
                if value not in known:
                    known[value] = src.has_asset(value)
                    if known[value] and not dst.has_asset(value):
                        writes.blobs[value] = src.asset_get(value)
                if known[value]:
                    writes.refs[value] += 1
    return writes or None


def _first_value(rows: list[tuple[Any, ...]]) -> Callable[[int], Any]:
    def first(i: int) -> Any:
        return next((r[i] for r in rows if r[i] is not None and r[i] == r[i]), None)

    return first


def _copy_runs(src: Any, dst: Any, table: str) -> int:
    """Lifecycle rows TARGET lacks, or has as ``running`` while SOURCE has them ended."""
    from ..runs import STATUSES

    source_rows = features(src).copy.run_rows(src, table)
    ends = features(dst).copy
    target = ends.run_statuses(dst, table)
    wanted = [r for r in source_rows if r[0] not in target or (target[r[0]] == "running" and r[2] in STATUSES[1:])]
    for track_id, _, status, start, end, error, pid, host in wanted:
        ends.put_run(dst, table, (track_id, table, status, start, end, error, pid, host))
    return len(wanted)
