"""Keys past the columns a table can hold, on SQLite: the *spill*.

A table keeps one column per key while SQLite's limit allows (2,000 columns by default).
The keys that come after it are **spilled**: each value is a row of the narrow side table
``xetrack_spill`` (``tbl``, ``row``, ``key``, ``value``), and the key is recorded once in
``xetrack_spilled`` (``tbl``, ``key``, in the order keys were spilled). A key spilled
once stays spilled; a NULL is no spill row at all.

``row`` is the value of the row's link column, :data:`LINK` (``xetrack$row``), which the
table gets when it first spills (one of its columns is kept for it), under a unique
index. Not the rowid: VACUUM may renumber the rowids of a table without an INTEGER
PRIMARY KEY, and a copy renumbers them; the link is a column, kept by both. No logged key
can name it (a key's ``$`` becomes ``_``). Links are given in increasing order, from the
largest the table holds, under the write lock.
The value column has no declared type, so SQLite keeps each value exactly as given (an
int, a float, text, bytes); its logical type (bool, a float column that got an int...) is
recorded per key like a column's (:mod:`.column_types`). Table names and keys compare
without case in both side tables (``COLLATE NOCASE``), as SQLite's names of tables and
columns do.

Every read merges them back: a frame shows a spilled key as an ordinary column, after the
table's own. The DuckDB CLI sees them through docs/runs.md's ``PIVOT``.

Writes of a row with spilled keys insert its row, then its spill rows with the new rowid,
in the write transaction of the row; ``update`` and ``delete`` of rows do the same to the
rows' spill rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ...schema import quote
from ..base import has_table
from ..tables import SPILL, SPILLED

SPILL_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(SPILL)} ("
    '"tbl" TEXT NOT NULL COLLATE NOCASE, "row" INTEGER NOT NULL, "key" TEXT NOT NULL COLLATE NOCASE, "value", '
    'PRIMARY KEY ("tbl", "row", "key")) WITHOUT ROWID'
)
# No second index on ("tbl", "key", "row"): it made each logged row cost one random leaf
# page per spilled key (3,000 keys logged: 4.9 ms against 2.0 ms without it). Reads of a
# key go through the rows of its table, each a lookup of the primary key (tbl, link, key).
SPILLED_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(SPILLED)} ("
    '"tbl" TEXT NOT NULL COLLATE NOCASE, "key" TEXT NOT NULL COLLATE NOCASE, UNIQUE ("tbl", "key"))'
)


#: The column that links a row of a table to its spill rows; reads leave it out.
LINK = "xetrack$row"
#: Columns kept, near the limit, for the keys that should stay columns: params and steps.
RESERVE = 64
#: Keys that take a column from the reserve (lower-cased), besides a Tracker's params.
FIRST = ("step", "epoch", "timestamp", "track_id")


def link_index(table: str) -> str:
    return f"ix_{table}_{LINK}"


def add_link(conn: sqlite3.Connection, table: str) -> None:
    """Inside a write transaction: the table's link column and its unique index."""
    conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(LINK)} INTEGER")
    conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {quote(link_index(table))} ON {quote(table)} ({quote(LINK)})")


