"""Run metadata's SQL that both engines run as written: the side tables of tags, run
names, recorded kinds and table descriptions, and their statements (names quoted,
values bound, never user text). SQLite runs them as they are; PostgreSQL swaps the
``?`` placeholders for ``%s`` (store/postgres/side.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..schema import quote
from .tables import DESCRIPTIONS, KINDS, RUN_NAMES, TAGS

#: The column prefix of tags in runs()/search()/compare(), as in MLflow's filter syntax.
TAG_PREFIX = "tags."
RUN_NAME = "run_name"
DDL = {
    TAGS: f'CREATE TABLE IF NOT EXISTS {quote(TAGS)} ("table" TEXT NOT NULL, "track_id" TEXT NOT NULL, '
    '"key" TEXT NOT NULL, "value" TEXT, PRIMARY KEY ("table", "track_id", "key"))',
    RUN_NAMES: f'CREATE TABLE IF NOT EXISTS {quote(RUN_NAMES)} ("table" TEXT NOT NULL, "track_id" TEXT NOT NULL, '
    '"run_name" TEXT NOT NULL, PRIMARY KEY ("table", "track_id"))',
    KINDS: f'CREATE TABLE IF NOT EXISTS {quote(KINDS)} ("table" TEXT NOT NULL, "column" TEXT NOT NULL, '
    '"kind" TEXT NOT NULL, "key" TEXT, PRIMARY KEY ("table", "column"))',
    DESCRIPTIONS: f'CREATE TABLE IF NOT EXISTS {quote(DESCRIPTIONS)} ("table" TEXT PRIMARY KEY, "description" TEXT)',
}
#: The columns ``xetrack.copy`` carries over, per side table (TARGET's own rows win).
COPY_COLUMNS = {
    TAGS: ("table", "track_id", "key", "value"),
    RUN_NAMES: ("table", "track_id", "run_name"),
    KINDS: ("table", "column", "kind", "key"),
    DESCRIPTIONS: ("table", "description"),
}

SET_TAGS = (
    f'INSERT INTO {quote(TAGS)} ("table", "track_id", "key", "value") VALUES (?, ?, ?, ?) '
    'ON CONFLICT ("table", "track_id", "key") DO UPDATE SET "value" = excluded."value"'
)
FIND_TAG = f'SELECT 1 FROM {quote(TAGS)} WHERE "table" = ? AND "track_id" = ? AND "key" = ?'
DELETE_TAG = f'DELETE FROM {quote(TAGS)} WHERE "table" = ? AND "track_id" = ? AND "key" = ?'
TAGS_OF = f'SELECT "key", "value" FROM {quote(TAGS)} WHERE "table" = ? AND "track_id" = ? ORDER BY "key"'
TAG_KEYS = f'SELECT DISTINCT "key" FROM {quote(TAGS)} WHERE "table" = ? ORDER BY "key"'
SET_RUN_NAME = (
    f'INSERT INTO {quote(RUN_NAMES)} ("table", "track_id", "run_name") VALUES (?, ?, ?) '
    'ON CONFLICT ("table", "track_id") DO UPDATE SET "run_name" = excluded."run_name"'
)
RUN_NAMES_OF = f'SELECT "track_id", "run_name" FROM {quote(RUN_NAMES)} WHERE "table" = ?'
HAS_RUN_NAMES = f'SELECT 1 FROM {quote(RUN_NAMES)} WHERE "table" = ? LIMIT 1'
_K = quote(KINDS)  # the row already there, named in full: PostgreSQL finds a bare "key" ambiguous
PUT_KINDS = (
    f'INSERT INTO {_K} ("table", "column", "kind", "key") VALUES (?, ?, ?, ?) ON CONFLICT ("table", "column") DO '
)
REPLACE_KINDS = (
    PUT_KINDS + f'UPDATE SET "kind" = excluded."kind", "key" = coalesce(excluded."key", {_K}."key") '
    f'WHERE {_K}."kind" <> excluded."kind" OR (excluded."key" IS NOT NULL AND excluded."key" IS NOT {_K}."key")'
)
KEEP_KINDS = PUT_KINDS + "NOTHING"
RECORDED_KEYS = f'SELECT "column", "kind", "key" FROM {_K} WHERE "table" = ?'
DESCRIBE = (
    f'INSERT INTO {quote(DESCRIPTIONS)} ("table", "description") VALUES (?, ?) '
    'ON CONFLICT ("table") DO UPDATE SET "description" = excluded."description"'
)
UNDESCRIBE = f'DELETE FROM {quote(DESCRIPTIONS)} WHERE "table" = ?'
DESCRIPTIONS_OF = f'SELECT "table", "description" FROM {quote(DESCRIPTIONS)}'


def columns_in(sql: str, columns: Sequence[str]) -> str:
    """``sql`` (ending in a WHERE clause) narrowed to ``"column" IN (?, ...)``, one mark per column."""
    return sql + f' AND "column" IN ({", ".join("?" for _ in columns)})'


def copy_select(name: str) -> str:
    """The read of one table's rows of side table ``name`` (its :data:`COPY_COLUMNS`)."""
    return f'SELECT {", ".join(quote(c) for c in COPY_COLUMNS[name])} FROM {quote(name)} WHERE "table" = ?'


def copy_insert(name: str) -> str:
    """The insert of rows of :data:`COPY_COLUMNS` that keeps rows already there."""
    cols = COPY_COLUMNS[name]
    return (
        f"INSERT INTO {quote(name)} ({', '.join(quote(c) for c in cols)}) "
        f"VALUES ({', '.join('?' for _ in cols)}) ON CONFLICT DO NOTHING"
    )


def recorded_keys_with(
    reader: Any, engine: Any, table: str, columns: Sequence[str] | None
) -> list[tuple[str, str, Any]]:
    if columns is None:
        recorded: list[tuple[str, str, Any]] = reader(engine, KINDS, RECORDED_KEYS, (table,))
        return recorded
    rows: list[tuple[str, str, Any]] = []
    for start in range(0, len(columns), 500):  # bound the number of bound values
        part = list(columns[start : start + 500])
        rows += reader(engine, KINDS, columns_in(RECORDED_KEYS, part), (table, *part))
    return rows
