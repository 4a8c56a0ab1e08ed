"""Each column's logical type, kept in the side table ``xetrack_columns``.

A column's declared type is fixed when the column is added. Its logical type is what
its values are, as pandas would see them, and it decides the read-back dtype:

- a column added for a None (or NaN) is declared with no type, so SQLite stores each
  value exactly as given; the first non-empty value logged later sets its logical type;
- an INTEGER column that receives a float widens to REAL, as pandas widens ints to
  float64. (SQLite's INTEGER affinity stores a float 1.0 as the int 1; the logical type
  still says REAL, so it reads back as 1.0.)

Nothing else changes a logical type: a str in a numeric column is stored as given and
the column reads back as ``object``.

Only a logical type that differs from the declared one has a row here, so files written
before this table existed read exactly as they did. Rows are written in the transaction
that writes the values, under the write lock, and only ever widen: a process that
proposes a type it already saw elsewhere writes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from ...schema import quote
from ..base import rows_if_table
from ..logical_types import widened
from ..tables import COLUMN_TYPES


def _ddl(schema: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {schema}.{quote(COLUMN_TYPES)} ("
        '"tbl" TEXT NOT NULL COLLATE NOCASE, "name" TEXT NOT NULL COLLATE NOCASE, '
        '"type" TEXT NOT NULL, PRIMARY KEY ("tbl", "name")) WITHOUT ROWID'
    )


def _upsert(schema: str) -> str:
    return (
        f'INSERT INTO {schema}.{quote(COLUMN_TYPES)} ("tbl", "name", "type") VALUES (?, ?, ?) '
        'ON CONFLICT ("tbl", "name") DO UPDATE SET "type" = excluded."type"'
    )


def read_types(conn: sqlite3.Connection, table: str, schema: str = "main") -> dict[str, str]:
    """Lower-cased column name -> logical type recorded for ``table`` (``schema`` is a
    constant such as main or db). A file without the side table has none."""
    sql = f'SELECT "name", "type" FROM {schema}.{quote(COLUMN_TYPES)} WHERE "tbl" = ?'
    return {name.lower(): kind for name, kind in rows_if_table(conn, sql, (table,))}


def record_types(
    conn: sqlite3.Connection,
    table: str,
    proposed: Mapping[str, str | None],
    declared: Mapping[str, str],
    schema: str = "main",
) -> dict[str, str]:
    """Inside a write transaction: widen the logical types of ``table``'s columns by the
    kinds of values now arriving (``proposed``: column as the table spells it -> kind).

    Returns the current logical type of every proposed column, after the change.
    """
    recorded = read_types(conn, table, schema)
    current: dict[str, str] = {}
    changes: list[tuple[str, str, str]] = []
    for name, kind in proposed.items():
        now = recorded.get(name.lower()) or declared.get(name, "")
        new = widened(now, kind)
        if new is not None:
            changes.append((table, name, new))
            now = new
        current[name] = now
    if changes:
        conn.execute(_ddl(schema))
        conn.executemany(_upsert(schema), changes)
    return current


def forget_table(conn: sqlite3.Connection, table: str, schema: str = "main") -> None:
    """Inside a write transaction: drop the recorded types of a table being dropped."""
    try:
        conn.execute(f'DELETE FROM {schema}.{quote(COLUMN_TYPES)} WHERE "tbl" = ?', (table,))
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
