"""The run side tables on a SQLite file (the sqlite and duckdb engines): the lifecycle
(``xetrack_runs``) and predictions, and the row/run counts of ``Reader.tables()``.

:mod:`xetrack.runs` validates and stamps; :mod:`.pg_runs_side` has the same functions for
PostgreSQL: :func:`mark_started`, :func:`mark_ended`, :func:`record_run`,
:func:`run_records`, :func:`store_predictions`, :func:`table_counts`.
Under Tracker.SKIP_INSERT (no file) writes keep nothing and reads find nothing.

>>> from xetrack.store import open_engine, IN_MEMORY
>>> engine = open_engine(IN_MEMORY)
>>> record_run(engine, "default", "fierce-pudu-1649", "finished", None, None, None)
>>> run_records(engine, "default")
{'fierce-pudu-1649': ('finished', None, None)}
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ...schema import TRACK_ID, quote
from ..base import Engine, rows_if_table
from ..tables import PREDICTIONS, RUNS
from .ddl import PREDICTIONS_DDL, RUNS_DDL
from .engine import sqlite_of

_INSERT_RUN = (
    f'INSERT INTO {quote(RUNS)} ("track_id", "table", "status", "start", "end", "error", "pid", "host") '
    'VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT ("track_id", "table") DO UPDATE SET '
)


def _write(engine: Engine, statements: list[tuple[str, Sequence[Any]]], many: bool = False) -> None:
    """Run ``statements`` in one write transaction; with ``many``, the last one is an executemany."""
    sq = sqlite_of(engine)
    if sq is None:  # SKIP_INSERT: nothing is stored
        return

    def body(conn: sqlite3.Connection) -> None:
        for k, (sql, params) in enumerate(statements):
            if many and k == len(statements) - 1:
                conn.executemany(sql, params)
            else:
                conn.execute(sql, params)

    sq.write(body)


def mark_started(engine: Engine, table: str, track_id: str, stamp: str, pid: int, host: str) -> None:
    """Record the run as ``running`` since ``stamp``, in process ``pid`` on ``host``."""
    _write(
        engine,
        [
            (RUNS_DDL, ()),
            (
                _INSERT_RUN + '"status" = excluded."status", "start" = excluded."start", "end" = NULL, "error" = NULL, '
                '"pid" = excluded."pid", "host" = excluded."host"',
                (track_id, table, "running", stamp, None, None, pid, host),
            ),
        ],
    )


def mark_ended(
    engine: Engine,
    table: str,
    track_id: str,
    status: str,
    error: str | None,
    started_as: str | None,
    stamp: str,
    pid: int,
    host: str,
) -> None:
    """Record the run's end (its start too, if it was never started); a run renamed since
    it started (``started_as``) moves to its new id first."""
    moves: list[tuple[str, Sequence[Any]]] = []
    if started_as is not None and started_as != track_id:
        moves.append(
            (
                f'UPDATE OR REPLACE {quote(RUNS)} SET "track_id" = ? WHERE "track_id" = ? AND "table" = ?',
                (track_id, started_as, table),
            )
        )
    _write(
        engine,
        [
            (RUNS_DDL, ()),
            *moves,
            (
                _INSERT_RUN + '"status" = excluded."status", "end" = excluded."end", "error" = excluded."error"',
                (track_id, table, status, stamp, stamp, error, pid, host),
            ),
        ],
    )


def record_run(
    engine: Engine, table: str, track_id: str, status: str, start: str | None, end: str | None, error: str | None
) -> None:
    """Record a run's lifecycle as given, without pid or host (another tool ran it)."""
    _write(
        engine,
        [
            (RUNS_DDL, ()),
            (
                _INSERT_RUN + '"status" = excluded."status", "start" = excluded."start", "end" = excluded."end", '
                '"error" = excluded."error"',
                (track_id, table, status, start, end, error, None, None),
            ),
        ],
    )


def run_records(engine: Engine, table: str) -> dict[str, tuple[Any, Any, Any]]:
    """track_id -> (status, start, end) of the lifecycle rows of ``table``."""
    sq = sqlite_of(engine)
    if sq is None:
        return {}
    rows = sq.query(f'SELECT "track_id", "status", "start", "end" FROM {quote(RUNS)} WHERE "table" = ?', (table,))
    return {r[0]: tuple(r[1:]) for r in rows}


def store_predictions(engine: Engine, table: str, track_id: str, name: str, p: Sequence[Any], a: Sequence[Any]) -> None:
    """Replace the run's prediction/actual pairs named ``name`` (values kept as given)."""
    rows = [(track_id, table, name, i, x, y) for i, (x, y) in enumerate(zip(p, a))]
    _write(
        engine,
        [
            (PREDICTIONS_DDL, ()),
            (
                f'DELETE FROM {quote(PREDICTIONS)} WHERE "track_id" = ? AND "table" = ? AND "name" = ?',
                (track_id, table, name),
            ),
            (f"INSERT INTO {quote(PREDICTIONS)} VALUES (?, ?, ?, ?, ?, ?)", rows),
        ],
        many=True,
    )


def table_counts(engine: Engine, table: str) -> tuple[int, int | None]:
    """(rows, runs) of an experiment table; runs is None without a ``track_id`` column
    (a table some other tool wrote)."""
    sq = sqlite_of(engine)
    if sq is None:
        return 0, None
    has_runs = TRACK_ID in {c.lower() for c in engine.columns(table)}
    runs = f"count(DISTINCT {quote(TRACK_ID)})" if has_runs else "NULL"
    with sq.reading() as conn:
        found = rows_if_table(conn, f"SELECT count(*), {runs} FROM {quote(table)}")
    return tuple(found[0]) if found else (0, None)


__all__ = [
    "mark_started",
    "mark_ended",
    "record_run",
    "run_records",
    "store_predictions",
    "table_counts",
    "RUNS_DDL",
    "PREDICTIONS_DDL",
]
