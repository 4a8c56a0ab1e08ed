"""Artifact entries (``xetrack_artifacts``) on a SQLite file (the sqlite and duckdb
engines); the bytes themselves are :mod:`.blobs`'s.

:mod:`xetrack.artifacts` reads sources, checks names and drives the upload; this module
and :mod:`.pg_artifacts` (PostgreSQL) have the same functions: :func:`blob_store`,
:func:`put_artifact`, :func:`artifact_rows`, :func:`names_of_hash`, :func:`hash_of_name`,
:func:`distinct`. Entries list in the order their names were first logged (rowid here, an
identity column on PostgreSQL), a name's steps in step order.

An entry is keyed by run, table, name and step (NULL when logged without one). A file
made before steps had ``UNIQUE ("track_id", "table", "name")`` and no ``step`` column: the
first write of an entry (any writer, inside its write transaction) rebuilds the table in
the new layout, rowids kept (:func:`ensure_table`); SQLite cannot drop a UNIQUE
constraint in place. Until then reads see every step as NULL.

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
from ..tables import ARTIFACT_COLUMNS, ARTIFACTS
from . import blobs
from .ddl import ARTIFACT_FIELDS, ARTIFACT_KEY, ARTIFACTS_DDL, ARTIFACTS_KEY_DDL
from .engine import sqlite_of

_HAS_STEP = "SELECT 1 FROM pragma_table_info(?, 'main') WHERE name = 'step'"
_UPGRADE = "xetrack_artifacts_upgrade"  # a TEMP table, for the length of the upgrade
#: Entries by the first time their run logged their name, then a name's steps in order.
_ORDER = 'ORDER BY min(rowid) OVER (PARTITION BY "track_id", "name"), coalesce("step", -1), rowid'


def blob_store(engine: Engine) -> ModuleType | None:
    """The module that keeps the bytes (:mod:`.blobs`); None under SKIP_INSERT (nothing is kept)."""
    return None if sqlite_of(engine) is None else blobs


def has_step(conn: sqlite3.Connection) -> bool:
    """Whether the file's entries table has the ``step`` column (False: made before steps, or none yet)."""
    return conn.execute(_HAS_STEP, (ARTIFACTS,)).fetchone() is not None


def ensure_table(conn: sqlite3.Connection) -> None:
    """Inside a write transaction: the entries table in this version's layout, made or
    upgraded (idempotent). An old table is copied aside, dropped, made again and filled
    back with its rowids and a NULL step: all or nothing, with the transaction."""
    conn.execute(ARTIFACTS_DDL)
    if not has_step(conn):
        old = ", ".join(quote(c) for c in ARTIFACT_COLUMNS if c != "step")
        conn.execute(f"DROP TABLE IF EXISTS temp.{quote(_UPGRADE)}")
        conn.execute(
            f"CREATE TEMP TABLE {quote(_UPGRADE)} AS SELECT rowid AS _rowid, {old} FROM main.{quote(ARTIFACTS)}"
        )
        conn.execute(f"DROP TABLE main.{quote(ARTIFACTS)}")
        conn.execute(f"CREATE TABLE main.{quote(ARTIFACTS)} ({ARTIFACT_FIELDS})")
        conn.execute(
            f"INSERT INTO main.{quote(ARTIFACTS)} (rowid, {old}) "
            f"SELECT _rowid, {old} FROM temp.{quote(_UPGRADE)} ORDER BY _rowid"
        )
        conn.execute(f"DROP TABLE temp.{quote(_UPGRADE)}")
    conn.execute(ARTIFACTS_KEY_DDL)


def put_artifact(conn: sqlite3.Connection, row: Sequence[Any], replace: bool = True) -> int:
    """Inside the blob store's write transaction: record one entry (``ARTIFACT_COLUMNS``
    order; without the last, ``step``, it is NULL). ``replace``: a run logging a name again
    at the same step (or again without one) replaces its entry; else an existing entry
    wins. Returns the rows written."""
    ensure_table(conn)
    values = (*row, None) if len(row) == len(ARTIFACT_COLUMNS) - 1 else tuple(row)
    action = (
        'DO UPDATE SET "type" = excluded."type", "hash" = excluded."hash", "size" = excluded."size", '
        '"created" = excluded."created"'
        if replace
        else "DO NOTHING"
    )
    cols = ", ".join(quote(c) for c in ARTIFACT_COLUMNS)
    marks = ", ".join("?" * len(ARTIFACT_COLUMNS))
    cur = conn.execute(
        f"INSERT INTO main.{quote(ARTIFACTS)} ({cols}) VALUES ({marks}) ON CONFLICT {ARTIFACT_KEY} {action}",
        values,
    )
    return cur.rowcount


def _run(track_id: str | None) -> tuple[str, list[Any]]:
    return ("", []) if track_id is None else (' AND "track_id" = ?', [track_id])


def _query(engine: Engine, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    sq = sqlite_of(engine)
    return [] if sq is None else sq.query(sql, params)


def _stepped(engine: Engine) -> bool:
    """Whether the file's entries have steps (a file made before them reads as all NULL;
    a read never upgrades it: a read-only reader reads it as it is)."""
    return bool(_query(engine, _HAS_STEP, [ARTIFACTS]))


def artifact_rows(engine: Engine, table: str, track_id: str | None, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The entries of ``table`` (of one run): names in the order they were first logged,
    a name's steps in step order (the step-less entry first)."""
    run, params = _run(track_id)
    stepped = _stepped(engine)
    cols = ", ".join(quote(c) if stepped or c != "step" else 'NULL AS "step"' for c in columns)
    order = _ORDER if stepped else "ORDER BY rowid"
    return _query(engine, f'SELECT {cols} FROM {quote(ARTIFACTS)} WHERE "table" = ?{run} {order}', [table, *params])


def names_of_hash(engine: Engine, table: str, track_id: str | None, key: str) -> list[str]:
    """The names ``key``'s bytes are logged under in ``table`` (of one run), each once."""
    run, params = _run(track_id)
    found = _query(
        engine,
        f'SELECT "name" FROM {quote(ARTIFACTS)} WHERE "hash" = ? AND "table" = ?{run} ORDER BY rowid',
        [key, table, *params],
    )
    return list(dict.fromkeys(n for (n,) in found))


def hash_of_name(engine: Engine, table: str, track_id: str | None, name: str, step: int | None = None) -> str | None:
    """The hash of the entry ``name`` points at: at ``step`` when given, else the run's
    latest step (its step-less entry when it has no step). Among runs, the run that
    logged ``name`` last (the latest ``created``, then the latest entry)."""
    run, params = _run(track_id)
    if not _stepped(engine):
        if step is not None:
            return None
        sql = (
            f'SELECT "hash" FROM {quote(ARTIFACTS)} WHERE "name" = ? AND "table" = ?{run} '
            "ORDER BY created DESC, rowid DESC LIMIT 1"
        )
    else:
        at = "" if step is None else ' AND "step" = ?'
        params += [] if step is None else [step]
        sql = (
            f'SELECT "hash" FROM {quote(ARTIFACTS)} WHERE "name" = ? AND "table" = ?{run}{at} '
            'WINDOW runs AS (PARTITION BY "track_id") '
            'ORDER BY max("created") OVER runs DESC, max(rowid) OVER runs DESC, coalesce("step", -1) DESC, '
            '"created" DESC, rowid DESC LIMIT 1'
        )
    found = _query(engine, sql, [name, table, *params])
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


__all__ = [
    "blob_store",
    "ensure_table",
    "has_step",
    "put_artifact",
    "artifact_rows",
    "names_of_hash",
    "hash_of_name",
    "distinct",
]
