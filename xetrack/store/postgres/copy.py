"""The PostgreSQL end of a copy (:mod:`xetrack.copy.postgres`): the twins of the
engine-end functions of :mod:`xetrack.store.sqlite.copy`, same names and signatures
(:class:`~xetrack.store.features.CopySQL`, ``features(engine).copy``).

>>> features(engine).copy.run_statuses(engine, "default")  # doctest: +SKIP
{'fierce-pudu-1649': 'finished'}
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..tables import RUNS
from . import side as pg_side

Row = tuple[Any, ...]


def pages(engine: Any, table: str, size: int) -> Iterator[tuple[tuple[str, ...], list[Row]]]:
    """(column names, rows) in table order, ``size`` rows at a time, values as logged."""
    for names, _types, values in engine.pages(table, size):
        yield tuple(names), [tuple(row) for row in values.tolist()]


def stored_pairs(engine: Any, table: str, track_ids: Sequence[str], between: tuple[str, str] | None) -> set[Row]:
    """The ``(track_id, timestamp)`` pairs of the table's rows of these runs; with
    ``between`` (first, last), only those whose timestamp lies in it."""
    pairs: set[Row] = engine.stored_pairs(table, track_ids, between)
    return pairs


def run_rows(engine: Any, table: str) -> list[Row]:
    """The lifecycle rows (``RUN_COLUMNS`` order) of ``table``'s runs; none without any."""
    return pg_side.side_rows(engine, RUNS, table)


def run_statuses(engine: Any, table: str) -> dict[str, str]:
    """track_id -> status of ``table``'s lifecycle rows."""
    return {r[0]: r[2] for r in pg_side.side_rows(engine, RUNS, table)}


def put_run(engine: Any, table: str, row: Sequence[Any]) -> None:
    """Insert or replace one lifecycle row (``RUN_COLUMNS`` order)."""
    pg_side.put_run(engine, table, row)
