"""The engine interface every store implements, and the SQL pieces they share.

An engine knows tables, columns and rows; it knows nothing of runs, params or
Trackers. Every identifier it emits goes through :func:`xetrack.schema.quote` and
every value is a bound parameter.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ColumnNotFoundError, DatabaseError, TableNotFoundError
from ..schema import quote

#: SQLite's names for the rowid; a user column may shadow any of them.
ROWID_ALIASES = ("rowid", "_rowid_", "oid")

Where = Mapping[str, Any]
#: column -> 'param' or 'metric': the role a writer says its new columns play (the
#: ``xetrack_kinds`` side table records it, for ``runs()`` to split params from metrics).
Roles = Mapping[str, str]


def pending_roles(recorded: Mapping[str, str], roles: Roles) -> dict[str, str]:
    """The part of ``roles`` a file recording ``recorded`` still needs written: a param
    is recorded as one whatever was there (it came through ``params=``), a metric only
    where nothing is recorded.

    >>> pending_roles({"lr": "metric", "loss": "metric"}, {"lr": "param", "loss": "metric", "acc": "metric"})
    {'lr': 'param', 'acc': 'metric'}
    """
    return {
        column: role
        for column, role in roles.items()
        if (recorded.get(column) != "param" if role == "param" else column not in recorded)
    }


class SQLError(DatabaseError):
    """The user's own SQL (``xt sql``) failed; the message is the engine's."""


@dataclass
class AssetWrites:
    """Assets that go with rows being written, committed in the same transaction.

    ``blobs``: hash -> pickled bytes to store (skipped if the hash is already stored);
    ``refs``: hash -> how many of the rows point at it (only stored hashes are counted).
    """

    blobs: dict[str, bytes] = field(default_factory=dict)
    refs: Counter[str] = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.blobs or self.refs)


def rowid_alias(columns: Iterable[str]) -> str:
    taken = {c.lower() for c in columns}
    for alias in ROWID_ALIASES:
        if alias not in taken:
            return alias
    raise ValueError("The table has columns named rowid, _rowid_ and oid: rows have no order")


def where_clause(where: Where | None) -> tuple[str, list[Any]]:
    """``{"a": 1, "b": None}`` -> ``(' WHERE "a" = ? AND "b" IS NULL', [1])``."""
    if not where:
        return "", []
    parts, params = [], []
    for key, value in where.items():
        if value is None:
            parts.append(f"{quote(key)} IS NULL")
        else:
            parts.append(f"{quote(key)} = ?")
            params.append(value)
    return " WHERE " + " AND ".join(parts), params


def has_table(conn: Any, name: str) -> bool:
    """Whether a ``sqlite3`` connection's main database has table ``name``."""
    sql = "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (name,)).fetchone() is not None


