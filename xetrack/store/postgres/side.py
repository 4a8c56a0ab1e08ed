"""The run side tables on PostgreSQL: lifecycle (``xetrack_runs``) and predictions.

The same tables and columns as on SQLite (see :mod:`xetrack.runs`), in PostgreSQL's
SQL. Predictions keep any value as given in JSONB (SQLite: untyped columns).

>>> mark_started(engine, "default", "fierce-pudu-1649", now, pid, host)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.types.json import Jsonb

from ...schema import INTERNAL_PREFIX, TRACK_ID
from ..tables import PREDICTION_COLUMNS, PREDICTIONS, RUN_COLUMNS, RUNS
from .sql import EngineAccess
from .values import from_json, to_json

_I = sql.Identifier
_DDL = {
    RUNS: 'CREATE TABLE IF NOT EXISTS {} ("track_id" TEXT NOT NULL, "table" TEXT NOT NULL, "status" TEXT, '
    '"start" TEXT, "end" TEXT, "error" TEXT, "pid" BIGINT, "host" TEXT, PRIMARY KEY ("track_id", "table"))',
    PREDICTIONS: 'CREATE TABLE IF NOT EXISTS {} ("track_id" TEXT NOT NULL, "table" TEXT NOT NULL, '
    '"name" TEXT NOT NULL, "idx" BIGINT NOT NULL, "prediction" JSONB, "actual" JSONB, '
    'PRIMARY KEY ("track_id", "table", "name", "idx"))',
}


def _write(engine: EngineAccess, side: str, body: Any) -> None:
    def attempt(conn: Any) -> None:
        def inner(conn: Any) -> None:
            conn.execute(sql.SQL(_DDL[side]).format(_I(side)))
            body(conn)

        engine._transact(conn, side, inner)

    engine._run(attempt)  # each body is safe to run twice


def mark_started(engine: EngineAccess, table: str, track_id: str, stamp: str, pid: int, host: str) -> None:
    """Record the run as ``running`` since ``stamp``, in process ``pid`` on ``host``."""
    query = sql.SQL(
        'INSERT INTO {t} ("track_id", "table", "status", "start", "end", "error", "pid", "host") '
        'VALUES (%s, %s, \'running\', %s, NULL, NULL, %s, %s) ON CONFLICT ("track_id", "table") DO UPDATE SET '
        '"status" = excluded."status", "start" = excluded."start", "end" = NULL, "error" = NULL, '
        '"pid" = excluded."pid", "host" = excluded."host"'
    ).format(t=_I(RUNS))
    _write(engine, RUNS, lambda conn: conn.execute(query, (track_id, table, stamp, pid, host)))


def mark_ended(
    engine: EngineAccess,
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
    t = _I(RUNS)

    def body(conn: Any) -> None:
        if started_as is not None and started_as != track_id:
            conn.execute(sql.SQL('DELETE FROM {} WHERE "track_id" = %s AND "table" = %s').format(t), (track_id, table))
            conn.execute(
                sql.SQL('UPDATE {} SET "track_id" = %s WHERE "track_id" = %s AND "table" = %s').format(t),
                (track_id, started_as, table),
            )
        conn.execute(
            sql.SQL(
                'INSERT INTO {} ("track_id", "table", "status", "start", "end", "error", "pid", "host") '
                'VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT ("track_id", "table") DO UPDATE SET '
                '"status" = excluded."status", "end" = excluded."end", "error" = excluded."error"'
            ).format(t),
            (track_id, table, status, stamp, stamp, error, pid, host),
        )

    _write(engine, RUNS, body)


def put_run(engine: EngineAccess, table: str, row: Sequence[Any]) -> None:
    """Insert or replace one lifecycle row (``RUN_COLUMNS`` order): ``xt copy``'s write."""
    query = sql.SQL(
        'INSERT INTO {t} ("track_id", "table", "status", "start", "end", "error", "pid", "host") '
        'VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT ("track_id", "table") DO UPDATE SET '
        '"status" = excluded."status", "start" = excluded."start", "end" = excluded."end", '
        '"error" = excluded."error", "pid" = excluded."pid", "host" = excluded."host"'
    ).format(t=_I(RUNS))
    _write(engine, RUNS, lambda conn: conn.execute(query, tuple(row)))


def store_predictions(
    engine: EngineAccess, table: str, track_id: str, name: str, p: Sequence[Any], a: Sequence[Any]
) -> None:
    """Replace the run's pairs named ``name``."""
    t = _I(PREDICTIONS)
    rows = [(track_id, table, name, i, _json(x), _json(y)) for i, (x, y) in enumerate(zip(p, a))]

    def body(conn: Any) -> None:
        conn.execute(
            sql.SQL('DELETE FROM {} WHERE "track_id" = %s AND "table" = %s AND "name" = %s').format(t),
            (track_id, table, name),
        )
        conn.cursor().executemany(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s)").format(t), rows)

    _write(engine, PREDICTIONS, body)


