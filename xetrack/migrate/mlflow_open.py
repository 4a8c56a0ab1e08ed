"""Which MLflow tracking store a source names, opened for reading: an ``mlruns/`` folder
or an MLflow SQLite database (:mod:`.mlflow_store`), or an MLflow database on PostgreSQL
(:mod:`.mlflow_pg`). All three give the same plain records to the import.

>>> open_store("no/such/folder")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
xetrack.migrate.mlflow_store.NotAnMlflowStore: 'no/such/folder' is not an MLflow store ...
"""

from __future__ import annotations

import os

from ..store import hide_passwords
from .mlflow_pg import PostgresStore, is_postgres_uri
from .mlflow_store import FileStore, NotAnMlflowStore, SqliteStore, local_path


def open_store(src: str, artifact_root: str | None = None) -> FileStore | SqliteStore:
    """The store at ``src``: an ``mlruns/`` folder (or ``file://`` URI), ``sqlite:///path``
    or a PostgreSQL database (``postgresql+psycopg://user@host/db``, :mod:`.mlflow_pg`)."""
    text = os.fspath(src)
    if text.startswith("sqlite:"):
        return SqliteStore(text, artifact_root)
    if is_postgres_uri(text):
        return PostgresStore(text, artifact_root)
    if "://" in text and not text.startswith("file:"):
        raise NotAnMlflowStore(
            f"{hide_passwords(text)!r} is not an MLflow store this import reads: give an mlruns/ folder, "
            "sqlite:///mlflow.db or postgresql+psycopg://user@host/db"
        )
    return FileStore(local_path(text) or text, artifact_root)


__all__ = ["open_store"]
