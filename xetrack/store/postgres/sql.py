"""The SQL pieces of the PostgreSQL engine: a table's schema as this process knows it,
where values go (:mod:`.pg_types`), WHERE clauses that see the overflow, xetrack's own
tables; and the engine's two ways of running SQL, typed for its mixins (:class:`Run`,
:class:`Transact`). Identifiers are ``psycopg.sql.Identifier``; values are bound parameters.

>>> where_sql(table, {"track_id": "fierce-pudu-1649"})  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, Protocol, TypeVar, overload

from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from psycopg.types.json import Jsonb

from ...errors import ColumnLimitError
from ...schema import ASSET_COUNTS, ASSETS_TABLE, INT64_MAX, INT64_MIN, sql_type
from ..base import AssetWrites, Where
from ..logical_types import kind_of, logical_types
from ..tables import COLUMN_TYPES
from .values import MAX_NAME_BYTES, OVERFLOW, always_fits, fits, to_json

_I = sql.Identifier
T = TypeVar("T")


class Run(Protocol):
    """:meth:`PostgresEngine._run <xetrack.store.postgres.engine.PostgresEngine._run>`:
    ``fn(conn)``'s result; None only when ``committed`` said a lost write was stored."""

    @overload
    def __call__(self, fn: Callable[[Any], T], committed: Callable[[Any], None] | None = None, what: str = "") -> T: ...
    @overload
    def __call__(self, fn: Callable[[Any], T], committed: Callable[[Any], bool | None], what: str = "") -> T | None: ...


class Transact(Protocol):
    """:meth:`PostgresEngine._transact <xetrack.store.postgres.engine.PostgresEngine._transact>`:
    ``body(conn)``'s result, in one transaction."""

    def __call__(self, conn: Any, table: str, body: Callable[[Any], T]) -> T: ...