def delete_run(engine: EngineAccess, table: str, track_id: str) -> None:
    """Forget a deleted run's lifecycle row and predictions."""

    def attempt(conn: Any) -> None:
        for side in (RUNS, PREDICTIONS):
            query = sql.SQL('DELETE FROM {} WHERE "track_id" = %s AND "table" = %s').format(_I(side))
            engine._rows(conn, query + sql.SQL(" RETURNING 1"), (track_id, table))

    engine._run(attempt)


def side_rows(engine: EngineAccess, side: str, table: str) -> list[tuple[Any, ...]]:
    """Every row of side table ``side`` for experiment table ``table``, in its column
    order (``RUN_COLUMNS`` or ``PREDICTION_COLUMNS``); none when it was never created."""
    columns = RUN_COLUMNS if side == RUNS else PREDICTION_COLUMNS
    query = sql.SQL('SELECT {} FROM {} WHERE "table" = %s').format(sql.SQL(", ").join(map(_I, columns)), _I(side))
    rows = engine._run(lambda conn: engine._rows(conn, query, (table,)))
    if side == PREDICTIONS:
        rows = [(*r[:4], from_json(r[4]), from_json(r[5])) for r in rows]
    return rows


def prediction_pages(engine: EngineAccess, table: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The predictions of ``table`` (``PREDICTION_COLUMNS`` order, values as logged),
    ``size`` rows at a time in key order: each page one query after the last one's key."""
    query = sql.SQL(
        'SELECT {} FROM {} WHERE "table" = %s AND ("track_id", "name", "idx") > (%s, %s, %s) '
        'ORDER BY "track_id", "name", "idx" LIMIT %s'
    ).format(sql.SQL(", ").join(map(_I, PREDICTION_COLUMNS)), _I(PREDICTIONS))
    after: tuple[Any, ...] = ("", "", -(2**63))
    while True:
        rows = engine._run(functools.partial(engine._rows, query=query, params=(table, *after, size)))
        if not rows:
            return
        after = (rows[-1][0], rows[-1][2], rows[-1][3])
        yield [(*r[:4], from_json(r[4]), from_json(r[5])) for r in rows]


def put_predictions(engine: EngineAccess, rows: Sequence[Sequence[Any]]) -> int:
    """Add pairs (``PREDICTION_COLUMNS`` order) the table lacks; returns how many were added."""
    query = sql.SQL(
        'INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT ("track_id", "table", "name", "idx") DO NOTHING'
    ).format(_I(PREDICTIONS))
    added = [0]

    def body(conn: Any) -> None:
        added[0] = sum(conn.execute(query, (*r[:4], _json(r[4]), _json(r[5]))).rowcount for r in rows)

    _write(engine, PREDICTIONS, body)
    return added[0]


def table_counts(engine: EngineAccess, table: str) -> tuple[int, int]:
    """(rows, runs) of an experiment table."""
    query = sql.SQL("SELECT count(*), count(DISTINCT {}) FROM {}").format(_I(TRACK_ID), _I(table))
    counts: tuple[int, int] = engine._run(lambda conn: conn.execute(query).fetchone())
    return counts


def _json(value: Any) -> Any:
    return None if value is None else Jsonb(to_json(value))


# ------------------------------------------------------- xetrack.meta's side tables
def _portable(statement: str) -> str:
    """One of :mod:`xetrack.meta`'s own statements (constants: names quoted, values bound,
    never user text) in PostgreSQL's words: ``%s`` placeholders and a null-safe compare."""
    return statement.replace("?", "%s").replace(" IS NOT ", " IS DISTINCT FROM ")


def meta_write(engine: EngineAccess, ddl: str, statement: str, rows: Sequence[Sequence[Any]]) -> None:
    """Create the side table (``ddl``) if needed, then run ``statement`` for each row, in one transaction."""
    query = _portable(statement)

    def body(conn: Any) -> None:
        try:
            with conn.transaction():  # a savepoint: two first writers race to create the table
                conn.execute(ddl)
        except (pg_errors.UniqueViolation, pg_errors.DuplicateTable):
            pass  # the other one made it
        conn.cursor().executemany(query, rows)

    engine._run(lambda conn: engine._transact(conn, INTERNAL_PREFIX + "meta", body))  # safe to run twice


def meta_read(engine: EngineAccess, statement: str, binds: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of one of :mod:`xetrack.meta`'s reads; none when its table was never created."""
    return engine._run(lambda conn: engine._rows(conn, _portable(statement), list(binds)))
