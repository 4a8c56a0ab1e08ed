"""Run metadata's SQL on a SQLite file (the sqlite and duckdb engines): tags, run names,
recorded kinds and table descriptions (:mod:`xetrack.meta` checks the values).

:mod:`.pg_meta` has the same functions for PostgreSQL and runs these very statements
(plain SQL both engines read; it swaps the ``?`` placeholders for ``%s``):
:func:`set_tags`, :func:`delete_tag`, :func:`tags_of`, :func:`tag_keys`,
:func:`set_run_name`, :func:`run_names`, :func:`has_run_names`, :func:`put_kinds`,
:func:`recorded_keys`, :func:`describe`, :func:`descriptions`, :func:`copy_rows`,
:func:`put_copied`, :func:`read`, :func:`write`.

On SQLite, a change of tags, names or kinds bumps the run summary's ``gen`` (as a change
of ``xetrack_runs`` does), so cached ``runs()``/``search()`` frames go stale. Under
Tracker.SKIP_INSERT (no file) writes keep nothing and reads find nothing.

>>> from xetrack.store import open_engine, IN_MEMORY
>>> engine = open_engine(IN_MEMORY)
>>> set_tags(engine, [("default", "fierce-pudu-1649", "team", "vision")])
>>> tags_of(engine, "default", "fierce-pudu-1649")
[('team', 'vision')]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from ...schema import quote
from ..base import Engine, has_table
from ..meta_sql import (
    COPY_COLUMNS,
    DDL,
    DELETE_TAG,
    DESCRIBE,
    DESCRIPTIONS_OF,
    FIND_TAG,
    HAS_RUN_NAMES,
    KEEP_KINDS,
    REPLACE_KINDS,
    RUN_NAMES_OF,
    SET_RUN_NAME,
    SET_TAGS,
    TAG_KEYS,
    TAGS_OF,
    UNDESCRIBE,
    copy_insert,
    copy_select,
    recorded_keys_with,
)
from ..tables import DESCRIPTIONS, KINDS, RUN_NAMES, TAGS
from .engine import sqlite_of
from .summary import bump


def copy_sql(name: str) -> tuple[str, str]:
    """(the DDL, an INSERT OR IGNORE of :data:`COPY_COLUMNS`) of side table ``name``, on
    a SQLite connection whose main database is the copy's target."""
    cols = COPY_COLUMNS[name]
    names = ", ".join(quote(c) for c in cols)
    return DDL[name], f"INSERT OR IGNORE INTO main.{quote(name)} ({names}) VALUES ({', '.join('?' * len(cols))})"


# --------------------------------------------------------------- the two executors
def write(engine: Engine, name: str, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Create side table ``name`` if needed, then run ``sql`` once per row, in one write
    transaction; bumps the run summary's gen when a row of any but descriptions changed."""
    sq = sqlite_of(engine)
    if sq is None or not rows:  # SKIP_INSERT: nothing is stored
        return

    def body(conn: sqlite3.Connection) -> None:
        conn.execute(DDL[name])
        before = conn.total_changes
        conn.executemany(sql, rows)
        if name != DESCRIPTIONS and conn.total_changes != before:
            bump(conn)

    sq.write(body)


def read(engine: Engine, name: str, sql: str, binds: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``sql``; none when side table ``name`` was never created."""
    sq = sqlite_of(engine)
    if sq is None:
        return []
    with sq.reading() as conn:
        if not has_table(conn, name):
            return []
        return conn.execute(sql, list(binds)).fetchall()


# ------------------------------------------------------------------ the operations
def set_tags(engine: Engine, rows: Sequence[tuple[str, str, str, str]]) -> None:
    """Set (or overwrite) tags given as ``(table, track_id, key, value)``."""
    write(engine, TAGS, SET_TAGS, rows)


def delete_tag(engine: Engine, table: str, track_id: str, key: str) -> bool:
    """Remove one tag; True when it existed."""
    if not read(engine, TAGS, FIND_TAG, (table, track_id, key)):
        return False
    write(engine, TAGS, DELETE_TAG, [(table, track_id, key)])
    return True


def tags_of(engine: Engine, table: str, track_id: str) -> list[tuple[str, str]]:
    """``(key, value)`` of one run's tags, by key."""
    return read(engine, TAGS, TAGS_OF, (table, track_id))


def tag_keys(engine: Engine, table: str) -> list[str]:
    """Every tag key used in ``table``, sorted."""
    return [k for (k,) in read(engine, TAGS, TAG_KEYS, (table,))]


def set_run_name(engine: Engine, table: str, track_id: str, run_name: str) -> None:
    write(engine, RUN_NAMES, SET_RUN_NAME, [(table, track_id, run_name)])


def run_names(engine: Engine, table: str) -> list[tuple[str, str]]:
    """``(track_id, run_name)`` of ``table``."""
    return read(engine, RUN_NAMES, RUN_NAMES_OF, (table,))


def has_run_names(engine: Engine, table: str) -> bool:
    return bool(read(engine, RUN_NAMES, HAS_RUN_NAMES, (table,)))


def put_kinds(engine: Engine, rows: Sequence[tuple[str, str, str, str | None]], replace: bool) -> None:
    """Record ``(table, column, kind, key)`` rows; ``replace=False`` keeps what is recorded."""
    write(engine, KINDS, REPLACE_KINDS if replace else KEEP_KINDS, rows)


def recorded_keys(engine: Engine, table: str, columns: Sequence[str] | None = None) -> list[tuple[str, str, Any]]:
    """``(column, kind, key)`` recorded for ``table``; of ``columns`` only, when given."""
    return recorded_keys_with(read, engine, table, columns)


def describe(engine: Engine, table: str, text: str | None) -> None:
    """Keep ``text`` as the table's description (None removes it)."""
    if text is None:
        write(engine, DESCRIPTIONS, UNDESCRIBE, [(table,)])
    else:
        write(engine, DESCRIPTIONS, DESCRIBE, [(table, text)])


def descriptions(engine: Engine) -> list[tuple[str, str]]:
    """``(table, description)`` of every described table."""
    return read(engine, DESCRIPTIONS, DESCRIPTIONS_OF)


def copy_rows(engine: Engine, name: str, table: str) -> list[tuple[Any, ...]]:
    """``table``'s rows of side table ``name`` (its :data:`COPY_COLUMNS`), for a copy."""
    return read(engine, name, copy_select(name), (table,))


def put_copied(engine: Engine, name: str, rows: Sequence[Sequence[Any]]) -> None:
    """Add copied rows of side table ``name``; rows already there are kept."""
    write(engine, name, copy_insert(name), rows)


# ------------------------------------------------------------ runs() columns
__all__ = [
    "set_tags",
    "delete_tag",
    "tags_of",
    "tag_keys",
    "set_run_name",
    "run_names",
    "has_run_names",
    "put_kinds",
    "recorded_keys",
    "describe",
    "descriptions",
    "copy_rows",
    "put_copied",
    "read",
    "write",
    "copy_sql",
]
