"""Keys past the columns a table can hold, on PostgreSQL: the *spill*.

PostgreSQL has two ceilings: 1,600 columns per table, and a row must fit one page (8 kB).
TOAST moves long strings and JSON out of the row, but keeps up to 24 bytes of each in it,
and numbers never move: a row of 996 non-NULL ``DOUBLE PRECISION`` values and the hidden
columns fails with "row is too big". So a table keeps one column per key only while its
columns fit a row whatever their values, counted in units of 8 bytes (:func:`units`: a
number or a bool 1, a string, bytes or JSON 3); the keys past that :func:`budget` (992
units on 8 kB pages) are **spilled**: recorded once in ``xetrack_spilled`` (``tbl``,
``key``, in the order they came, ``seq``), each value a row of ``xetrack_spill``
(``tbl``, ``row``, ``key`` and typed value columns). A key spilled once stays spilled; a
None (or NaN) is no spill row at all. Keys match case-insensitively, as columns do.

- ``row`` is the row's ``xetrack$row``: the identity column every table has (BIGINT,
  its PRIMARY KEY: unique, never renumbered by VACUUM, dump or restore, so no second
  link column is needed). A row with spilled keys takes its number from the identity
  (``RETURNING``, or ``nextval`` of its sequence for a batch sent by ``COPY``) in the
  transaction that writes the row and its spill rows.
- The value sits in the one column of its type: ``value_int`` (BIGINT), ``value_real``
  (DOUBLE PRECISION: every float exactly, -0.0 and infinities too), ``value_text``,
  ``value_bool``, ``value_blob`` (BYTEA); the others are NULL (a NULL costs one bit).
  Each value keeps its own type, as a SQLite value does, and SQL over the store can
  aggregate ``value_real`` directly. The key's logical type (a float key that got an int,
  a bool key...) is recorded per key like a column's, in ``xetrack_columns``.
- Reads merge the spilled keys back as columns after the table's own, the rows and their
  spill rows read in one REPEATABLE READ snapshot.

>>> split({"a": "REAL", "b": "TEXT", "c": "REAL", "step": "INTEGER"}, BUDGET - RESERVE - 2, 0, 8192, FIRST)
(['a', 'c', 'step'], ['b'])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.pq import TransactionStatus

from ...errors import ColumnNotFoundError
from ...schema import INT64_MAX, INT64_MIN
from ..base import Roles
from ..tables import SPILL, SPILLED
from .sql import TableSchema, copy_rows, insert_sql, place
from .values import MAX_COLUMNS, OVERFLOW, ROW

_I = sql.Identifier

#: Units of 8 bytes a table's columns may take on 8 kB pages (:func:`budget`).
BUDGET = 992
#: Units kept, near the budget, for the keys that should stay columns: params and steps.
RESERVE = 64
#: Units of a column of variable width (TEXT, BYTEA, JSONB): TOAST keeps at most 24 bytes
#: of each value in the row (a value over that moves out, leaving an 18-byte pointer).
VARIABLE = 3
#: (units the table's columns take, attribute numbers used, the page size): dropped
#: columns count towards PostgreSQL's 1,600 but take no room in a row.
UNITS_SQL = (
    "SELECT coalesce(sum(CASE WHEN attisdropped THEN 0 WHEN attlen > 0 THEN (attlen + 7) / 8 ELSE "
    f"{VARIABLE} END), 0), count(*), current_setting('block_size')::int FROM pg_attribute WHERE attnum > 0 AND "
    "attrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(%s))"
)
#: Keys that take a column from the reserve (lower-cased), besides a Tracker's params.
FIRST = frozenset({"step", "epoch"})
#: The value columns of the spill, one per stored type.
VALUES = ("value_int", "value_real", "value_text", "value_bool", "value_blob")
_COPY_TYPES = ["text", "int8", "text", "int8", "float8", "text", "bool", "bytea"]
_CREATE_LOCK = 0x78657472  # the engine's lock for creating xetrack's tables
_EXACT = 2**53  # ints up to this size are floats exactly (a REAL column holds them so)

_DDL = (
    sql.SQL(
        'CREATE TABLE IF NOT EXISTS {} ("tbl" TEXT NOT NULL, "row" BIGINT NOT NULL, "key" TEXT NOT NULL, '
        '"value_int" BIGINT, "value_real" DOUBLE PRECISION, "value_text" TEXT, "value_bool" BOOLEAN, '
        '"value_blob" BYTEA, PRIMARY KEY ("tbl", "row", "key"))'
    ).format(_I(SPILL)),
    # a key's values in row order (set_value, history)
    sql.SQL('CREATE INDEX IF NOT EXISTS {} ON {} ("tbl", "key", "row")').format(_I(SPILL + "_key"), _I(SPILL)),
    sql.SQL(
        'CREATE TABLE IF NOT EXISTS {} ("tbl" TEXT NOT NULL, "key" TEXT NOT NULL, '
        '"seq" BIGINT GENERATED ALWAYS AS IDENTITY, PRIMARY KEY ("tbl", "key"))'
    ).format(_I(SPILLED)),
)
#: Whether the spill's tables exist: a third column of the engine's column query.
EXISTS = "to_regclass(quote_ident(current_schema()) || '.' || quote_ident('" + SPILLED + "')) IS NOT NULL"


def preferred(roles: Roles | None) -> frozenset[str]:
    """The keys (lower-cased) that take a column from the reserve: steps and params."""
    return FIRST | {k.lower() for k, role in (roles or {}).items() if role == "param"}


def budget(block_size: int) -> int:
    """Units of 8 bytes that a row's values can take on pages of ``block_size`` bytes,
    whatever the values: the page less its header and one line pointer (32 bytes), less
    the largest row header (23 bytes and a NULL bitmap of 1,600 bits, aligned: 224). A
    column of ``w`` units never takes more than ``8 w`` bytes, alignment included: laid
    out at multiples of 8, each would fit its units, and PostgreSQL packs them tighter."""
    return (block_size - 32 - 224) // 8


def units(kind: str) -> int:
    """Units of a new column of logical type ``kind``: BIGINT, DOUBLE PRECISION and
    BOOLEAN 1; TEXT, BYTEA and JSONB (a key first logged as None) :data:`VARIABLE`."""
    return 1 if kind in ("INTEGER", "REAL", "BOOLEAN") else VARIABLE


def split(
    missing: Mapping[str, str], used: int, slots: int, block_size: int, preferred: frozenset[str]
) -> tuple[list[str], list[str]]:
    """(keys that get a column, keys to spill), each in the order given: ``missing`` maps
    each key to its logical type, ``used`` the units the table's columns take, ``slots``
    the attribute numbers it used (PostgreSQL's 1,600). Ordinary keys take columns up to
    the :func:`budget` less :data:`RESERVE`; ``preferred`` ones up to the budget."""
    free = budget(block_size) - used
    room = MAX_COLUMNS - slots
    fit: list[str] = []
    rest: list[str] = []
    for name, kind in missing.items():
        cost = units(kind)
        limit = free if name.lower() in preferred else free - RESERVE
        if cost <= limit and len(fit) < room:
            fit.append(name)
            free -= cost
        else:
            rest.append(name)
    return fit, rest


# -- the registry ---------------------------------------------------------------------
def registry(conn: Any, table: str) -> dict[str, str]:
    """The table's spilled keys, lower-cased -> as recorded, in the order they came."""
    query = sql.SQL('SELECT "key" FROM {} WHERE "tbl" = %s ORDER BY "seq"').format(_I(SPILLED))
    return {key.lower(): key for (key,) in conn.execute(query, (table,)).fetchall()}


def register(conn: Any, table: str, keys: Sequence[str]) -> None:
    """Inside the transaction that holds the table's grow lock: record ``keys`` as
    spilled, in this order (the spill's tables made first, once)."""
    if not conn.execute(sql.SQL("SELECT " + EXISTS)).fetchone()[0]:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))  # one creator at a time
        for ddl in _DDL:
            conn.execute(ddl)
    conn.execute(
        sql.SQL(
            'INSERT INTO {} ("tbl", "key") SELECT %s, k FROM unnest(%s::text[]) WITH ORDINALITY AS u(k, i) '
            "ORDER BY i ON CONFLICT DO NOTHING"
        ).format(_I(SPILLED)),
        (table, list(keys)),
    )


