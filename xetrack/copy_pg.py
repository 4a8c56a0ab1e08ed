"""``xetrack.copy`` / ``xt copy`` when SOURCE or TARGET is a PostgreSQL URL (first slice).

>>> xetrack.copy("laptop.db", "postgresql://ana@db-host/experiments")  # doctest: +SKIP
1200

What it carries: the rows of every experiment table (or the ones named), the assets
those rows point at (each stored once, counted as ``log()`` counts them) and the runs'
lifecycle rows. A row TARGET already has (same ``track_id`` and ``timestamp``) is
skipped, so a second copy adds nothing and a copy that was killed resumes where it
stopped when run again. Rows travel in batches, each batch one transaction of TARGET:
memory stays bounded, and a kill loses at most the batch in flight (it is copied by the
next run). Values are written through the engine interface, so each engine stores them
by its own rules (docs/postgres.md). Then come the predictions and artifact entries of
the tables copied, the artifact bytes they point at, and the model registry
(:mod:`xetrack.copy_pg_side`), by the same rules as a copy between two files.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from .assets import HASH_LENGTH, is_asset_hash
from .schema import TIMESTAMP, TRACK_ID, quote
from .store.base import AssetWrites, rowid_alias

BATCH_ROWS = 5_000


def copy_with_postgres(source: str, target: str, assets: bool, tables: Sequence[str] | str | None,
                       progress: Callable[[int, int], None] | None) -> Any:
    """:func:`xetrack.copy.copy_tables` when one side is a PostgreSQL URL."""
    from .copy import CopyResult
    from .store import open_engine

    src = open_engine(source, create=False)
    dst = open_engine(target, create=True)
    result = CopyResult()
    try:
        names = src.tables() if tables is None else ([tables] if isinstance(tables, str) else list(tables))
        total = sum(src.count(name) for name in names)
        done = 0
        for name in names:
            columns = {c.lower() for c in src.columns(name)}
            if TRACK_ID not in columns or TIMESTAMP not in columns:
                result.skipped_tables.append(name)
                continue
            dst.ensure_table(name)
            result.tables[name] = 0
            for keys, rows in _pages(src, name):
                fresh = _unseen(dst, name, keys, rows)
                result.skipped += len(rows) - len(fresh)
                if fresh:
                    writes = _assets(src, dst, fresh) if assets else None
                    dst.insert_many(name, keys, fresh, _first_value(fresh), writes)
                    result.rows += len(fresh)
                    result.tables[name] += len(fresh)
                    result.assets += len(writes.blobs) if writes else 0
                done += len(rows)
                if progress is not None:
                    progress(done, total)
            result.runs += _copy_runs(src, dst, name)
        from .copy_pg_side import PgSideCopy

        PgSideCopy(src, dst, assets, result).run([n for n in names if n in result.tables])
    finally:
        src.close()
        dst.close()
    return result


def _pages(engine: Any, table: str) -> Iterator[tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
    """(column names, rows) in table order, ``BATCH_ROWS`` at a time, values as logged."""
    if engine.dialect == "postgres":
        for names, types, values in engine.pages(table, BATCH_ROWS):
            yield tuple(names), [tuple(row) for row in values.tolist()]
        return
    types = engine.column_types(table)
    names = tuple(types)
    rowid = rowid_alias(names)
    cols = ", ".join(quote(n) for n in names)
    last = None
    while True:
        after = "" if last is None else f" WHERE {rowid} > ?"
        rows = engine.query(
            f"SELECT {rowid}, {cols} FROM {quote(table)}{after} ORDER BY {rowid} LIMIT {BATCH_ROWS}",
            () if last is None else (last,),
        )
        if not rows:
            return
        last = rows[-1][0]
        fixed = [(j, types[n]) for j, n in enumerate(names) if types[n] in ("BOOLEAN", "REAL")]
        yield names, [_as_logged(row[1:], fixed) if fixed else row[1:] for row in rows]


def _as_logged(row: Sequence[Any], fixed: Sequence[tuple[int, str]]) -> tuple[Any, ...]:
    """A SQLite row as the values were logged: 0/1 of a BOOLEAN column as bools, an int
    of a REAL one as a float (what the SQLite engine's reads show). ``fixed``: the
    (index, logical type) of those columns."""
    out = list(row)
    for j, kind in fixed:
        value = out[j]
        if type(value) is int:
            if kind == "BOOLEAN" and value in (0, 1):
                out[j] = bool(value)
            elif kind == "REAL":
                out[j] = float(value)
    return tuple(out)


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
    for start in range(0, len(runs), 500):
        chunk = runs[start:start + 500]
        if dst.dialect == "postgres":
            seen |= dst.stored_pairs(table, chunk, between)
        else:
            marks = ", ".join("?" for _ in chunk)
            span = f" AND {quote(TIMESTAMP)} BETWEEN ? AND ?" if between else ""
            seen |= set(map(tuple, dst.query(
                f"SELECT {quote(TRACK_ID)}, {quote(TIMESTAMP)} FROM {quote(table)} WHERE {quote(TRACK_ID)} IN ({marks}){span}",
                [*chunk, *(between or ())])))
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
    from .runs import RUNS_TABLE, STATUSES

    if src.dialect == "postgres":
        from .store.pg_side import side_rows

        source_rows = side_rows(src, RUNS_TABLE, table)
    else:
        source_rows = src.query(
            f'SELECT "track_id", "table", "status", "start", "end", "error", "pid", "host" '
            f'FROM {quote(RUNS_TABLE)} WHERE "table" = ?', (table,))
    if dst.dialect == "postgres":
        from .store.pg_side import side_rows

        target = {r[0]: r[2] for r in side_rows(dst, RUNS_TABLE, table)}
    else:
        target = dict(dst.query(f'SELECT "track_id", "status" FROM {quote(RUNS_TABLE)} WHERE "table" = ?', (table,)))
    wanted = [r for r in source_rows
              if r[0] not in target or (target[r[0]] == "running" and r[2] in STATUSES[1:])]
    for track_id, _, status, start, end, error, pid, host in wanted:
        _put_run(dst, table, track_id, status, start, end, error, pid, host)
    return len(wanted)


def _put_run(dst: Any, table: str, track_id: str, status: str, start: Any, end: Any, error: Any, pid: Any, host: Any) -> None:
    if dst.dialect == "postgres":
        from .store.pg_side import put_run

        put_run(dst, table, (track_id, table, status, start, end, error, pid, host))
        return
    from .runs import RUNS_DDL, RUNS_TABLE

    def body(conn: Any) -> None:
        conn.execute(RUNS_DDL)
        conn.execute(f"INSERT OR REPLACE INTO {quote(RUNS_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (track_id, table, status, start, end, error, pid, host))

    dst.write(body)

