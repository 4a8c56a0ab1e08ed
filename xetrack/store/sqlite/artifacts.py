"""Artifact entries (``xetrack_artifacts``) on a SQLite file (the sqlite and duckdb
engines); the bytes themselves are :mod:`.blobs`'s.

:mod:`xetrack.artifacts` reads sources, checks names and drives the upload; this module
and :mod:`.pg_artifacts` (PostgreSQL) have the same functions: :func:`blob_store`,
:func:`put_artifact`, :func:`artifact_rows`, :func:`names_of_hash`, :func:`hash_of_name`,
:func:`distinct`. Entries list in the order they were first logged (rowid here, an
identity column on PostgreSQL).

>>> from xetrack.store import open_engine, IN_MEMORY
>>> artifact_rows(open_engine(IN_MEMORY), "default", None, ("name", "hash"))
[]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ...schema import quote
from ..base import Engine
from ..tables import ARTIFACTS
from . import blobs
from .ddl import ARTIFACTS_DDL
from .engine import sqlite_of


def blob_store(engine: Engine) -> ModuleType | None:
    """The module that keeps the bytes (:mod:`.blobs`); None under SKIP_INSERT (nothing is kept)."""
    return None if sqlite_of(engine) is None else blobs


def put_artifact(conn: sqlite3.Connection, row: Sequence[Any], replace: bool = True) -> int:
    """Inside the blob store's write transaction: record one entry (``ARTIFACT_COLUMNS``
    order). ``replace``: a run logging a name again replaces its entry; else an existing
    entry wins. Returns the rows written."""
    conn.execute(ARTIFACTS_DDL)
    action = (
        'DO UPDATE SET "type" = excluded."type", "hash" = excluded."hash", "size" = excluded."size", '
        '"created" = excluded."created"'
        if replace
        else "DO NOTHING"
    )
    cur = conn.execute(
        f'INSERT INTO {quote(ARTIFACTS)} ("track_id", "table", "name", "type", "hash", "size", "created") '
        f'VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT ("track_id", "table", "name") {action}',
        tuple(row),
    )
    return cur.rowcount


def _run(track_id: str | None) -> tuple[str, list[Any]]:
    return ("", []) if track_id is None else (' AND "track_id" = ?', [track_id])


def _query(engine: Engine, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    sq = sqlite_of(engine)
    return [] if sq is None else sq.query(sql, params)


def artifact_rows(engine: Engine, table: str, track_id: str | None, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The entries of ``table`` (of one run), in the order they were first logged."""
    run, params = _run(track_id)
    cols = ", ".join(quote(c) for c in columns)
    return _query(
        engine, f'SELECT {cols} FROM {quote(ARTIFACTS)} WHERE "table" = ?{run} ORDER BY rowid', [table, *params]
    )


def names_of_hash(engine: Engine, table: str, track_id: str | None, key: str) -> list[str]:
    """The names ``key``'s bytes are logged under in ``table`` (of one run)."""
    run, params = _run(track_id)
    return [
        n
        for (n,) in _query(
            engine,
            f'SELECT "name" FROM {quote(ARTIFACTS)} WHERE "hash" = ? AND "table" = ?{run} ORDER BY rowid',
            [key, table, *params],
        )
    ]


def hash_of_name(engine: Engine, table: str, track_id: str | None, name: str) -> str | None:
    """The hash last logged under ``name`` (the latest ``created``, then the latest entry)."""
    run, params = _run(track_id)
    found = _query(
        engine,
        f'SELECT "hash" FROM {quote(ARTIFACTS)} WHERE "name" = ? AND "table" = ?{run} '
        "ORDER BY created DESC, rowid DESC LIMIT 1",
        [name, table, *params],
    )
    return found[0][0] if found else None


def distinct(engine: Engine, column: str, table: str, track_id: str | None = None) -> list[str]:
    """The distinct values of ``column`` ("name" or "track_id") among ``table``'s entries, sorted."""
    if column not in ("name", "track_id"):
        raise ValueError(f"distinct() lists 'name' or 'track_id', got {column!r}")
    run, params = _run(track_id)
    return [
        v
        for (v,) in _query(
            engine,
            f'SELECT DISTINCT {quote(column)} FROM {quote(ARTIFACTS)} WHERE "table" = ?{run} ORDER BY 1',
            [table, *params],
        )
    ]


__all__ = ["blob_store", "put_artifact", "artifact_rows", "names_of_hash", "hash_of_name", "distinct"]