def drop(conn: Any, table: str) -> None:
    """Inside a transaction: forget a table's spill (the table was dropped or is new)."""
    if conn.execute(sql.SQL("SELECT " + EXISTS)).fetchone()[0]:
        for name in (SPILL, SPILLED):
            conn.execute(sql.SQL('DELETE FROM {} WHERE "tbl" = %s').format(_I(name)), (table,))


def not_a_column(key: str, table: str) -> ColumnNotFoundError:
    return ColumnNotFoundError(
        f"Key {key!r} of table {table!r} is kept past the table's columns (in {SPILL!r}): it cannot pick "
        "rows. Read the rows and filter the frame instead."
    )


# -- values ---------------------------------------------------------------------------
def encoded(key: str, value: Any) -> tuple[Any, ...] | None:
    """The five value columns of one value (None: no spill row, for None and NaN)."""
    kind = type(value)
    if kind is float:
        return None if value != value else (None, value, None, None, None)
    if kind is bool:
        return (None, None, None, value, None)
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise OverflowError(f"int {value} is outside the 64-bit range")  # as sqlite3 says it
        return (value, None, None, None, None)
    if kind is str:
        return (None, None, value, None, None)
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (None, None, None, None, bytes(value))
    if isinstance(value, bool):
        return (None, None, None, bool(value), None)
    if isinstance(value, int):
        return encoded(key, int(value))
    if isinstance(value, float):
        return encoded(key, float(value))
    raise TypeError(f"Value for key {key!r} is a {kind.__name__}, which a spilled key cannot hold: {value!r}")