class EngineAccess(Protocol):
    """What the side-table modules (side.py and the features over it) use of a
    :class:`~xetrack.store.postgres.engine.PostgresEngine`, which imports them: its
    retrying runner, its transaction, its fetch of rows."""

    @property
    def _run(self) -> Run: ...
    @property
    def _transact(self) -> Transact: ...
    def _rows(self, conn: Any, query: Any, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class TableSchema:
    """What this process knows of one table: columns (name -> declared logical type, the
    hidden ones left out), its spilled keys (:mod:`.spill`), the logical types of both,
    and the INSERTs checked per row shape."""

    __slots__ = ("columns", "lower", "logical", "insert_sql", "declared", "spilled", "spills")

    def __init__(
        self,
        columns: dict[str, str],
        recorded: dict[str, str],
        declared: dict[str, str] | None = None,
        spilled: dict[str, str] | None = None,
        spills: bool = False,
    ) -> None:
        self.columns = columns
        self.declared = declared or {}  # name -> PostgreSQL's type name (format_type), hidden ones too
        self.lower = {name.lower(): name for name in columns}
        self.spilled = spilled or {}  # lower-cased -> the key as recorded, in the order spilled
        self.spills = spills  # whether the store has the spill's tables
        self.logical: dict[str, str] = {}
        self.retype(recorded)
        self.insert_sql: dict[tuple[tuple[str, ...], tuple[type, ...]], Any] = {}

    def retype(self, recorded: dict[str, str]) -> None:
        """The logical types as ``recorded`` now: the columns', then the spilled keys'."""
        self.logical = logical_types(self.columns, recorded)
        self.logical.update((key, recorded.get(low, "")) for low, key in self.spilled.items())

    def name(self, key: str) -> str:
        """``key`` as the table spells it: a column, a spilled key, or as given."""
        low = key.lower()
        return self.lower.get(low) or self.spilled.get(low, key)


def check_names(keys: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for key in keys:
        if len(key.encode()) > MAX_NAME_BYTES:
            raise ValueError(
                f"Column name {key!r} is {len(key.encode())} bytes long: PostgreSQL keeps at most "
                f"{MAX_NAME_BYTES} bytes of a name. Nothing was written; log it under a shorter key"
            )
        other = seen.setdefault(key.lower(), key)
        if other != key:
            raise ValueError(f"Keys {other!r} and {key!r} name the same column: column names ignore case")


def _has_nan(rows: list[tuple[Any, ...]], j: int, kinds: set[type]) -> bool:
    """Whether column ``j`` holds a NaN, which is stored as NULL, as SQLite stores it
    (PostgreSQL would keep a NaN). Floats only: one C-level sum, NaN if any is."""
    if kinds == {float}:
        total = sum(map(itemgetter(j), rows))
        if total == total:
            return False
    return any(r[j] != r[j] for r in rows)


def kinds_of(rows: list[tuple[Any, ...]], width: int) -> list[set[type]]:
    """The value types of each of the first ``width`` columns (one C-level pass each),
    for :func:`place` and :func:`changes` to share."""
    return [set(map(type, map(itemgetter(j), rows))) for j in range(width)]


def place(
    known: TableSchema, names: Sequence[str], rows: list[tuple[Any, ...]], column_kinds: list[set[type]] | None = None
) -> tuple[list[tuple[Any, ...]], bool]:
    """Rows as stored: JSONB cells wrapped, misfits moved to the overflow (appended as a
    last value when any row has one). Returns the rows and whether they carry it."""
    decls = [known.columns[n] for n in names]
    column_kinds = column_kinds or kinds_of(rows, len(names))
    odd = []
    for j, decl in enumerate(decls):
        kinds = column_kinds[j]
        if not kinds <= always_fits(decl) or (float in kinds and _has_nan(rows, j, kinds)):
            odd.append(j)
    if not odd:
        return rows, False
    out, spill = [], False
    for row in rows:
        values, overflow = list(row), {}
        for j in odd:
            value, decl = values[j], decls[j]
            if value is None:
                continue
            if value != value:  # NaN
                values[j] = None
                continue
            if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
                raise OverflowError(f"int {value} is outside the 64-bit range")  # as sqlite3 says it
            if decl == "":
                values[j] = Jsonb(to_json(value))
            elif not fits(decl, value):
                overflow[names[j]] = to_json(value)
                values[j] = None
        values.append(Jsonb(overflow) if overflow else None)
        spill = spill or bool(overflow)
        out.append(tuple(values))
    return (out, True) if spill else ([r[:-1] for r in out], False)


def changes(
    known: TableSchema, names: Sequence[str], rows: list[tuple[Any, ...]], column_kinds: list[set[type]] | None = None
) -> dict[str, str]:
    """Column -> logical type, for the types these values set (a first value in a
    column logged as None) or widen (a float in an INTEGER column)."""
    out: dict[str, str] = {}
    for j, name in enumerate(names):
        current = known.logical.get(name, "")
        if current not in ("", "INTEGER"):
            continue
        kinds = column_kinds[j] if column_kinds else set(map(type, map(itemgetter(j), rows)))
        new = current
        if not current:  # an untyped column: its first value decides
            new = next((k for k in map(kind_of, map(itemgetter(j), rows)) if k is not None), "")
        if new == "INTEGER" and float in kinds and any(type(v) is float and v == v for v in map(itemgetter(j), rows)):
            new = "REAL"
        if new != current:
            out[name] = new
    return out


def planned(known: TableSchema, keys: Sequence[str], first_value: Any) -> tuple[tuple[str, ...], dict[str, str]]:
    """The keys as the table spells them (columns and spilled keys), and the columns to
    add (name -> logical type of the first value, '' for none) for the keys it lacks."""
    names = tuple(map(known.name, keys))
    have = known.lower.keys() | known.spilled.keys()
    return names, {n: sql_type(first_value(i)) or "" for i, n in enumerate(names) if n.lower() not in have}


@contextmanager
def row_limit(table: str, width: int) -> Iterator[None]:
    """PostgreSQL's "row is too big" (a row must fit one 8 kB page) as a clear error."""
    try:
        yield
    except pg_errors.NumericValueOutOfRange as exc:
        raise OverflowError(str(exc)) from None  # an int beyond 64 bits: the Tracker names it
    except pg_errors.ProgramLimitExceeded as exc:
        raise ColumnLimitError(
            f"A row of {width} values is too big for one PostgreSQL row in table {table!r} ({exc}). "
            "Nothing was written. Log fewer keys per row, or a dict as one JSON value."
        ) from None


def plain(value: Any, decl: str) -> Any:
    return float(value) if decl == "REAL" and type(value) is int else value


def short(row: dict[str, Any]) -> str:
    text = repr(row)
    return text if len(text) <= 200 else text[:197] + "..."


#: From this many rows a COPY hands its buffers to a writer thread, so that formatting
#: the next rows overlaps with sending the last ones and the server's parsing.
QUEUED_ABOVE = 5_000

#: ``format_type`` of a column -> the type name binary COPY dumps it as (columns that
#: xetrack declares; a table with any other type is copied as text).
_BINARY = {
    "bigint": "int8",
    "double precision": "float8",
    "text": "text",
    "boolean": "bool",
    "bytea": "bytea",
    "jsonb": "jsonb",
}


def copy_rows(
    conn: Any,
    table: str,
    known: TableSchema,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    queued: bool | None = None,
) -> None:
    """``COPY ... FROM STDIN`` of rows as :func:`place` gives them (each value fits its
    column, JSONB cells wrapped), in binary when every column has a type xetrack declares:
    numbers go as 8 bytes, not as digits the server parses again."""
    binary = [_BINARY.get(known.declared.get(name, "")) for name in columns]
    query = sql.SQL("COPY {} ({}) FROM STDIN").format(_I(table), sql.SQL(", ").join(map(_I, columns)))
    if all(binary):
        query += sql.SQL(" (FORMAT BINARY)")
    cursor = conn.cursor()
    if queued is None:
        queued = len(rows) >= QUEUED_ABOVE  # type: ignore[arg-type]
    with cursor.copy(query, writer=QueuedLibpqWriter(cursor) if queued else None) as copy:
        if all(binary):
            copy.set_types(binary)
        write = copy.write_row
        for row in rows:
            write(row)


def insert_sql(table: str, columns: Sequence[str]) -> Any:
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        _I(table), sql.SQL(", ").join(map(_I, columns)), sql.SQL(", ").join(sql.Placeholder() * len(columns))
    )


def where_sql(known: TableSchema, where: Where | None) -> tuple[Any, list[Any]]:
    """A WHERE clause that also finds values kept in the overflow (see pg_types)."""
    if not where:
        return sql.SQL(""), []
    parts: list[sql.Composable] = []
    params: list[Any] = []  # bound values of any type
    overflow = _I(OVERFLOW)
    for key, value in where.items():
        name = known.lower.get(key.lower(), key)
        decl, column = known.columns.get(name, ""), _I(name)
        if value is None:
            parts.append(sql.SQL("({} IS NULL AND NOT COALESCE({} ? %s, false))").format(column, overflow))
            params.append(name)
        elif decl == "":
            parts.append(sql.SQL("{} = %s").format(column))
            params.append(Jsonb(to_json(value)))
        elif type(value) in (int, float) and decl in ("INTEGER", "REAL"):
            parts.append(sql.SQL("({} = %s OR {} -> %s = %s)").format(column, overflow))
            params += [value, name, Jsonb(to_json(value))]
        elif fits(decl, value):
            parts.append(sql.SQL("{} = %s").format(column))
            params.append(value)
        else:
            parts.append(sql.SQL("{} -> %s = %s").format(overflow))
            params += [name, Jsonb(to_json(value))]
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), params


