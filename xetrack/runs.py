"""Runs: the lifecycle side table and the SQL behind runs, history, search and compare.

Two side tables live next to the experiment tables (``xetrack_*`` names are reserved):

- ``xetrack_runs``: one row per (track_id, table): status, start, end, error, pid, host;
- ``xetrack_predictions``: prediction/actual pairs kept by ``Tracker.log_predictions``.

The wide table is never changed. Every query here is built from quoted identifiers that
were checked against the table's columns, and every user value is a bound parameter.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import sqlite3
import time
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import meta, runs_pg, summary
from .frames import frame_from_rows
from .schema import INTERNAL_PREFIX, TIMESTAMP, TRACK_ID, quote
from .store import sqlite_engine
from .store.base import close_matches
from .filters import FilterError, order_sql, parse_condition  # noqa: F401 - FilterError is public here too
from .filters import resolve_column as _resolve

RUNS_TABLE = INTERNAL_PREFIX + "runs"
PREDICTIONS_TABLE = INTERNAL_PREFIX + "predictions"
STATUSES = ("running", "finished", "failed", "killed")
AGGS = {"last": None, "first": None, "min": "min", "max": "max", "mean": "avg"}
STEP_COLUMNS = ("step", "epoch")
#: Summary columns before the params and metrics.
BASE = ("track_id", "status", "start", "end", "duration", "events")
_NUMERIC = ("INTEGER", "REAL", "NUMERIC", "FLOAT", "DOUBLE", "INT", "BIGINT")
_ALIVE_FN = "xetrack_pid_alive"
#: runs() recomputes at most this many runs of a cached frame; more, and it is computed whole.
PATCH_RUNS = 1000
#: runs() guesses params from these runs (the first ones, and those of the latest rows), then checks
SAMPLE_RUNS, SAMPLE_ROWS = 32, 256
#: dtypes whose column stays of that dtype with a NULL added (name -> kind, to be exact)
_NULL_JOINS = {"str": "O", "string": "O", "float64": "f", "Int64": "i", "boolean": "b", "object": "O"}


def now() -> str:
    """Local time in the wide table's format ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    micros = time.time_ns() // 1000
    second, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S.", time.localtime(second)) + f"{fraction:06d}"


# --------------------------------------------------------------------- writing
RUNS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(RUNS_TABLE)} ("
    '"track_id" TEXT NOT NULL, "table" TEXT NOT NULL, "status" TEXT, "start" TEXT, '
    '"end" TEXT, "error" TEXT, "pid" INTEGER, "host" TEXT, PRIMARY KEY ("track_id", "table"))'
)
PREDICTIONS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(PREDICTIONS_TABLE)} ("
    '"track_id" TEXT NOT NULL, "table" TEXT NOT NULL, "name" TEXT NOT NULL, "idx" INTEGER NOT NULL, '
    '"prediction", "actual", PRIMARY KEY ("track_id", "table", "name", "idx"))'
)


def _write(engine: Any, table: str, statements: list[tuple[str, Sequence[Any]]], many: bool = False) -> None:
    """Run ``statements`` in one write transaction; with ``many``, the last one is an executemany."""
    sq = sqlite_engine(engine)
    if sq is None:  # SKIP_INSERT: nothing is stored
        return

    def body(conn: sqlite3.Connection) -> None:
        for k, (sql, params) in enumerate(statements):
            if many and k == len(statements) - 1:
                conn.executemany(sql, params)
            else:
                conn.execute(sql, params)

    sq.write(body)


def mark_started(engine: Any, table: str, track_id: str) -> None:
    """Record the run as ``running`` now, in this process on this host."""
    if engine.dialect == "postgres":
        return runs_pg.mark_started(engine, table, track_id)
    _write(engine, table, [
        (RUNS_DDL, ()),
        (
            f'INSERT INTO {quote(RUNS_TABLE)} ("track_id", "table", "status", "start", "end", "error", "pid", "host") '
            "VALUES (?, ?, 'running', ?, NULL, NULL, ?, ?) ON CONFLICT (\"track_id\", \"table\") DO UPDATE SET "
            '"status" = excluded."status", "start" = excluded."start", "end" = NULL, "error" = NULL, '
            '"pid" = excluded."pid", "host" = excluded."host"',
            (track_id, table, now(), os.getpid(), socket.gethostname()),
        ),
    ])