def decoded(found: Sequence[Any]) -> Any:
    """The value of one spill row's value columns."""
    for value in found:
        if value is not None:
            return value
    return None


def new_links(conn: Any, table: str, count: int) -> list[int]:
    """``count`` new row numbers from the table's identity, in increasing order."""
    query = (
        "SELECT nextval(pg_get_serial_sequence(quote_ident(current_schema()) || '.' || quote_ident(%s), %s)) "
        "FROM generate_series(1, %s)"
    )
    return sorted(n for (n,) in conn.execute(query, (table, ROW, count)).fetchall())


def write(conn: Any, table: str, links: Sequence[int], rows: Iterable[Sequence[Any]], at: Mapping[int, str]) -> None:
    """Inside the rows' transaction: the values at positions ``at`` (position -> key as
    recorded) of each row, under its link, by one binary ``COPY``."""
    out = []
    for link, row in zip(links, rows):
        for i, key in at.items():
            value = encoded(key, row[i])
            if value is not None:
                out.append((table, link, key, *value))
    if not out:
        return
    query = sql.SQL('COPY {} ("tbl", "row", "key", {}) FROM STDIN (FORMAT BINARY)').format(
        _I(SPILL), sql.SQL(", ").join(map(_I, VALUES))
    )
    with conn.cursor().copy(query) as copy:
        copy.set_types(_COPY_TYPES)
        for item in out:
            copy.write_row(item)


def insert_rows(
    conn: Any,
    table: str,
    known: TableSchema,
    names: Sequence[str],
    rows: list[tuple[Any, ...]],
    kinds: Sequence[set[type]],
) -> None:
    """Inside a write transaction: rows whose ``names`` (as the table spells them) include
    spilled keys. The columns' values go in the table's row, with its new link; then the
    spilled keys' values, under that link."""
    at = {i: name for i, name in enumerate(names) if name.lower() in known.spilled}
    wide = [i for i in range(len(names)) if i not in at]
    own = tuple(names[i] for i in wide)
    stored, overflow = place(known, own, [tuple(r[i] for i in wide) for r in rows], [kinds[i] for i in wide])
    columns = own + ((OVERFLOW,) if overflow else ())
    if len(rows) == 1:
        query = insert_sql(table, columns) + sql.SQL(" RETURNING {}").format(_I(ROW))
        links = [conn.execute(query, stored[0]).fetchone()[0]]
    else:
        links = new_links(conn, table, len(rows))
        copy_rows(conn, table, known, (*columns, ROW), [(*r, link) for r, link in zip(stored, links)])
    write(conn, table, links, rows, at)


def set_values(conn: Any, table: str, values: Mapping[str, Any], clause: Any, params: Sequence[Any]) -> None:
    """Inside a transaction: set spilled keys (key as recorded -> value) on the rows of
    ``table`` that ``clause`` (a WHERE over the table, with ``params``) picks; None
    removes the value."""
    picked = sql.SQL("SELECT {} FROM {}").format(_I(ROW), _I(table)) + clause
    for key, value in values.items():
        stored = encoded(key, value)
        if stored is None:
            query = sql.SQL('DELETE FROM {} WHERE "tbl" = %s AND "key" = %s AND "row" IN (').format(_I(SPILL))
            conn.execute(query + picked + sql.SQL(")"), [table, key, *params])
            continue
        query = sql.SQL(
            'INSERT INTO {s} ("tbl", "row", "key", {v}) SELECT %s, {r}, %s, %s, %s, %s, %s, %s FROM {t}'
        ).format(s=_I(SPILL), v=sql.SQL(", ").join(map(_I, VALUES)), r=_I(ROW), t=_I(table))
        update = sql.SQL(' ON CONFLICT ("tbl", "row", "key") DO UPDATE SET {}').format(
            sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=_I(c)) for c in VALUES)
        )
        conn.execute(query + clause + update, [table, key, *stored, *params])


