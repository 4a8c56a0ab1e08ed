"""Artifact entries on PostgreSQL: the same functions as :mod:`.sqlite_artifacts`
(:func:`blob_store`, :func:`put_artifact`, :func:`artifact_rows`, :func:`names_of_hash`,
:func:`hash_of_name`, :func:`distinct`); the SQL, and the bytes' own, is in :mod:`.pg_blobs`.

>>> distinct(engine, "name", "default")  # doctest: +SKIP
['metrics.csv', 'model.pt']
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from . import blobs as pg_blobs
from .blobs import artifact_rows, distinct, hash_of_name, names_of_hash, put_artifact


def blob_store(engine: Any) -> ModuleType:
    """The module that keeps the bytes: :mod:`.pg_blobs`."""
    return pg_blobs


__all__ = ["blob_store", "put_artifact", "artifact_rows", "names_of_hash", "hash_of_name", "distinct"]