def create_side_tables(conn: Any) -> None:
    """Inside a transaction holding the create lock: xetrack's own tables."""
    conn.execute(
        sql.SQL(
            'CREATE TABLE IF NOT EXISTS {} ("tbl" TEXT NOT NULL, "name" TEXT NOT NULL, "type" TEXT NOT NULL, '
            'PRIMARY KEY ("tbl", "name"))'
        ).format(_I(COLUMN_TYPES))
    )
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, value BYTEA NOT NULL, "
            "seq BIGINT GENERATED ALWAYS AS IDENTITY)"
        ).format(_I(ASSETS_TABLE))
    )
    conn.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (hash TEXT PRIMARY KEY, count BIGINT NOT NULL)").format(_I(ASSET_COUNTS))
    )


def write_assets(conn: Any, assets: AssetWrites) -> None:
    """Inside the rows' transaction: store new blobs once, count the rows pointing at each."""
    a, c = _I(ASSETS_TABLE), _I(ASSET_COUNTS)
    cursor = conn.cursor()
    if assets.blobs:
        cursor.executemany(
            sql.SQL("INSERT INTO {} (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING").format(a),
            list(assets.blobs.items()),
        )
    if assets.refs:
        cursor.executemany(
            sql.SQL(
                "INSERT INTO {c} (hash, count) SELECT %s, %s WHERE EXISTS (SELECT 1 FROM {a} WHERE key = %s) "
                "ON CONFLICT (hash) DO UPDATE SET count = {c}.count + excluded.count"
            ).format(a=a, c=c),
            [(key, n, key) for key, n in assets.refs.items()],
        )