def delete_rows(conn: Any, table: str, clause: Any, params: Sequence[Any]) -> None:
    """Inside a transaction, before the rows go: the spill rows of the rows of ``table``
    that ``clause`` picks."""
    query = sql.SQL('DELETE FROM {} WHERE "tbl" = %s AND "row" IN (SELECT {} FROM {}').format(
        _I(SPILL), _I(ROW), _I(table)
    )
    conn.execute(query + clause + sql.SQL(")"), [table, *params])


def delete_sql(table: str, clause: Any) -> Any:
    """One statement: delete the rows ``clause`` picks and their spill rows (the table's
    name bound last); gives the count of rows deleted."""
    return sql.SQL(
        'WITH d AS (DELETE FROM {t}{c} RETURNING {r}), s AS (DELETE FROM {s} WHERE "tbl" = %s AND "row" IN '
        "(SELECT {r} FROM d)) SELECT count(*) FROM d"
    ).format(t=_I(table), c=clause, r=_I(ROW), s=_I(SPILL))


# -- reads ----------------------------------------------------------------------------
@contextmanager
def snapshot(conn: Any, wanted: bool = True) -> Iterator[None]:
    """The reads inside see one state of the store (a REPEATABLE READ transaction), when
    ``wanted`` and the connection is not inside a transaction already."""
    if not wanted or conn.info.transaction_status != TransactionStatus.IDLE:
        yield
        return
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def values_of(
    conn: Any, table: str, links: Sequence[Any] | None, keys: Sequence[str] | None
) -> list[tuple[Any, str, Any]]:
    """(row, key, value) of the table's spill rows: of rows ``links`` (None: every row),
    of keys ``keys`` (None: every key)."""
    query = sql.SQL('SELECT "row", "key", {} FROM {} WHERE "tbl" = %s').format(
        sql.SQL(", ").join(map(_I, VALUES)), _I(SPILL)
    )
    params: list[Any] = [table]
    if links is not None:
        query += sql.SQL(' AND "row" = ANY(%s::bigint[])')
        params.append([link for link in links if link is not None])
    if keys is not None:
        query += sql.SQL(' AND "key" = ANY(%s::text[])')
        params.append(list(keys))
    return [(r[0], r[1], decoded(r[2:])) for r in conn.execute(query, params).fetchall()]


def merged(
    names: Sequence[str],
    types: Sequence[str],
    table: np.ndarray,
    keys: Sequence[str],
    key_types: Sequence[str],
    links: Sequence[Any],
    found: Iterable[tuple[Any, str, Any]],
) -> tuple[list[str], list[str], np.ndarray]:
    """The object table of the rows (``names`` columns, the rows' ``links`` in order) with
    the spilled ``keys`` as columns after them, from :func:`values_of`'s rows. Values read
    as from a column of the key's logical type: a bool in a numeric key as 0 or 1, an int
    in a REAL key as a float (when the float is exact)."""
    width = len(names)
    out = np.empty((len(links), width + len(keys)), dtype=object)
    if width:
        out[:, :width] = table
    at = {link: i for i, link in enumerate(links)}
    where = {key.lower(): width + j for j, key in enumerate(keys)}
    kinds = {width + j: kind for j, kind in enumerate(key_types)}
    for link, key, value in found:
        i, j = at.get(link), where.get(key.lower())
        if i is None or j is None:
            continue
        if type(value) is bool and kinds[j] in ("INTEGER", "REAL"):
            value = int(value)
        elif type(value) is int and kinds[j] == "REAL" and -_EXACT <= value <= _EXACT:
            value = float(value)
        out[i, j] = value
    return [*names, *keys], [*types, *key_types], out


__all__ = [
    "BUDGET",
    "EXISTS",
    "UNITS_SQL",
    "VARIABLE",
    "budget",
    "units",
    "FIRST",
    "RESERVE",
    "VALUES",
    "decoded",
    "delete_rows",
    "delete_sql",
    "drop",
    "encoded",
    "insert_rows",
    "merged",
    "new_links",
    "not_a_column",
    "preferred",
    "register",
    "registry",
    "set_values",
    "snapshot",
    "split",
    "values_of",
    "write",
]