def next_link(conn: sqlite3.Connection, table: str) -> int:
    """Inside a write transaction: the first link no row of ``table`` holds yet."""
    top = conn.execute(f"SELECT max({quote(LINK)}) FROM {quote(table)}").fetchone()[0]
    return int(top or 0) + 1


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """The reads inside see one state of the file: a read transaction, unless the
    connection is inside one already."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def ensure(conn: sqlite3.Connection) -> None:
    """Inside a write transaction: the two side tables."""
    conn.execute(SPILL_DDL)
    conn.execute(SPILLED_DDL)


def spilled_keys(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    """The table's spilled keys, in the order they were spilled (none without the side
    table). ``schema`` is a constant such as main."""
    if schema == "main" and not has_table(conn, SPILLED):
        return []
    try:
        rows = conn.execute(
            f'SELECT "key" FROM {schema}.{quote(SPILLED)} WHERE "tbl" = ? ORDER BY rowid', (table,)
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    return [r[0] for r in rows]


def register(conn: sqlite3.Connection, table: str, keys: Iterable[str]) -> None:
    """Inside a write transaction: record ``keys`` as spilled (in this order)."""
    ensure(conn)
    conn.executemany(f'INSERT OR IGNORE INTO {quote(SPILLED)} ("tbl", "key") VALUES (?, ?)', [(table, k) for k in keys])


def insert_rows(
    conn: sqlite3.Connection,
    table: str,
    insert: str,
    rows: Sequence[tuple[Any, ...]],
    wide: Sequence[int],
    spilled: Mapping[int, str],
) -> None:
    """Inside a write transaction: insert each row's values at positions ``wide``, and a
    new link, with ``insert`` (the table's INSERT of those keys, then :data:`LINK`); then
    its values at the positions of ``spilled`` (position -> key as recorded) into the
    spill under that link. A None is no spill row."""
    link = next_link(conn, table)
    narrow: list[tuple[str, int, str, Any]] = []
    positions = list(spilled.items())
    firsts = []
    for row in rows:
        firsts.append([*(row[i] for i in wide), link])
        narrow.extend((table, link, key, row[i]) for i, key in positions if row[i] is not None)
        link += 1
    conn.executemany(insert, firsts)
    if narrow:
        conn.executemany(
            f'INSERT OR REPLACE INTO {quote(SPILL)} ("tbl", "row", "key", "value") VALUES (?, ?, ?, ?)', narrow
        )


def set_values(conn: sqlite3.Connection, table: str, values: Mapping[str, Any], clause: str, params: list[Any]) -> None:
    """Inside a write transaction: set spilled keys (``values``: key as recorded -> value)
    on the rows of ``table`` that ``clause`` (a WHERE over the table, with ``params``)
    picks; None removes the value. Rows without a link get one first."""
    t, link = quote(table), quote(LINK)
    top = next_link(conn, table) - 1
    # max + rowid: above every link given, and one per row
    unlinked = f"{clause} AND {link} IS NULL" if clause else f" WHERE {link} IS NULL"
    conn.execute(f"UPDATE {t} SET {link} = ? + rowid{unlinked}", [top, *params])
    picked = f"SELECT {link} FROM {t}{clause}"
    for key, value in values.items():
        if value is None:
            conn.execute(
                f'DELETE FROM {quote(SPILL)} WHERE "tbl" = ? AND "key" = ? AND "row" IN ({picked})',
                [table, key, *params],
            )
        else:
            conn.execute(
                f'INSERT OR REPLACE INTO {quote(SPILL)} ("tbl", "row", "key", "value") '
                f"SELECT ?, {link}, ?, ? FROM {t}{clause}",
                [table, key, value, *params],
            )


def delete_rows(conn: sqlite3.Connection, table: str, clause: str, params: Sequence[Any]) -> None:
    """Inside a write transaction, before the rows go: the spill rows of the rows of
    ``table`` that ``clause`` picks (none when the table never spilled)."""
    if not has_table(conn, SPILL) or not spilled_keys(conn, table):
        return
    conn.execute(
        f'DELETE FROM {quote(SPILL)} WHERE "tbl" = ? AND "row" IN (SELECT {quote(LINK)} FROM {quote(table)}{clause})',
        [table, *params],
    )


def drop(conn: sqlite3.Connection, table: str) -> None:
    """Inside a write transaction: forget a table's spill (its table was dropped)."""
    if has_table(conn, SPILLED):
        conn.execute(f'DELETE FROM {quote(SPILLED)} WHERE "tbl" = ?', (table,))
    if has_table(conn, SPILL):
        conn.execute(f'DELETE FROM {quote(SPILL)} WHERE "tbl" = ?', (table,))


def split(
    limit: int, width: int, linked: bool, missing: Sequence[str], preferred: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """Which of the ``missing`` keys (in the order wanted) take a column of a table of
    ``width`` columns (the link included when ``linked``), and which are spilled (a
    log's new keys, and a copy's): columns while the table has fewer than ``limit``
    less one (the link) less :data:`RESERVE`; past that only ``preferred`` keys
    (lower-cased: params, steps; :data:`FIRST` always is) take the reserve. A table with
    no room left for its link spills nothing: the caller refuses (its
    ``ColumnLimitError``) when ``free`` (``limit - width - (0 if linked else 1)``) is
    negative and keys are left."""
    free = limit - width - (0 if linked else 1)
    if len(missing) <= free - RESERVE:
        return list(missing), []
    keep = {*FIRST, *(p.lower() for p in preferred)}
    ordinary = max(0, free - RESERVE)
    fit: list[str] = []
    rest: list[str] = []
    for name in missing:
        if (name.lower() in keep and len(fit) < free) or len(fit) < ordinary:
            fit.append(name)
        else:
            rest.append(name)
    return fit, rest


def values_of(conn: sqlite3.Connection, table: str, links: str, params: Sequence[Any]) -> list[tuple[int, str, Any]]:
    """(row, key, value) of the spill rows of the links ``links`` (a SELECT of links,
    with ``params``) gives."""
    return conn.execute(
        f'SELECT "row", "key", "value" FROM {quote(SPILL)} WHERE "tbl" = ? AND "row" IN ({links})',
        [table, *params],
    ).fetchall()


def values_for(
    conn: sqlite3.Connection, table: str, links: Sequence[Any], schema: str = "main", per_query: int = 500
) -> list[tuple[int, str, Any]]:
    """:func:`values_of` for a list of links (a None left out), ``per_query`` links bound
    at a time; ``schema`` is a constant such as main or db (the file attached)."""
    present = [link for link in links if link is not None]
    found: list[tuple[int, str, Any]] = []
    for start in range(0, len(present), per_query):
        part = present[start : start + per_query]
        found += conn.execute(
            f'SELECT "row", "key", "value" FROM {schema}.{quote(SPILL)} WHERE "tbl" = ? '
            f'AND "row" IN ({", ".join("?" * len(part))})',
            (table, *part),
        ).fetchall()
    return found


def columns(links: Sequence[Any], keys: Sequence[str], found: Sequence[tuple[int, str, Any]]) -> dict[str, list[Any]]:
    """The spilled keys as columns of the rows whose links are ``links`` (in that order;
    None: a row without spill): key -> one value per row, None where the row has none.
    ``found``: :func:`values_of`'s rows."""
    at = {link: i for i, link in enumerate(links) if link is not None}
    out: dict[str, list[Any]] = {key: [None] * len(links) for key in keys}
    lower = {key.lower(): key for key in keys}
    for row, key, value in found:
        i = at.get(row)
        name = lower.get(key.lower())
        if i is not None and name is not None:
            out[name][i] = value
    return out


#: A key's logical type -> the DuckDB type its values are cast to in :func:`duckdb_views`.
_DUCK_TYPES = {"INTEGER": "BIGINT", "REAL": "DOUBLE", "BOOLEAN": "BOOLEAN", "BLOB": None}


def duckdb_views(path: str, schema: str = "db") -> list[str]:
    """For each table of the SQLite file ``path`` with spilled keys, a DuckDB statement
    making the TEMP view ``<table>_all``: the table's columns (its link left out) and each
    spilled key as a column of its logical type, for a DuckDB shell that attached the file
    as ``schema``. DuckDB reads the untyped ``value`` as bytes: each is decoded and cast.
    (A PIVOT over values found in the data cannot make a view: the keys are listed.)"""
    from .column_types import read_types

    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if not has_table(conn, SPILLED):
            return []
        tables = [t for (t,) in conn.execute(f'SELECT DISTINCT "tbl" FROM {quote(SPILLED)}')]
        out = []
        for table in tables:
            keys = spilled_keys(conn, table)
            if not keys:
                continue
            types = read_types(conn, table)
            picked = []
            for key in keys:
                duck = _DUCK_TYPES.get(types.get(key.lower(), ""), "VARCHAR")
                value = f"p.{quote(key)}" if duck is None else f"CAST(decode(p.{quote(key)}) AS {duck})"
                picked.append(f"{value} AS {quote(key)}")
            pivot = (
                f'PIVOT (SELECT "row", "key", "value" FROM {schema}.{quote(SPILL)} WHERE "tbl" = {literal(table)}) '
                f'ON "key" IN ({", ".join(literal(k) for k in keys)}) USING first("value") GROUP BY "row"'
            )
            out.append(
                f"CREATE OR REPLACE TEMP VIEW {quote(table + '_all')} AS SELECT t.* EXCLUDE ({quote(LINK)}), "
                f"{', '.join(picked)} FROM {schema}.{quote(table)} AS t LEFT JOIN ({pivot}) AS p "
                f'ON p."row" = t.{quote(LINK)};'
            )
        return out
    finally:
        conn.close()


__all__ = [
    "FIRST",
    "LINK",
    "RESERVE",
    "SPILL",
    "SPILL_DDL",
    "SPILLED_DDL",
    "columns",
    "delete_rows",
    "drop",
    "duckdb_views",
    "add_link",
    "ensure",
    "link_index",
    "next_link",
    "insert_rows",
    "register",
    "set_values",
    "snapshot",
    "spilled_keys",
    "split",
    "values_for",
    "values_of",
]
