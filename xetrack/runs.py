"""Runs: the lifecycle and predictions side tables, and the tables overview. The SQL
behind runs, history, search and compare is :mod:`xetrack.run_queries`.

Two side tables live next to the experiment tables (``xetrack_*`` names are reserved):

- ``xetrack_runs``: one row per (track_id, table): status, start, end, error, pid, host;
- ``xetrack_predictions``: prediction/actual pairs kept by ``Tracker.log_predictions``.

The wide table is never changed. The SQL is in :mod:`xetrack.store.sqlite.runs_side` and
:mod:`xetrack.store.postgres.runs_side`, chosen by :func:`xetrack.store.features`.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

import pandas as pd

from . import meta
from .store import features
from .store.base import close_matches
from .store.tables import PREDICTIONS, RUNS

#: A run's statuses: running, then one of the others (pruned: an Optuna trial stopped early).
STATUSES = ("running", "finished", "failed", "killed", "pruned")
__all__ = [
    "RUNS",
    "PREDICTIONS",
    "STATUSES",
    "now",
    "mark_started",
    "mark_ended",
    "record_run",
    "run_records",
    "prediction_metrics",
    "store_predictions",
    "tables",
]


def now() -> str:
    """Local time in the wide table's format ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    micros = time.time_ns() // 1000
    second, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S.", time.localtime(second)) + f"{fraction:06d}"


# --------------------------------------------------------------------- writing
def mark_started(engine: Any, table: str, track_id: str) -> None:
    """Record the run as ``running`` now, in this process on this host.

    >>> mark_started(tracker._engine, "default", tracker.track_id)  # doctest: +SKIP
    """
    features(engine).runs_side.mark_started(engine, table, track_id, now(), os.getpid(), socket.gethostname())


def mark_ended(
    engine: Any, table: str, track_id: str, status: str, error: str | None, started_as: str | None = None
) -> None:
    """Record the run's end; a run never started gets its start set to now as well.

    ``started_as``: the track_id the run was started under, when it was renamed since
    (``tracker.track_id = ...`` inside ``with``): its row moves to the new id.
    """
    if status not in STATUSES[1:]:
        raise ValueError(f"status must be one of {', '.join(STATUSES[1:])}, got {status!r}")
    features(engine).runs_side.mark_ended(
        engine, table, track_id, status, error, started_as, now(), os.getpid(), socket.gethostname()
    )


def record_run(
    engine: Any, table: str, track_id: str, status: str, start: str | None, end: str | None, error: str | None = None
) -> None:
    """Record a run's lifecycle as given (an import: another tool ran it, so no pid or host)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    features(engine).runs_side.record_run(engine, table, track_id, status, start, end, error)


def run_records(engine: Any, table: str) -> dict[str, tuple[Any, Any, Any]]:
    """track_id -> (status, start, end) of the runs side table for ``table``."""
    return features(engine).runs_side.run_records(engine, table)


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


def prediction_metrics(
    predictions: Any, actuals: Any, metrics: Iterable[str]
) -> tuple[dict[str, Any], list[Any], list[Any]]:
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
            bad = next(
                (v for v in (*p, *a) if isinstance(v, bool) or not isinstance(v, (int, float)) or v is None), "ok"
            )
            if bad != "ok":
                raise TypeError(f"Metric {m!r} needs numbers, got {bad!r}")
        out[m] = float(fn(p, a))
    return out, p, a


def store_predictions(engine: Any, table: str, track_id: str, name: str, p: list[Any], a: list[Any]) -> None:
    """Keep the pairs checked by :func:`prediction_metrics` under ``name`` (replacing any)."""
    features(engine).runs_side.store_predictions(engine, table, track_id, name, p, a)


def tables(engine: Any) -> pd.DataFrame:
    """Every experiment table with its row and run counts (runs empty without a
    ``track_id`` column, in a table some other tool wrote), and a ``description`` column
    when some table has one."""
    store = features(engine).runs_side
    described = meta.descriptions(engine)
    rows = [
        (name, *store.table_counts(engine, name), described.get(name)) for name in engine.tables()
    ]  # experiment tables only: internal ones are left out
    frame = pd.DataFrame(rows, columns=["table", "rows", "runs", "description"])
    if not described:  # a file without descriptions keeps 0.7.0's three columns
        frame = frame.drop(columns="description")
    return frame.astype({"rows": "Int64", "runs": "Int64"})


#: Moved to :mod:`xetrack.run_queries`; still importable from here, as before.
_MOVED = ("RunQueries", "AGGS", "STEP_COLUMNS", "BASE", "PATCH_RUNS", "SAMPLE_RUNS", "SAMPLE_ROWS")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from . import run_queries

        return getattr(run_queries, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
