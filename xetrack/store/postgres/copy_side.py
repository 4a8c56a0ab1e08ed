"""The PostgreSQL end of a copy's side tables (:mod:`xetrack.copy.postgres_side_tables`):
the twins of the engine-end functions of :mod:`xetrack.store.sqlite.copy_side`, same
names and signatures (:class:`~xetrack.store.features.CopySideSQL`,
``features(engine).copy_side``), over :mod:`.side`, :mod:`.blobs` and :mod:`.models`.

>>> features(engine).copy_side.model_aliases(engine)  # doctest: +SKIP
[('classifier', 'champion', 2)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..tables import ARTIFACT_COLUMNS
from . import blobs as pg_blobs
from . import models as pg_models
from . import side as pg_side

Row = tuple[Any, ...]


def prediction_pages(engine: Any, table: str, size: int) -> Iterator[list[Row]]:
    """The predictions of ``table`` (``PREDICTION_COLUMNS`` order), ``size`` rows at a time."""
    return pg_side.prediction_pages(engine, table, size)


def put_predictions(engine: Any, rows: Sequence[Row]) -> int:
    """Add pairs (``PREDICTION_COLUMNS`` order) the table lacks; returns how many were added."""
    return pg_side.put_predictions(engine, rows)


def artifact_entries(engine: Any, table: str, size: int) -> list[Row]:
    """Every artifact entry (``ARTIFACT_COLUMNS`` order) of ``table``."""
    return pg_blobs.artifact_rows(engine, table, None, ARTIFACT_COLUMNS)


def put_artifacts(engine: Any, rows: Sequence[Row]) -> tuple[int, int]:
    """Add the entries TARGET lacks whose bytes it holds, in one transaction; returns
    (added, left out for want of their bytes)."""

    def body(conn: Any) -> tuple[int, int]:
        pg_blobs.create_tables(conn)
        stored = [row for row in rows if pg_blobs.header(conn, row[4]) is not None]
        return sum(pg_blobs.put_artifact(conn, row, replace=False) for row in stored), len(rows) - len(stored)

    return pg_blobs.write(engine, body)


def model_versions(engine: Any) -> list[Row]:
    """Every version (``MODEL_COLUMNS`` order), by name and version."""
    return pg_models.all_versions(engine)


def model_aliases(engine: Any) -> list[Row]:
    """Every ``(name, alias, version)``, by alias."""
    return pg_models.all_aliases(engine)


def registry_write(engine: Any, body: Callable[[Any], Any]) -> Any:
    """``body(conn)`` in one write transaction of TARGET, its registry tables created."""
    return pg_models.write(engine, body, "copied model versions")


def same_version(conn: Any, name: str, key: str, created: str) -> int | None:
    """TARGET's number of the version of ``name`` with this hash and creation time, or None."""
    return pg_models.same_version(conn, name, key, created)


def stored_kind(conn: Any, key: str) -> str | None:
    """'asset' or 'artifact' when TARGET stores bytes under ``key``, else None."""
    return pg_models.stored_kind(conn, key)


def put_asset(conn: Any, key: str, data: bytes) -> None:
    """Store object ``key`` unless it is stored (a model version's pickled bytes)."""
    pg_models.put_asset(conn, key, data)


def add_version(conn: Any, row: Sequence[Any]) -> int:
    """Append a version (``MODEL_COLUMNS`` without ``version``) as the model's next
    number; returns that number."""
    number = pg_models.next_version(conn, row[0])
    pg_models.insert_version(conn, (row[0], number, *row[1:]))
    return number


def point(conn: Any, name: str, alias: str, version: int) -> int:
    """Set ``alias`` of model ``name`` unless it is set; returns 1 when it was set."""
    return pg_models.point(conn, name, alias, version, replace=False)