def mark_ended(
    engine: Any, table: str, track_id: str, status: str, error: str | None, started_as: str | None = None
) -> None:
    """Record the run's end; a run never started gets its start set to now as well.

    ``started_as``: the track_id the run was started under, when it was renamed since
    (``tracker.track_id = ...`` inside ``with``): its row moves to the new id.
    """
    if status not in STATUSES[1:]:
        raise ValueError(f"status must be one of {', '.join(STATUSES[1:])}, got {status!r}")
    if engine.dialect == "postgres":
        return runs_pg.mark_ended(engine, table, track_id, status, error, started_as)
    stamp = now()
    moves: list[tuple[str, Sequence[Any]]] = []
    if started_as is not None and started_as != track_id:
        moves.append((
            f'UPDATE OR REPLACE {quote(RUNS_TABLE)} SET "track_id" = ? WHERE "track_id" = ? AND "table" = ?',
            (track_id, started_as, table),
        ))
    _write(engine, table, [
        (RUNS_DDL, ()),
        *moves,
        (
            f'INSERT INTO {quote(RUNS_TABLE)} ("track_id", "table", "status", "start", "end", "error", "pid", "host") '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (\"track_id\", \"table\") DO UPDATE SET "
            '"status" = excluded."status", "end" = excluded."end", "error" = excluded."error"',
            (track_id, table, status, stamp, stamp, error, os.getpid(), socket.gethostname()),
        ),
    ])


def record_run(
    engine: Any, table: str, track_id: str, status: str, start: str | None, end: str | None, error: str | None = None
) -> None:
    """Record a run's lifecycle as given (an import: another tool ran it, so no pid or host)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    _write(engine, table, [
        (RUNS_DDL, ()),
        (
            f'INSERT INTO {quote(RUNS_TABLE)} ("track_id", "table", "status", "start", "end", "error", "pid", "host") '
            "VALUES (?, ?, ?, ?, ?, ?, NULL, NULL) ON CONFLICT (\"track_id\", \"table\") DO UPDATE SET "
            '"status" = excluded."status", "start" = excluded."start", "end" = excluded."end", "error" = excluded."error"',
            (track_id, table, status, start, end, error),
        ),
    ])


def run_records(engine: Any, table: str) -> dict[str, tuple[Any, Any, Any]]:
    """track_id -> (status, start, end) of the runs side table for ``table``."""
    sq = sqlite_engine(engine)
    if sq is None:
        return {}
    with sq._guard.lock:
        conn = sq._live()
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (RUNS_TABLE,)).fetchone() is None:
            return {}
        rows = conn.execute(f'SELECT "track_id", "status", "start", "end" FROM {quote(RUNS_TABLE)} WHERE "table" = ?', (table,))
        return {r[0]: r[1:] for r in rows}


# ------------------------------------------------------------------ predictions
def _mean(xs: list[float]) -> float:
    return math.fsum(xs) / len(xs)


def _mse(p: list[Any], a: list[Any]) -> float:
    return _mean([(x - y) ** 2 for x, y in zip(p, a)])


def _r2(p: list[Any], a: list[Any]) -> float:
    mean = _mean(a)
    total = math.fsum((y - mean) ** 2 for y in a)
    resid = math.fsum((y - x) ** 2 for x, y in zip(p, a))
    if total == 0:
        return 1.0 if resid == 0 else float("nan")
    return 1 - resid / total


def _mape(p: list[Any], a: list[Any]) -> float:
    if any(y == 0 for y in a):
        raise ValueError("mape needs actuals without zeros")
    return _mean([abs((y - x) / y) for x, y in zip(p, a)])


PREDICTION_METRICS: dict[str, tuple[bool, Any]] = {  # name -> (needs numbers, function)
    "mse": (True, _mse),
    "rmse": (True, lambda p, a: math.sqrt(_mse(p, a))),
    "mae": (True, lambda p, a: _mean([abs(x - y) for x, y in zip(p, a)])),
    "r2": (True, _r2),
    "mape": (True, _mape),
    "max_error": (True, lambda p, a: max(abs(x - y) for x, y in zip(p, a))),
    "accuracy": (False, lambda p, a: sum(x == y for x, y in zip(p, a)) / len(a)),
}


def _values(name: str, values: Any) -> list[Any]:
    from .schema import coerce

    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a list or an array, got {type(values).__name__}")
    return [coerce(v, name) for v in list(values)]


def prediction_metrics(predictions: Any, actuals: Any, metrics: Iterable[str]) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """Check the inputs and compute the metrics; raises before anything is written."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in names if m not in PREDICTION_METRICS]
    if unknown:
        known = list(PREDICTION_METRICS)
        raise ValueError(
            f"Unknown metric {unknown[0]!r}.{close_matches(unknown[0], known)} Known metrics: {', '.join(known)}"
        )
    p, a = _values("predictions", predictions), _values("actuals", actuals)
    if len(p) != len(a):
        raise ValueError(f"predictions and actuals differ in length: {len(p)} and {len(a)}")
    if not p:
        raise ValueError("predictions and actuals are empty")
    out: dict[str, Any] = {}
    for m in names:
        numeric, fn = PREDICTION_METRICS[m]
        if numeric:
            bad = next((v for v in (*p, *a) if isinstance(v, bool) or not isinstance(v, (int, float)) or v is None), "ok")
            if bad != "ok":
                raise TypeError(f"Metric {m!r} needs numbers, got {bad!r}")
        out[m] = float(fn(p, a))
    return out, p, a


def store_predictions(engine: Any, table: str, track_id: str, name: str, p: list[Any], a: list[Any]) -> None:
    if engine.dialect == "postgres":
        from .store import pg_side

        return pg_side.store_predictions(engine, table, track_id, name, p, a)
    rows = [(track_id, table, name, i, x, y) for i, (x, y) in enumerate(zip(p, a))]
    _write(engine, table, [
        (PREDICTIONS_DDL, ()),
        (f'DELETE FROM {quote(PREDICTIONS_TABLE)} WHERE "track_id" = ? AND "table" = ? AND "name" = ?', (track_id, table, name)),
        (f"INSERT INTO {quote(PREDICTIONS_TABLE)} VALUES (?, ?, ?, ?, ?, ?)", rows),
    ], many=True)


# ------------------------------------------------------------------ reading
class RunQueries:
    """The SQL behind ``Reader.runs/history/search/compare/aggregate/tables``."""

    def __init__(self, engine: Any, table: str) -> None:
        copied = engine.dialect == "postgres"
        if copied:  # the same SQL over an in-memory copy of the table (runs_pg.py)
            engine = runs_pg.sqlite_copy(engine, table)
        self.engine = sqlite_engine(engine)
        if self.engine is None:
            raise TypeError("Run queries need a SQLite file")
        self.table = table
        self.use_summary = summary.ENABLED and not copied  # False: the plain SQL, the reference the summary is tested against
        self.persist = True  # False: use the summary only when it is up to date (reads that must not write)
        self._summary: bool | None = None  # decided once per call, by classify()
        self._extra: tuple[bool, list[str]] | None = None  # run names and tag keys, read once per call

    def _from_summary(self, delta: list[Any] | None = None) -> bool:
        """Bring the run summary (:mod:`xetrack.summary`) up to date; False when the plain SQL answers.

        ``delta`` receives what :func:`summary.update` changed, when this call changed it."""
        if self._summary is None:
            self._summary = self.use_summary and summary.refresh(self.engine, self.table, self.persist, delta)
        return self._summary

    # -- plumbing -------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self.engine._guard.lock:
            conn = self.engine._live()
            conn.create_function(_ALIVE_FN, 1, _pid_alive, deterministic=False)
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return names, cursor.fetchall()

    def _has(self, name: str) -> bool:
        _, rows = self._query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return bool(rows)

    def columns(self) -> dict[str, str]:
        """Column -> logical type: a column added for None is numeric once its first
        value is, and an INTEGER column that got a float reads as REAL."""
        return self.engine.column_types(self.table)  # raises TableNotFoundError

    def classify(self) -> tuple[list[str], list[str], dict[str, str]]:
        """(params, metrics, logical types) of the table, decided in one SQL pass.

        A param holds at most one distinct non-NULL value inside every run (SQLite's own
        comparison: 1 and 1.0 are one value). A metric is a
        numeric column that holds more than one within at least one run. Other columns
        (text that varies within a run) are in neither; ``to_df`` still has them.
        """
        cols = self.columns()
        rest = [c for c in cols if c not in (TIMESTAMP, TRACK_ID)]
        recorded = meta.kinds(self.engine, self.table)
        if self._from_summary():
            varies_in = summary.varying(lambda sql, binds: self._query(sql, binds)[1], self.table)
            return _split(rest, [varies_in.get(c) for c in rest], cols, recorded)
        if not rest:
            return [], [], cols
        if recorded and all(c in recorded for c in rest):  # nothing left to guess
            return _split(rest, [recorded[c] == "metric" for c in rest], cols, recorded)
        # min <> max within a run is "more than one distinct non-NULL value", and is
        # much cheaper than count(DISTINCT), which sorts every column of every run.
        varies = ", ".join(f"min({quote(c)}) <> max({quote(c)}) AS c{i}" for i, c in enumerate(rest))
        maxes = ", ".join(f"max(c{i})" for i in range(len(rest)))
        _, rows = self._query(
            f"SELECT {maxes} FROM (SELECT {varies} FROM {quote(self.table)} GROUP BY {quote(TRACK_ID)})"
        )
        most = rows[0] if rows else (0,) * len(rest)
        return _split(rest, most, cols, recorded)

    def _guessed(self, agg: str) -> tuple[str, list[Any], list[str], list[str], dict[str, str], list[int]] | None:
        """The plain SQL of :meth:`summary_sql` from a split guessed on a sample of runs,
        with a check column per guessed param at the end of each row (its min beside its max).

        A column that varies inside a sampled run varies in some run: it is a metric, as
        the full pass would find. A column that varies in no sampled run is taken for a
        param, and the check columns say whether it holds in every run; when one does not,
        the caller falls back to :meth:`summary_sql`. This skips the full pass over the
        table that deciding the split takes, which costs about as much as the answer.
        Columns of a recorded kind (:mod:`xetrack.meta`) need neither. (sql, binds, params,
        metrics, types, the positions of the checked params among params); None: the
        split needs no guess (every kind recorded), or the table has run names or tags."""
        cols = self.columns()
        rest = [c for c in cols if c not in (TIMESTAMP, TRACK_ID)]
        recorded = meta.kinds(self.engine, self.table)
        guess = [c for c in rest if c not in recorded]
        if not guess or self._meta() != (False, []):
            return None
        t, tid = quote(self.table), quote(TRACK_ID)
        varies = ", ".join(f"min({quote(c)}) <> max({quote(c)}) AS c{i}" for i, c in enumerate(guess))
        maxes = ", ".join(f"max(c{i})" for i in range(len(guess)))
        # the first runs in the index and those of the latest rows
        sample = (
            f"SELECT {tid} FROM (SELECT DISTINCT {tid} FROM {t} LIMIT {SAMPLE_RUNS}) UNION "
            f"SELECT {tid} FROM (SELECT {tid} FROM {t} ORDER BY rowid DESC LIMIT {SAMPLE_ROWS})"
        )
        _, rows = self._query(f"SELECT {maxes} FROM (SELECT {varies} FROM {t} WHERE {tid} IN ({sample}) GROUP BY {tid})")
        if not rows:
            return None
        seen = dict(zip(guess, rows[0]))
        params, metrics, cols = _split(rest, [seen.get(c) for c in rest], cols, recorded)
        check = [c for c in params if c not in recorded]
        sql, binds = self._select(agg, params, metrics, cols, check=check)
        return sql, binds, params, metrics, cols, [i for i, c in enumerate(params) if c in check]

    def _runs_source(self, has_runs: bool) -> str:
        if has_runs:
            return f"(SELECT * FROM {quote(RUNS_TABLE)} WHERE \"table\" = ?)"
        return '(SELECT NULL AS "track_id", NULL AS "status", NULL AS "start", NULL AS "end", NULL AS "pid", NULL AS "host" WHERE 0)'

    def summary_sql(self, agg: str = "last") -> tuple[str, list[Any], list[str], list[str], dict[str, str]]:
        """One SELECT: a row per run with status, times, events, params and metrics."""
        if agg not in AGGS:
            raise ValueError(f"agg must be one of {', '.join(AGGS)}, got {agg!r}")
        params, metrics, cols = self.classify()
        sql, binds = self._select(agg, params, metrics, cols)
        return sql, binds, params, metrics, cols

    def _meta(self) -> tuple[bool, list[str]]:
        """(the table has run names, its tag keys): the runs() columns of :mod:`xetrack.meta`."""
        if self._extra is None:
            self._extra = meta.summary_columns(self.engine, self.table)
        return self._extra

    def _names(self, params: list[str], metrics: list[str]) -> dict[str, str]:
        names, keys = self._meta()
        return _summary_names(params, metrics, ([meta.RUN_NAME] if names else []) + [meta.TAG_PREFIX + k for k in keys])

    def _columns_out(self, params: list[str], metrics: list[str]) -> list[str]:
        """The summary's column names, in order."""
        names, keys = self._meta()
        out = list(BASE)
        if names:
            out.insert(1, meta.RUN_NAME)
        return out + list(self._names(params, metrics).values()) + [meta.TAG_PREFIX + k for k in keys]

    def _select(
        self, agg: str, params: list[str], metrics: list[str], cols: dict[str, str], only: Sequence[Any] | None = None,
        check: Sequence[str] = (),
    ) -> tuple[str, list[Any]]:
        """The SELECT of :meth:`summary_sql` for a given split, with the run names and tags
        of :mod:`xetrack.meta` when the table has any; with ``only``, just those runs; with
        ``check`` (plain SQL only, no names or tags), the min of each of those params in a
        column after the others (see :meth:`_guessed`)."""
        sql, binds = self._select_rows(agg, params, metrics, cols, only, check)
        names, keys = self._meta()
        if not names and not keys:
            return sql, binds
        if check:
            raise ValueError("check: a table without run names and tags only")
        rest = list(self._names(params, metrics).values())
        return meta.wrap_select(sql, list(BASE), rest, names, keys, self.table, binds)

    def _select_rows(
        self, agg: str, params: list[str], metrics: list[str], cols: dict[str, str], only: Sequence[Any] | None = None,
        check: Sequence[str] = (),
    ) -> tuple[str, list[Any]]:
        has_runs = self._has(RUNS_TABLE)
        t, tid = quote(self.table), quote(TRACK_ID)
        out_names = self._names(params, metrics)
        select = [
            f"g.{tid} AS {quote('track_id')}",
            "CASE WHEN r.\"status\" = 'running' AND r.\"host\" = ? AND NOT "
            f"{_ALIVE_FN}(r.\"pid\") THEN 'dead' ELSE r.\"status\" END AS \"status\"",
            'coalesce(r."start", g."_first") AS "start"',
            'CASE WHEN r."track_id" IS NULL THEN g."_last" ELSE r."end" END AS "end"',
            '(julianday(coalesce(CASE WHEN r."track_id" IS NULL THEN g."_last" ELSE r."end" END, g."_last"))'
            ' - julianday(coalesce(r."start", g."_first"))) * 86400.0 AS "duration"',
            'g."_events" AS "events"',
        ]
        if self._summary:  # the per-run aggregates come from the summary tables
            source, source_binds = summary.source_sql(self.table, params, metrics, agg, only)
            select += [f"g.p{i} AS {quote(out_names[c])}" for i, c in enumerate(params)]
            select += [f"g.m{i} AS {quote(out_names[c])}" for i, c in enumerate(metrics)]
            sql = (
                f"SELECT {', '.join(select)} FROM ({source}) AS g "
                f"LEFT JOIN {self._runs_source(has_runs)} AS r ON r.\"track_id\" = g.{tid}"
            )
            return sql, [socket.gethostname(), *source_binds, *([self.table] if has_runs else [])]
        if only is not None:
            raise ValueError("only: the summary answers only")
        inner = [f"{tid}", f"min({quote(TIMESTAMP)}) AS \"_first\"", f"max({quote(TIMESTAMP)}) AS \"_last\"", 'count(*) AS "_events"']
        for i, c in enumerate(params):
            inner.append(f"max({quote(c)}) AS p{i}")
            select.append(f"g.p{i} AS {quote(out_names[c])}")
            if c in check:
                inner.append(f"min({quote(c)}) AS q{i}")
        for i, c in enumerate(metrics):
            if agg in ("last", "first"):
                order = "DESC" if agg == "last" else "ASC"
                select.append(
                    f"(SELECT {quote(c)} FROM {t} AS x WHERE x.{tid} = g.{tid} AND {quote(c)} IS NOT NULL "
                    f"ORDER BY x.rowid {order} LIMIT 1) AS {quote(out_names[c])}"
                )
            else:
                inner.append(f"{AGGS[agg]}({quote(c)}) AS m{i}")
                select.append(f"g.m{i} AS {quote(out_names[c])}")
        select += [f"g.q{i} AS \"?check{i}\"" for i, c in enumerate(params) if c in check]
        sql = (
            f"SELECT {', '.join(select)} FROM (SELECT {', '.join(inner)} FROM {t} GROUP BY {tid}) AS g "
            f"LEFT JOIN {self._runs_source(has_runs)} AS r ON r.\"track_id\" = g.{tid}"
        )
        binds: list[Any] = [socket.gethostname()]
        if has_runs:
            binds.append(self.table)
        return sql, binds

    def _frame(self, names: list[str], rows: list[tuple[Any, ...]], types: dict[str, str]) -> pd.DataFrame:
        decl = {"events": "INTEGER", "duration": "REAL", "pid": "INTEGER"}
        return frame_from_rows(names, [decl.get(n, types.get(n, "")) for n in names], rows)

    def _types(self, params: list[str], metrics: list[str], cols: dict[str, str], agg: str) -> dict[str, str]:
        names = self._names(params, metrics)
        out = {names[c]: cols[c] for c in params}
        for c in metrics:
            out[names[c]] = "REAL" if agg == "mean" else cols[c]
        has_names, keys = self._meta()
        out.update({meta.TAG_PREFIX + k: "TEXT" for k in keys})
        if has_names:
            out[meta.RUN_NAME] = "TEXT"
        return out

    # -- the calls --------------------------------------------------------------
    def runs(self, agg: str = "last") -> pd.DataFrame:
        key = summary.cache_key(self.engine, self.table, "runs", agg, self.use_summary) if self.use_summary else None
        if key is not None:  # warm: nothing in the file changed since this process last answered
            tok = summary.token(self.engine)
            frame = summary.cached(key, tok)
            if frame is not None:
                return frame.copy()
            frame = self._patched(key, agg)
            if frame is not None:
                return frame.copy()
        checks: list[int] = []
        guessed = None if not self.use_summary or self._from_summary() or agg not in AGGS else self._guessed(agg)
        if guessed is not None:
            sql, binds, params, metrics, cols, checks = guessed
        else:
            sql, binds, params, metrics, cols = self.summary_sql(agg)
        if key is not None:
            tok = summary.token(self.engine)  # after the summary's own writes, before the read
            gen = summary.generation(self.engine, self.table) if self._summary else None
            frame = summary.cached(key, tok, gen)
            if frame is not None:
                summary.remember(key, tok, gen, frame)
                return frame.copy()
        names, rows = self._query(sql + ' ORDER BY "start", "track_id"', binds)
        if checks:
            width = len(names) - len(checks)
            pairs = [(len(BASE) + i, width + k) for k, i in enumerate(checks)]
            if any(any(r[a] != r[b] for r in rows) for a, b in pairs):
                # a guessed param varies in a run outside the sample: decide on every run
                sql, binds, params, metrics, cols = self.summary_sql(agg)
                names, rows = self._query(sql + ' ORDER BY "start", "track_id"', binds)
            else:
                names = names[:width]  # the frame leaves the check columns out
        frame = self._frame(names, rows, self._types(params, metrics, cols, agg))
        # A running run turns dead when its process ends, with no write to the file.
        if key is not None and not frame["status"].isin(["running", "dead"]).any():
            summary.remember(key, tok, gen, frame, (agg, params, metrics, cols) if self._summary else None)
            return frame.copy()
        return frame

    def _patched(self, key: Any, agg: str) -> pd.DataFrame | None:
        """The cached runs frame with only the runs that the summary update of this call
        touched recomputed, when that gives what a from-scratch :meth:`runs` gives (rows
        appended to runs of the same columns, nothing else changed since the frame was
        cached); else None, and the caller computes it whole."""
        cached = summary.entry(key)
        if cached is None or cached[3] is None or cached[3][0] != agg:
            return None
        if not self._from_summary():
            return None
        _, old_gen, old, meta = cached
        params, metrics, cols = meta[1:4]
        tok = summary.token(self.engine)
        gen = summary.generation(self.engine, self.table)
        # what this process's summary updates since the frame's gen touched; None when
        # another connection changed the summary too, or more than rows were appended
        touched = summary.changes_since(self.engine, self.table, old_gen, gen)
        if touched is None or None in touched or len(touched) > PATCH_RUNS:
            return None
        if self.columns() != cols:
            return None
        only = list(touched)
        varies = summary.varying_in(lambda sql, binds: self._query(sql, binds)[1], self.table, only)
        if any(varies.get(c) for c in params):  # a param now varies within a run: the split moves
            return None
        sql, binds = self._select(agg, params, metrics, cols, only)
        names, rows = self._query(sql + ' ORDER BY "start", "track_id"', binds)
        if len(rows) != len(only) or names != list(old.columns):
            return None
        if not all(isinstance(r[0], str) and isinstance(r[2], str) for r in rows):
            return None
        new = self._frame(names, rows, self._types(params, metrics, cols, agg))
        dtypes = old.dtypes
        for j, n in enumerate(names):
            if dtypes.iloc[j] == new[n].dtype:
                continue
            # NULL alone (a new run without a status yet) takes the whole's dtype, as a NULL
            # among values does; any other difference: the dtype of the whole might differ
            if all(r[j] is None for r in rows) and _NULL_JOINS.get(str(dtypes.iloc[j])) == dtypes.iloc[j].kind:
                new[n] = pd.array([None] * len(rows), dtype=dtypes.iloc[j])
            else:
                return None
        if not all(isinstance(dtypes[c], pd.StringDtype) for c in ("start", "track_id")):
            return None  # the order below is that of text without NULLs
        tids = old["track_id"]
        if tids.hasnans or old["start"].hasnans:
            return None
        keep = np.flatnonzero(~tids.isin(only).to_numpy())
        if not len(keep):
            return None
        # ORDER BY "start", "track_id": text compares as its code points (UTF-8 bytes).
        # The frame's two sort columns as str objects, kept from the last patch.
        all_starts, all_ids = meta[4] if len(meta) > 4 else (
            old["start"].to_numpy(dtype=object), tids.to_numpy(dtype=object))
        starts, ids = all_starts[keep], all_ids[keep]
        at = []
        for r in rows:
            lo = int(np.searchsorted(starts, r[2], "left"))
            hi = int(np.searchsorted(starts, r[2], "right"))
            at.append(lo + int(np.searchsorted(ids[lo:hi], r[0])))
        order = np.insert(keep, at, np.arange(len(old), len(old) + len(rows)))
        frame = pd.concat([old, new], ignore_index=True).take(order).reset_index(drop=True)
        if not frame.dtypes.equals(dtypes):
            return None
        if not new["status"].isin(["running", "dead"]).any():
            sort_keys = tuple(
                np.concatenate([column, np.array([r[j] for r in rows], dtype=object)])[order]
                for column, j in ((all_starts, 2), (all_ids, 0))
            )
            summary.remember(key, tok, gen, frame, (agg, params, metrics, cols, sort_keys))
        return frame

    def search(self, where: str | None = None, order_by: Any = None, limit: int | None = None, agg: str = "last") -> pd.DataFrame:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be an int >= 0, got {limit!r}")
        copy, built = self._summary_copy(agg)
        if copy is not None:  # the same SELECT over the per-run rows, copied in memory
            params, metrics, cols, mem = copy
            sql, binds = '"s"', []
        else:
            sql, binds, params, metrics, cols = built or self.summary_sql(agg)
            sql = f"({sql}) AS s"
        summary = self._columns_out(params, metrics)
        clause, values = ("", [])
        if where is not None and str(where).strip():
            cond, values = parse_condition(where, summary)
            clause = f" WHERE {cond}"
        order = order_sql(order_by, summary) if order_by else '"start", "track_id"'
        query = f"SELECT * FROM {sql}{clause} ORDER BY {order}"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        if copy is not None:
            names, rows = mem.query(query, values)
        else:
            names, rows = self._query(query, [*binds, *values])
        return self._frame(names, rows, self._types(params, metrics, cols, agg))

    def _summary_copy(self, agg: str) -> tuple[Any, Any]:
        """(copy, the :meth:`summary_sql` tuple when this call computed it). copy: (params,
        metrics, types, the per-run rows of :meth:`summary_sql` in an in-memory table ``s``)
        while nothing in the file changed, made by the second search of an unchanged file
        (a first search pays no more than the SELECT); None when the summary does not
        answer or a run is running (its status can turn ``dead`` with no write)."""
        if not self.use_summary or agg not in AGGS:
            return None, None
        key = summary.cache_key(self.engine, self.table, "search", agg)
        if key is None:
            return None, None
        tok = summary.token(self.engine)
        hit = summary.entry(key)
        if hit is not None and hit[0] == tok and hit[3] is not None:
            return hit[3], None
        built = self.summary_sql(agg)
        if not self._summary:
            return None, built
        tok = summary.token(self.engine)
        gen = summary.generation(self.engine, self.table)
        hit = summary.entry(key)
        if hit is None or gen is None or hit[1] != gen:
            summary.remember(key, tok, gen, None, None)  # seen once: the next search makes the copy
            return None, built
        if hit[3] is not None:
            summary.remember(key, tok, gen, None, hit[3])
            return hit[3], built
        sql, binds, params, metrics, cols = built
        # the rows in the order the SELECT gives them, which is what a search's ORDER BY
        # sees first: ties come out alike
        names, rows = self._query(f"SELECT * FROM ({sql}) AS s", binds)
        if any(r[1] in ("running", "dead") for r in rows):
            return None, built
        copy = (params, metrics, cols, _MemoryRuns(names, rows))
        summary.remember(key, tok, gen, None, copy)
        return copy, built

    def history(self, metric: str, track_id: str | None = None, step: str | None = None) -> pd.DataFrame:
        sql, binds, decls, constants = self.history_sql(metric, track_id, step)
        # A fetch makes a tuple per row, each one counted by the cyclic GC, which would
        # walk them every 700 rows; they hold only numbers and text, so no cycle can form
        # while the rows are fetched and turned into columns, and the walks are skipped.
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            rows = self.engine.query(sql, binds)  # no SQL function of ours in it: a plain read
            return frame_from_rows(["track_id", "step", "value"][len(constants):], decls, rows, constants)
        finally:
            if collecting:
                gc.enable()

    def history_sql(
        self, metric: str, track_id: str | None = None, step: str | None = None
    ) -> tuple[str, list[Any], list[str], list[tuple[str, str, Any]]]:
        """The SELECT behind ``history``: (sql, binds, logical types of its step and value
        columns, the columns it leaves out as constants); the frame is track_id, step, value.

        One run (a str ``track_id``) is a search of the track_id index that fetches only
        the step and the metric: the id is the same on every row, so it is not fetched
        (a str object per row) but repeated in the frame. Rows come in table order.
        """
        cols = self.columns()
        metric = _resolve(metric, list(cols), self.table)
        if step is None:
            step = next((c for c in STEP_COLUMNS if c in cols), None)
        else:
            step = _resolve(step, list(cols), self.table)
        t, tid, value = quote(self.table), quote(TRACK_ID), quote(metric)
        one = isinstance(track_id, str)  # any other value: the stored ids, as SQLite matched them
        where = "" if track_id is None else f" WHERE {tid} = ?"
        binds: list[Any] = [] if track_id is None else [track_id]
        fetched = "" if one else f"{tid}, "
        if step:
            sql = (
                f"SELECT {fetched}{quote(step)}, {value} FROM {t}{where}"
                f"{' AND' if where else ' WHERE'} {value} IS NOT NULL ORDER BY rowid"
            )
        else:  # the row's position in its run, counted before the NULLs are left out
            part = "" if track_id is not None else f"PARTITION BY {tid} "
            sql = (
                f"SELECT {fetched}s, v FROM (SELECT {tid}, row_number() OVER ({part}ORDER BY rowid) - 1 AS s, "
                f"{value} AS v, rowid AS r FROM {t}{where}) WHERE v IS NOT NULL ORDER BY r"
            )
        decls = [cols.get(step, "INTEGER") if step else "INTEGER", cols[metric]]
        if one:
            return sql, binds, decls, [("track_id", "", track_id)]
        return sql, binds, ["", *decls], []

    def compare(self, track_ids: Sequence[str], only_diff: bool = False, agg: str = "last") -> pd.DataFrame:
        if isinstance(track_ids, str):
            track_ids = [track_ids]
        ids = list(dict.fromkeys(track_ids))
        if not ids:
            raise ValueError("compare needs at least one track_id")
        sql, binds, params, metrics, cols = self.summary_sql(agg)
        marks = ", ".join("?" for _ in ids)
        names, rows = self._query(f"SELECT * FROM ({sql}) AS s WHERE \"track_id\" IN ({marks})", [*binds, *ids])
        frame = self._frame(names, rows, self._types(params, metrics, cols, agg))
        found = set(frame["track_id"]) if len(frame) else set()
        missing = [i for i in ids if i not in found]
        if missing:
            _, known = self._query(f"SELECT DISTINCT {quote(TRACK_ID)} FROM {quote(self.table)}")
            raise KeyError(
                f"Run {missing[0]!r} not found in table {self.table!r}."
                f"{close_matches(missing[0], [k for (k,) in known if k is not None])}"
            )
        out = frame.set_index("track_id").loc[ids].T.astype(object)
        out.index.name = "field"
        out.columns.name = None
        if only_diff:
            same = out.apply(lambda r: len({_key(v) for v in r}) <= 1, axis=1)
            out = out[~same]
        return out

    def aggregate(self, metric: str, by: Sequence[str], agg: Sequence[str], run_agg: str = "last") -> pd.DataFrame:
        allowed = {"mean": "avg({m})", "min": "min({m})", "max": "max({m})", "count": "count({m})", "sum": "sum({m})", "std": None}
        aggs = [agg] if isinstance(agg, str) else list(agg)
        for a in aggs:
            if a not in allowed:
                raise ValueError(f"Unknown agg {a!r}: choose from {', '.join(allowed)}")
        by = [by] if isinstance(by, str) else list(by)
        sql, binds, params, metrics, cols = self.summary_sql(run_agg)
        summary = self._columns_out(params, metrics)
        m = quote(_resolve(metric, summary, self.table + " runs summary"))
        keys = [quote(_resolve(b, summary, self.table + " runs summary")) for b in by]
        parts = list(keys)
        for a in aggs:
            if a == "std":  # sample standard deviation, two passes
                parts.append(
                    f"sqrt(sum(({m} - _mean) * ({m} - _mean)) / nullif(count({m}) - 1, 0)) AS {quote(a)}"
                )
            else:
                parts.append(allowed[a].format(m=m) + f" AS {quote(a)}")  # type: ignore[union-attr]
        part = f"PARTITION BY {', '.join(keys)}" if keys else ""
        group = f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else ""
        query = f"SELECT {', '.join(parts)} FROM (SELECT *, avg({m}) OVER ({part}) AS _mean FROM ({sql})){group}"
        try:
            names, rows = self._query(query, binds)
        except sqlite3.OperationalError as exc:
            if "sqrt" not in str(exc):
                raise
            names, rows = self._query(query.replace("sqrt(", "(", 1), binds)  # no math functions
            rows = [tuple(math.sqrt(v) if n == "std" and v is not None else v for n, v in zip(names, r)) for r in rows]
        types = {**self._types(params, metrics, cols, run_agg), "count": "INTEGER"}
        return self._frame(names, rows, {n: ("REAL" if n in ("mean", "std") else types.get(n, "")) for n in names})

    def predictions(self, track_id: str, name: str | None = None) -> pd.DataFrame:
        if not self._has(PREDICTIONS_TABLE):
            return pd.DataFrame({"idx": pd.Series([], dtype="int64"), "prediction": [], "actual": []})
        sql = f'SELECT "idx", "prediction", "actual" FROM {quote(PREDICTIONS_TABLE)} WHERE "track_id" = ? AND "table" = ?'
        binds: list[Any] = [track_id, self.table]
        if name is not None:
            sql += ' AND "name" = ?'
            binds.append(name)
        names, rows = self._query(sql + ' ORDER BY "name", "idx"', binds)
        frame = pd.DataFrame(rows, columns=names)
        return frame.infer_objects()


class _MemoryRuns:
    """The per-run rows of a summary SELECT in an in-memory SQLite table ``s``, with the
    column affinities the SELECT's columns have (``events`` INTEGER, the others none),
    so that a WHERE and ORDER BY over it compare exactly as over the SELECT."""

    def __init__(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        import threading

        self.lock = threading.Lock()
        self.conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        decl = ", ".join(quote(n) + (" INTEGER" if n == "events" else "") for n in names)
        self.conn.execute(f"CREATE TABLE s ({decl})")
        marks = ", ".join("?" for _ in names)
        self.conn.execute("BEGIN")
        self.conn.executemany(f"INSERT INTO s VALUES ({marks})", rows)
        self.conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self.lock:
            cursor = self.conn.execute(sql, params)
            return [d[0] for d in cursor.description], cursor.fetchall()


def tables(engine: Any) -> pd.DataFrame:
    """Every experiment table with its row and run counts (runs empty without a
    ``track_id`` column, in a table some other tool wrote), and a ``description`` column
    when some table has one."""
    sq = sqlite_engine(engine) if engine.dialect == "sqlite" else None
    rows = []
    described = meta.descriptions(engine)
    for name in engine.tables():  # experiment tables only: internal ones are left out
        if engine.dialect == "postgres":
            from .store.pg_side import table_counts

            rows.append((name, *table_counts(engine, name), described.get(name)))
            continue
        has_runs = TRACK_ID in {c.lower() for c in engine.columns(name)}
        runs = f"count(DISTINCT {quote(TRACK_ID)})" if has_runs else "NULL"
        with sq._guard.lock:
            n, run_count = sq._live().execute(f"SELECT count(*), {runs} FROM {quote(name)}").fetchone()
        rows.append((name, n, run_count, described.get(name)))
    frame = pd.DataFrame(rows, columns=["table", "rows", "runs", "description"])
    if not described:  # a file without descriptions keeps 0.7.0's three columns
        frame = frame.drop(columns="description")
    return frame.astype({"rows": "Int64", "runs": "Int64"})


# --------------------------------------------------------------- helpers
def _pid_alive(pid: Any) -> int:
    if pid is None:
        return 1  # nothing to check: trust the status
    import psutil

    return int(psutil.pid_exists(int(pid)))


def _key(value: Any) -> Any:
    try:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return None
    except TypeError:
        pass
    return value


def _split(
    rest: list[str], most: Sequence[Any], cols: dict[str, str], recorded: Mapping[str, str] | None = None
) -> tuple[list[str], list[str], dict[str, str]]:
    """Params and metrics: the kind recorded when the column was written (see
    :mod:`xetrack.meta`), else the guess ``most`` (more than one value in some run)."""
    params, metrics = [], []
    recorded = recorded or {}
    for c, n in zip(rest, most):
        kind = recorded.get(c)
        if kind == "param":
            params.append(c)
        elif kind == "metric":
            metrics.append(c)
        elif not n:
            params.append(c)
        elif cols[c].upper() in _NUMERIC or c in STEP_COLUMNS:
            metrics.append(c)
    return params, metrics, cols


def _summary_names(params: list[str], metrics: list[str], reserved: Sequence[str] = ()) -> dict[str, str]:
    """User column -> summary column; one that clashes with a summary column gets ``_``."""
    out = {}
    taken = set(BASE) | {r.lower() for r in reserved}
    for c in [*params, *metrics]:
        name = c
        while name.lower() in taken or name.lower() in {v.lower() for v in out.values()}:
            name += "_"
        out[c] = name
    return out


