"""The run side tables on PostgreSQL: the same functions as :mod:`.sqlite_runs_side`
(:func:`mark_started`, :func:`mark_ended`, :func:`record_run`, :func:`run_records`,
:func:`store_predictions`, :func:`table_counts`), called by :mod:`xetrack.runs`.

The SQL is in :mod:`.pg_side`, which ``xt copy`` uses as well.

>>> run_records(engine, "default")  # doctest: +SKIP
{'fierce-pudu-1649': ('finished', '2026-...', '2026-...')}
"""

from __future__ import annotations

from typing import Any

from ..tables import RUNS
from .side import mark_ended, mark_started, put_run, side_rows, store_predictions, table_counts


def record_run(
    engine: Any, table: str, track_id: str, status: str, start: str | None, end: str | None, error: str | None
) -> None:
    """Record a run's lifecycle as given, without pid or host (another tool ran it)."""
    put_run(engine, table, (track_id, table, status, start, end, error, None, None))


def run_records(engine: Any, table: str) -> dict[str, tuple[Any, Any, Any]]:
    """track_id -> (status, start, end) of the lifecycle rows of ``table``."""
    return {r[0]: (r[2], r[3], r[4]) for r in side_rows(engine, RUNS, table)}


__all__ = ["mark_started", "mark_ended", "record_run", "run_records", "store_predictions", "table_counts"]