def rows_if_table(conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """All rows of one read on a ``sqlite3`` connection; a table that does not exist yet
    (nothing of that kind was ever stored in the file) reads as no rows."""
    try:
        rows: list[tuple[Any, ...]] = conn.execute(sql, params).fetchall()
        return rows
    except Exception as exc:  # sqlite3.OperationalError; base.py stays free of sqlite3
        if "no such table" in str(exc):
            return []
        raise


def close_matches(name: str, candidates: Sequence[str]) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not matches and len(name) >= 3:  # 'prod' for 'production'
        matches = [c for c in candidates if c.lower().startswith(name.lower())][:3]
    if not matches:
        lowered = {c.lower(): c for c in candidates}
        matches = [lowered[name.lower()]] if name.lower() in lowered else []
    return f" Did you mean: {', '.join(matches)}?" if matches else ""


def column_not_found(name: str, table: str, columns: Sequence[str]) -> ColumnNotFoundError:
    return ColumnNotFoundError(
        f"Column {name!r} not found in table {table!r}.{close_matches(name, columns)} Columns: {', '.join(columns)}"
    )


def table_not_found(name: str, path: str, tables: Sequence[str]) -> TableNotFoundError:
    listed = ", ".join(tables) if tables else "none"
    return TableNotFoundError(f"Table {name!r} not found in {path!r}.{close_matches(name, tables)} Tables: {listed}")


class StreamAborted(Exception):
    """A streamed batch (:meth:`Engine.insert_stream`) cannot go on as a stream: a later
    chunk has other keys, or a value that needs what the stream did not set up. Nothing
    of it was written; the caller sends the batch whole."""


class Engine(ABC):
    """Where rows live. One engine is one open database."""

    #: Whether :meth:`insert_stream` takes a batch in chunks (else only whole batches).
    streams = False
    #: Whether ``insert_many`` uses each column's value types (``kinds``) when given them:
    #: a caller that would find them only for this engine leaves them out otherwise.
    wants_kinds = False

    path: str | None
    #: The SQL the engine's database speaks: 'sqlite' (the sqlite and duckdb engines, both
    #: on one SQLite file) or 'postgres'.
    dialect = "sqlite"

    @abstractmethod
    def tables(self) -> list[str]:
        """Experiment tables, oldest first (internal tables left out)."""

    @abstractmethod
    def columns(self, table: str) -> dict[str, str]:
        """Column name -> declared type, in table order. Raises TableNotFoundError."""

    def spilled(self, table: str) -> list[str]:
        """The table's keys past the columns it can hold, kept apart (SQLite's
        ``store/sqlite/spill.py``), in the order they came; none on an engine that keeps
        every key a column."""
        return []

    def column_types(self, table: str) -> dict[str, str]:
        """Column name -> logical type, in table order: what decides the read-back dtype.

        It differs from the declared type for a column added for None (declared with no
        type; its first value decides) and for an INTEGER column that received a float
        (REAL). Engines without such records return the declared types.
        """
        return self.columns(table)

    @abstractmethod
    def ensure_table(self, table: str, reset: bool = False) -> None:
        """Create ``table`` with the base columns if missing; ``reset`` drops it first."""

    @abstractmethod
    def insert(
        self, table: str, row: dict[str, Any], assets: AssetWrites | None = None, roles: Roles | None = None
    ) -> None:
        """Insert one row; unknown keys add their column first (with no declared type
        for a None). ``roles``: the roles of columns the writer has not seen recorded,
        recorded with the row (in its transaction where the engine can)."""

    def checked(self, table: str, keys: tuple[str, ...], types: tuple[type, ...]) -> Any:
        """A token for :meth:`insert_checked` when the engine has already checked rows of
        these keys and value types, else None (engines without such a cache: always)."""
        return None

    def insert_checked(self, table: str, token: Any, values: tuple[Any, ...]) -> bool:
        """Insert a row of the shape ``token`` stands for; False when the token is stale."""
        return False

    @abstractmethod
    def insert_many(
        self,
        table: str,
        keys: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        first_value: Callable[[int], Any],
        assets: AssetWrites | None = None,
        kinds: Sequence[set[type]] | None = None,
        roles: Roles | None = None,
    ) -> None:
        """Insert ``rows`` (tuples ordered as ``keys``) in one transaction, and ``roles``
        as :meth:`insert` does.

        ``first_value(i)`` returns the first non-None value of column ``i``, used to
        declare the type of a column that does not exist yet (None: all empty, and the
        column is added with no declared type). ``kinds``, when the caller has them, are
        the value types of each column (``{int, NoneType}``...); the engine finds them
        itself otherwise.
        """

    def insert_stream(
        self,
        table: str,
        keys: tuple[str, ...],
        chunks: Iterable[tuple[list[tuple[Any, ...]], Any]],
        first_value: Callable[[int], Any],
        roles: Roles | None = None,
    ) -> None:
        """Insert a batch that arrives in ``(rows, kinds)`` chunks, in one transaction, so
        that the caller prepares a chunk while the engine sends the last one. Only for
        engines with ``streams``; ``first_value`` is known from the first chunk (no
        column empty there). :class:`StreamAborted`, from the chunks or the engine,
        leaves nothing written."""
        raise NotImplementedError(f"{type(self).__name__} takes batches whole (insert_many)")

    @abstractmethod
    def update(self, table: str, values: dict[str, Any], where: Where | None) -> int:
        """Set ``values`` on the rows matching ``where``; returns the number of rows."""

    @abstractmethod
    def delete(self, table: str, where: Where | None) -> int:
        """Delete the rows matching ``where``; returns the number of rows."""

    @abstractmethod
    def count(self, table: str, where: Where | None = None) -> int: ...

    @abstractmethod
    def read(
        self,
        table: str,
        where: Where | None = None,
        head: int | None = None,
        tail: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> Any:
        """A pandas DataFrame of the matching rows, oldest first."""

    @abstractmethod
    def last_row(
        self, table: str, where: Where | None = None, offset: int = 0, drop_null: bool = True
    ) -> dict[str, Any] | None:
        """The ``offset``-th row from the end (0: the last) as a dict, None if there is none.

        ``drop_null`` leaves out the columns the row holds no value in."""

    @abstractmethod
    def nth_row(self, table: str, where: Where | None, n: int, drop_null: bool = True) -> dict[str, Any] | None:
        """The n-th matching row, 0-based from the oldest."""

    # -- one run, read by the dashboard ------------------------------------------------
    # A run's rows carry a cursor: an increasing number per row of the table (SQLite's
    # rowid, PostgreSQL's identity column), so that a poll "after" it brings new rows only.
    def run_rows(
        self, table: str, track_id: str, after: int | None, offset: int, size: int
    ) -> tuple[list[str], list[tuple[Any, ...]], int | None, int]:
        """(column names, rows as ``(cursor, *values)``, total, top cursor) of one run,
        oldest first: with ``after``, up to ``size`` rows past that cursor (total None,
        top ``after``); else the run's row count and largest cursor, and ``size`` rows
        from ``offset`` among those up to it."""
        raise NotImplementedError(f"{type(self).__name__} does not read a run's rows by cursor")

    def run_points(
        self, table: str, track_id: str, columns: Sequence[str], after: int, limit: int | None = None
    ) -> tuple[list[tuple[Any, ...]], int | None]:
        """``(cursor, *values)`` of the run's rows past ``after`` where none of ``columns``
        is NULL, in order, and None; or, when given ``limit`` and (y, x) columns of a long
        run, only the rows a downsampling to ``limit`` points keeps and how many there were."""
        raise NotImplementedError(f"{type(self).__name__} does not read a run's points")

    def points_before(self, table: str, track_id: str, column: str, cursor: int) -> int:
        """How many of the run's rows up to ``cursor`` hold a value in ``column``."""
        raise NotImplementedError(f"{type(self).__name__} does not count a run's points")

    def run_range(
        self, table: str, track_id: str, y: str, x: str, low: float, high: float, columns: int
    ) -> tuple[list[tuple[Any, Any]], int]:
        """(x, y) of the run's points with ``low <= x <= high`` (numbers in both), in x
        order, and how many there are: all of them when there are at most ``2 * columns``;
        else, for each of ``columns`` equal slices of the range (a point's slice is
        ``floor((x - low) * columns / (high - low))``, ``high`` in the last), the points of
        the lowest and of the highest y. Read through the run's rows, not the whole table."""
        raise NotImplementedError(f"{type(self).__name__} does not read a range of a run's points")

    def run_start(self, table: str, track_id: str) -> Any:
        """The timestamp of the run's first row, None without rows."""
        raise NotImplementedError(f"{type(self).__name__} does not read a run's start")

    def run_error(self, table: str, track_id: str) -> str | None:
        """The error text the run's lifecycle row recorded, None without one."""
        raise NotImplementedError(f"{type(self).__name__} does not read a run's error")

    # -- the asset store: pickled objects by content hash ---------------------------
    @abstractmethod
    def asset_get(self, key: str) -> bytes | None:
        """The stored bytes of one asset, or None."""

    @abstractmethod
    def has_asset(self, key: str) -> bool: ...

    @abstractmethod
    def asset_keys(self) -> list[str]:
        """Every stored hash, oldest first."""

    @abstractmethod
    def asset_count(self) -> int: ...

    @abstractmethod
    def asset_refs(self, key: str) -> int:
        """How many logged rows pointed at the asset."""

    @abstractmethod
    def asset_delete(self, key: str, table: str | None = None, column: str | None = None) -> int:
        """Delete an asset; with ``table``/``column``, set that column to NULL where it held
        the hash. Returns the number of rows changed."""

    @property
    @abstractmethod
    def conn(self) -> Any:
        """The engine's own connection, for the user's SQL."""

    @abstractmethod
    def close(self) -> None: ...

    # -- what the CLI shows: declared and engine types, stored objects, the user's SQL --
    def declared_types(self, table: str) -> dict[str, str]:
        """Column -> type as the table declares it, in table order (as written, not
        normalised). Raises TableNotFoundError."""
        return self.columns(table)

    def native_types(self, table: str) -> dict[str, str]:
        """Column -> the type the engine's own SQL reads it as (DuckDB's on the duckdb engines)."""
        return self.declared_types(table)

    def asset_listing(self) -> list[tuple[str, int, int, int]]:
        """``(hash, bytes, rows that pointed at it, model versions)`` of every stored
        object, oldest first."""
        return []

    def run_sql(self, query: str) -> tuple[list[str] | None, list[tuple[Any, ...]], int]:
        """Run one SQL statement of the user's own on :attr:`conn` (the database attached
        as ``db`` where the engine attaches it). Returns the column names (None for a
        statement without a result set), the rows, and the rows changed (-1 when unknown).
        Raises :class:`SQLError` with the engine's message.

        >>> open_engine("exp.db").run_sql('SELECT count(*) AS n FROM db."default"')  # doctest: +SKIP
        (['n'], [(3,)], -1)
        """
        raise NotImplementedError(f"{type(self).__name__} runs no SQL of its own")
