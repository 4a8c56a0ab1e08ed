"""The PostgreSQL engine: many machines write one store, through psycopg 3.

>>> Tracker("postgresql://ana@db-host/experiments").log({"acc": 0.9})  # doctest: +SKIP

- ``log()`` with known keys and value types is one cached INSERT in autocommit mode.
- A new key takes ``LOCK TABLE ... SHARE ROW EXCLUSIVE`` (one grower at a time, never
  two deadlocking), rereads the columns, ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``
  and inserts, in one transaction under a bounded ``lock_timeout``, retried while the
  table stays locked (up to ``timeout`` seconds).
- Columns are typed by their first value; a value of another type is kept as given in
  the row's JSONB overflow and merged back on read (:mod:`.pg_types`).
- A table takes columns while any row of them fits one page; later keys are kept in a
  side table and merged back on read (:mod:`.spill`): no limit on the number of keys.
- A connection the server dropped is reopened, and the statement run once more only
  when it was not committed (a row is found again by its ``track_id`` and
  ``timestamp``, which are unique per run).
- Every identifier is a ``psycopg.sql.Identifier``; every value a bound parameter.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from ...errors import DatabaseError, TableNotFoundError
from ...schema import TIMESTAMP, TRACK_ID, is_internal_table
from ..base import AssetWrites, Engine, Roles, Where, column_not_found, pending_roles, table_not_found
from ..tables import COLUMN_TYPES
from . import spill
from .assets import AssetMethods
from .blobs import has_table
from .changes import PostgresChanges
from .connect import connect, psycopg_module, redact, scrub
from .reads import PostgresReads
from .runs import PostgresRunReads
from .sql import (
    TableSchema,
    changes,
    check_names,
    copy_rows,
    create_side_tables,
    insert_sql,
    kinds_of,
    place,
    planned,
    row_limit,
    short,
    write_assets,
)
from .stream import PostgresStreams
from .user_sql import PostgresUserSQL
from .values import HIDDEN, MAX_NAME_BYTES, OVERFLOW, PG_TYPE, ROW, logical_of

psycopg = psycopg_module()
from psycopg import errors as pg_errors  # noqa: E402
from psycopg import sql  # noqa: E402

DEFAULT_TIMEOUT = 60.0
LOCK_TIMEOUT = "2s"  # per attempt; attempts go on for ``timeout`` seconds
CONNECT_TIMEOUT = 10.0  # seconds to reach the server (libpq would wait forever)
_CREATE_LOCK = 0x78657472  # pg_advisory_xact_lock key: one CREATE of xetrack's tables at a time
_RETRY = (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_STALE = (pg_errors.UndefinedTable, pg_errors.UndefinedColumn, pg_errors.DatatypeMismatch)
_COLUMNS_SQL = (  # the third column: whether the store has the spill's tables
    f"SELECT a.attname, format_type(a.atttypid, a.atttypmod), (SELECT {spill.EXISTS}) FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(%s)) "
    "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
)
_TABLES_SQL = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND EXISTS ("
    "SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = %s AND NOT a.attisdropped) "
    "ORDER BY c.oid"
)
_I = sql.Identifier
T = TypeVar("T")


class PostgresEngine(
    PostgresReads, PostgresChanges, PostgresStreams, PostgresUserSQL, PostgresRunReads, AssetMethods, Engine
):
    """Rows in a PostgreSQL database, one table per experiment table (``current_schema()``)."""

    dialect = "postgres"
    path: str  # the URL without its password: a PostgreSQL store always has one

    def __init__(self, url: str, *, create: bool = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._url = url
        self.path = redact(url)  # what messages and reprs show
        self.timeout = timeout
        self._create = create
        self._lock = threading.RLock()
        self._conn: Any = None
        self._cursor: Any = None
        self._pid = 0
        self._user: Any = None
        self._inherited: list[Any] = []  # a forked child's copies of the parent's sessions
        self._tables: dict[str, TableSchema] = {}
        with self._lock:
            self._live()

    def __repr__(self) -> str:
        return f"PostgresEngine({self.path!r})"

    # -- connection ---------------------------------------------------------------
    def _live(self) -> Any:
        conn = self._conn
        if conn is None or self._pid != os.getpid() or conn.closed:
            if conn is not None and self._pid != os.getpid():
                self._inherited.append(conn)  # closing it would end the parent's session
            conn = self._conn = connect(self._url, min(self.timeout, CONNECT_TIMEOUT))
            self._cursor = conn.cursor()
            self._pid = os.getpid()
        return conn

    def _lost(self, exc: BaseException) -> bool:
        conn = self._conn
        return isinstance(exc, psycopg.OperationalError) and (conn is None or conn.closed or conn.broken)

    @overload
    def _run(self, fn: Callable[[Any], T], committed: Callable[[Any], None] | None = None, what: str = "") -> T: ...
    @overload
    def _run(self, fn: Callable[[Any], T], committed: Callable[[Any], bool | None], what: str = "") -> T | None: ...
    def _run(
        self, fn: Callable[[Any], T], committed: Callable[[Any], bool | None] | None = None, what: str = ""
    ) -> T | None:
        """``fn(conn)``; when the server dropped the connection, reopen it and call ``fn``
        once more, if ``committed`` (given for writes that are not repeatable) says the
        first call did not store anything."""
        with self._lock:
            try:
                return fn(self._live())
            except psycopg.Error as exc:
                if not self._lost(exc):
                    raise
                first = scrub(str(exc).strip(), self._url)
            self._conn = None
            conn = self._live()
            if committed is not None:
                done = committed(conn)
                if done:
                    return None
                if done is None:
                    raise DatabaseError(
                        f"The connection to {self.path} was lost while writing {what}; it may or may not "
                        f"be stored ({first})"
                    )
            try:
                return fn(conn)
            except psycopg.Error as exc:
                if not self._lost(exc):
                    raise
                again = scrub(str(exc).strip(), self._url)
            self._conn = None
            raise DatabaseError(
                f"The connection to {self.path} was lost twice{' writing ' + what if what else ''}: {again}"
            )

    def _transact(self, conn: Any, table: str, body: Callable[[Any], T]) -> T:
        """``body(conn)`` in one transaction with a bounded lock wait, tried again while
        the table stays locked; the cached schema of ``table`` is forgotten on failure."""
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
                    return body(conn)
            except _RETRY as exc:
                self._tables.pop(table, None)
                if time.monotonic() > deadline:
                    raise DatabaseError(
                        f"Table {table!r} in {self.path} stayed locked for {self.timeout:.0f} s: {exc}"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
            except BaseException:
                self._tables.pop(table, None)
                raise

    @property
    def conn(self) -> Any:
        """A psycopg connection (autocommit) for the user's SQL; not the one xetrack writes with."""
        with self._lock:
            if self._user is None or self._user.closed:
                self._user = connect(self._url, min(self.timeout, CONNECT_TIMEOUT))
            return self._user

    def close(self) -> None:
        with self._lock:
            for conn in (self._conn, self._user):
                if conn is not None and self._pid == os.getpid():
                    conn.close()
            self._conn = self._user = self._cursor = None
            self._tables.clear()

    # -- schema -------------------------------------------------------------------
    def tables(self) -> list[str]:
        rows = self._run(lambda conn: conn.execute(_TABLES_SQL, (ROW,)).fetchall())
        return [name for (name,) in rows if not is_internal_table(name)]

    def _load(self, conn: Any, table: str) -> TableSchema:
        rows = conn.execute(_COLUMNS_SQL, (table,)).fetchall()
        declared = {name: kind for name, kind, _ in rows}
        if not rows or ROW not in declared:
            self._tables.pop(table, None)
            raise table_not_found(table, self.path, self.tables())
        columns = {name: logical_of(kind) for name, kind in declared.items() if name not in HIDDEN}
        spills = bool(rows[0][2])
        spilled = spill.registry(conn, table) if spills else {}
        known = TableSchema(columns, self._recorded(conn, table), declared, spilled, spills)
        self._tables[table] = known
        return known

    def _recorded(self, conn: Any, table: str) -> dict[str, str]:
        query = sql.SQL('SELECT "name", "type" FROM {} WHERE "tbl" = %s').format(_I(COLUMN_TYPES))
        return {name.lower(): kind for name, kind in self._rows(conn, query, (table,))}

    @staticmethod
    def _rows(conn: Any, query: Any, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read; a side table that was never created reads as none."""
        try:
            rows: list[tuple[Any, ...]] = conn.execute(query, params).fetchall()
        except pg_errors.UndefinedTable:
            return []
        return rows

    def columns(self, table: str) -> dict[str, str]:
        """The table's columns, then its spilled keys (declared with no type)."""
        known = self._run(lambda conn: self._load(conn, table))
        return {**known.columns, **dict.fromkeys(known.spilled.values(), "")}

    def spilled(self, table: str) -> list[str]:
        """The table's keys past its columns (:mod:`.spill`), in the order they came."""
        return list(self._run(lambda conn: self._load(conn, table)).spilled.values())

    def column_types(self, table: str) -> dict[str, str]:
        return dict(self._run(lambda conn: self._load(conn, table)).logical)

    def ensure_table(self, table: str, reset: bool = False) -> None:
        check_names([table])

        def create(conn: Any) -> None:
            if not reset:
                try:
                    self._load(conn, table)
                    return
                except TableNotFoundError:
                    pass

            def body(conn: Any) -> None:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
                create_side_tables(conn)
                if reset or not has_table(conn, table):
                    spill.drop(conn, table)  # a new table: no spill rows of an older one with its name
                if reset:
                    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_I(table)))
                    conn.execute(sql.SQL('DELETE FROM {} WHERE "tbl" = %s').format(_I(COLUMN_TYPES)), (table,))
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} ({} BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                        "{} TEXT, {} TEXT, {} JSONB)"
                    ).format(_I(table), _I(ROW), _I(TIMESTAMP), _I(TRACK_ID), _I(OVERFLOW))
                )
                conn.execute(
                    sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                        _I(f"ix_{table}_{TRACK_ID}"[:MAX_NAME_BYTES]), _I(table), _I(TRACK_ID)
                    )
                )

            self._transact(conn, table, body)
            self._load(conn, table)

        self._run(create)

    def _grow(
        self, conn: Any, table: str, wanted: dict[str, str], preferred: frozenset[str] = spill.FIRST
    ) -> TableSchema:
        """Inside a transaction: add the ``wanted`` columns (name -> logical type) still
        missing, with the table locked against other growers; the keys past its budget are
        spilled instead (:func:`.spill.split`: ``preferred`` ones take the reserve). Returns
        the fresh schema."""
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(_I(table)))
        known = self._load(conn, table)  # the columns and the spilled keys, under the lock
        missing = {n: t for n, t in wanted.items() if n.lower() not in known.lower and n.lower() not in known.spilled}
        if not missing:
            return known
        used, slots, block_size = conn.execute(spill.UNITS_SQL, (table,)).fetchone()
        fit, rest = spill.split(missing, used, slots, block_size, preferred)
        if rest:
            spill.register(conn, table, rest)
        if fit:
            adds = sql.SQL(", ").join(
                sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(_I(n), sql.SQL(PG_TYPE[missing[n]])) for n in fit
            )
            conn.execute(sql.SQL("ALTER TABLE {} ").format(_I(table)) + adds)
        return self._load(conn, table)

    def _record(self, conn: Any, table: str, known: TableSchema, changes: dict[str, str]) -> None:
        """Inside the values' transaction: record logical types; the first value wins, and
        INTEGER only ever widens to REAL, whatever other processes do at the same time."""
        if not changes:
            return
        query = sql.SQL(
            'INSERT INTO {t} ("tbl", "name", "type") VALUES (%s, %s, %s) ON CONFLICT ("tbl", "name") '
            'DO UPDATE SET "type" = excluded."type" WHERE {t}."type" = \'INTEGER\' AND excluded."type" = \'REAL\''
        ).format(t=_I(COLUMN_TYPES))
        conn.cursor().executemany(query, [(table, name.lower(), kind) for name, kind in changes.items()])
        known.logical.update(changes)

    # -- writes -------------------------------------------------------------------
    def insert(
        self, table: str, row: dict[str, Any], assets: AssetWrites | None = None, roles: Roles | None = None
    ) -> None:
        keys, values = tuple(row), tuple(row.values())
        signature = (keys, tuple(map(type, values)))

        def attempt(conn: Any) -> None:
            known = self._tables.get(table) or self._load(conn, table)
            cached = None if assets else known.insert_sql.get(signature)
            if cached is not None:
                try:
                    self._cursor.execute(cached, values)
                    return
                except _STALE:
                    known = self._load(conn, table)  # another process reset the table
            self._write(conn, table, known, keys, [values], assets, lambda i: values[i], signature, None, roles)

        with row_limit(table, len(keys)):
            self._run(attempt, lambda conn: self._stored(conn, table, row), f"the row {short(row)}")
        if roles:
            self.record_roles(table, roles)

    def checked(self, table: str, keys: tuple[str, ...], types: tuple[type, ...]) -> Any:
        known = self._tables.get(table)
        if known is None:
            return None
        cached = known.insert_sql.get((keys, types))
        return None if cached is None else (known, known.insert_sql, cached, keys)

    def insert_checked(self, table: str, token: Any, values: tuple[Any, ...]) -> bool:
        known: TableSchema  # what checked() gave
        known, checked, cached, keys = token
        with self._lock:
            cursor = self._cursor
            if cursor is None or self._pid != os.getpid():
                return False
            if self._tables.get(table) is not known or known.insert_sql is not checked:
                return False
            try:
                cursor.execute(cached, values)
                return True
            except pg_errors.NumericValueOutOfRange as exc:
                raise OverflowError(str(exc)) from None  # an int beyond 64 bits: log() names it
            except _STALE:
                self._tables.pop(table, None)
                return False
            except psycopg.Error as exc:
                if not self._lost(exc):
                    raise
            # The server dropped the connection: the row goes again unless it was stored.
            self._conn = None
            row = dict(zip(keys, values))
            if not self._stored(self._live(), table, row):
                self.insert(table, row)
            return True

    wants_kinds = True  # to place each value (a misfit goes to the overflow column)

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
        first = dict(zip(keys, rows[0])) if rows else {}
        with row_limit(table, len(keys)):
            self._run(
                lambda conn: self._write(
                    conn,
                    table,
                    self._tables.get(table) or self._load(conn, table),
                    keys,
                    rows,
                    assets,
                    first_value,
                    None,
                    kinds,
                    roles,
                ),
                lambda conn: self._stored(conn, table, first),
                f"a batch of {len(rows)} rows",
            )
        if roles:
            self.record_roles(table, roles)

    def record_roles(self, table: str, roles: Roles) -> None:
        """After the rows: record the roles the server does not record yet (a write of
        its own, as the side tables here are written)."""
        from . import meta as pg_meta

        recorded = {column: kind for column, kind, _ in pg_meta.recorded_keys(self, table, list(roles))}
        pending = pending_roles(recorded, roles)
        params = [(table, c, "param", None) for c, role in pending.items() if role == "param"]
        metrics = [(table, c, "metric", None) for c, role in pending.items() if role != "param"]
        if params:
            pg_meta.put_kinds(self, params, replace=True)
        if metrics:
            pg_meta.put_kinds(self, metrics, replace=False)

    def _write(
        self,
        conn: Any,
        table: str,
        known: TableSchema,
        keys: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        assets: AssetWrites | None,
        first_value: Callable[[int], Any],
        signature: Any,
        column_kinds: Sequence[set[type]] | None = None,
        roles: Roles | None = None,
    ) -> None:
        check_names(keys)
        if not rows:
            return
        names, wanted = planned(known, keys, first_value)
        narrow = bool(known.spilled) and any(n.lower() in known.spilled for n in names)
        if not wanted and not narrow and not assets and len(rows) == 1 and not changes(known, names, rows):
            stored, overflow = place(known, names, rows)
            query = insert_sql(table, names + ((OVERFLOW,) if overflow else ())).as_string(conn)
            self._cursor.execute(query, stored[0])
            if signature is not None and stored is rows:  # every value fits by its type alone
                if len(known.insert_sql) >= 4096:
                    known.insert_sql = {}
                known.insert_sql[signature] = query
            return

        def body(conn: Any) -> None:
            grown = self._grow(conn, table, wanted, spill.preferred(roles)) if wanted else known
            final = tuple(map(grown.name, names))
            kinds = list(column_kinds) if column_kinds else kinds_of(rows, len(final))  # for changes() and place()
            self._record(conn, table, grown, changes(grown, final, rows, kinds))
            if assets:
                write_assets(conn, assets)
            if grown.spilled and any(n.lower() in grown.spilled for n in final):
                spill.insert_rows(conn, table, grown, final, rows, kinds)  # the row, then its spilled values
                return
            stored, overflow = place(grown, final, rows, kinds)
            columns = final + ((OVERFLOW,) if overflow else ())
            if len(stored) == 1:
                conn.execute(insert_sql(table, columns), stored[0])
                return
            copy_rows(conn, table, grown, columns, stored)

        self._transact(conn, table, body)

    def _stored(self, conn: Any, table: str, row: dict[str, Any]) -> bool | None:
        """Whether ``row`` is in the table (found by its run and timestamp); None when
        the row has no such pair and cannot be told apart."""
        stamp, run = row.get(TIMESTAMP), row.get(TRACK_ID)
        if not isinstance(stamp, str) or not isinstance(run, str):
            return None
        query = sql.SQL("SELECT 1 FROM {} WHERE {} = %s AND {} = %s LIMIT 1").format(
            _I(table), _I(TRACK_ID), _I(TIMESTAMP)
        )
        try:
            return conn.execute(query, (run, stamp)).fetchone() is not None
        except pg_errors.UndefinedTable:
            return False

    def _checked(self, conn: Any, table: str, where: Where | None) -> TableSchema:
        known = self._load(conn, table)
        for key in where or ():
            if key.lower() in known.spilled:
                raise spill.not_a_column(key, table)
            if key.lower() not in known.lower:
                raise column_not_found(key, table, list(known.columns))
        return known
