"""The default engine: Python's sqlite3 on one file in WAL mode.

- ``log()`` with known keys is one cached INSERT in autocommit mode: one implicit
  transaction, nothing else.
- A new key takes the write lock (``BEGIN IMMEDIATE``), rereads the schema under it,
  adds what is still missing and inserts, all in one transaction, so another
  process adding the same column at the same moment is harmless and a failed
  insert leaves no half-added columns behind.
- Busy waits are SQLite's own busy handler (``timeout``), with a bounded retry on
  top for the few places SQLite does not call it.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, Callable, Iterator, Sequence, TypeVar

from ...errors import ColumnLimitError, DatabaseError, TableNotFoundError
from ...frames import frame_from_rows, row_dict
from ...schema import ASSET_COUNTS, ASSETS_TABLE, BASE_COLUMNS, TRACK_ID, is_internal_table, quote, sql_type
from ..base import ROWID_ALIASES, AssetWrites, Engine, Roles, Where, pending_roles, column_not_found, rowid_alias, rows_if_table, table_not_found, where_clause
from .blobs import check_pickle_size
from .busy import immediate, retry_busy, transact
from .faults import fault, raise_fault, read_target, surfaces_faults
from ..logical_types import kind_of, logical_types
from .column_types import forget_table, read_types, record_types
from .guard import Slot, close_when_collected, guard_for
from .roles import read_roles, write_roles
from .runs import SQLiteRunReads
from .user_sql import SQLiteUserSQL

DEFAULT_TIMEOUT = 60.0
#: After a checkpoint the WAL file is cut back to this size: one big artifact must not
#: leave a WAL file of its size behind.
JOURNAL_SIZE_LIMIT = 64 * 2**20
#: What every connection sets, in this order. A file the engine may write is switched to
#: WAL first (``journal_mode`` is stored in the file; readers never change it): readers go
#: on while one process writes. ``synchronous=NORMAL`` syncs at checkpoints, not at each
#: commit (a power cut may lose the last commits, never corrupt the file).
PRAGMAS = {"synchronous": "NORMAL", "journal_size_limit": JOURNAL_SIZE_LIMIT}
#: xetrack 0.7.0's README reads the default table as ``events`` ("the sqlite database is
#: attached as db and the table is events": ``SELECT * FROM db.events``): a file whose
#: ``default`` table xetrack creates gets a view of that name over it, unless the name is
#: taken. A Tracker of a table named ``events`` replaces the view.
DEFAULT_TABLE, EVENTS_VIEW = "default", "events"
_EVENTS_SQL = f"CREATE VIEW {quote(EVENTS_VIEW)} AS SELECT * FROM {quote(DEFAULT_TABLE)}"
T = TypeVar("T")
#: Checked INSERTs kept per table, by keys and value types.
_MAX_CHECKED = 4096


class _Table:
    """What this process knows of one table: its columns and the INSERTs it has checked.

    ``version`` is the file's ``PRAGMA schema_version`` the columns were read at: when
    it has not moved, the cached columns are still exact and need no rereading.

    ``logical`` holds the logical types (:mod:`.column_types`) this process knows. It
    only decides when to record one; it may lag behind another process's records,
    which costs an extra check under the write lock, never a wrong read (reads take
    the recorded types from the file). ``insert_sql`` is keyed by the row's keys and
    the types of its values: such an INSERT was checked to change no logical type. It is
    replaced, never cleared in place, when it goes stale, so a :meth:`SQLiteEngine.checked`
    token that holds the old dict is known to be stale by identity alone.
    """

    __slots__ = ("columns", "lower", "logical", "insert_sql", "version", "roles")

    def __init__(self) -> None:
        self.columns: dict[str, str] = {}  # name -> declared type, table order
        self.lower: dict[str, str] = {}
        self.logical: dict[str, str] = {}  # name -> logical type
        self.insert_sql: dict[tuple[tuple[str, ...], tuple[type, ...]], str] = {}
        self.version = -1
        # column -> 'param'/'metric' as recorded (xetrack_kinds), read when first needed,
        # then kept up to date with what this process records. Like ``logical`` it may lag
        # behind another process's records: that costs a write transaction that rereads
        # the columns in question, never a wrong record.
        self.roles: dict[str, str] | None = None

    def load(self, columns: dict[str, str], version: int, recorded: dict[str, str]) -> None:
        if not set(columns) >= set(self.columns):
            self.insert_sql = {}  # columns went away (a reset): checked INSERTs are stale
            self.roles = None  # and so are the roles read with them
        self.columns = columns
        self.lower = {name.lower(): name for name in columns}
        self.logical = logical_types(columns, recorded)
        self.version = version

    def add(self, name: str, decl: str) -> None:
        self.columns[name] = decl
        self.lower[name.lower()] = name
        self.logical.setdefault(name, decl)

    def changes(self, keys: Sequence[str], values: Sequence[Any]) -> dict[str, str]:
        """Column -> kind, for the values that would change a logical type this
        process knows (a first value in an untyped column, a float in an int one)."""
        out: dict[str, str] = {}
        for key, value in zip(keys, values):
            kind = kind_of(value)
            if kind is None:
                continue
            name = self.lower.get(key.lower(), key)
            current = self.logical.get(name, "")
            if current != kind and (not current or (current == "INTEGER" and kind == "REAL")):
                out[name] = kind
        return out


def _stale_schema(exc: BaseException) -> bool:
    text = str(exc)
    return "no such table" in text or "has no column named" in text


class SQLiteEngine(SQLiteUserSQL, SQLiteRunReads, Engine):
    """Rows in a SQLite file (or in memory when ``path`` is None)."""

    def __init__(self, path: str | None, *, create: bool = True, timeout: float = DEFAULT_TIMEOUT):
        self.path = path
        self.timeout = timeout
        self._create = create
        self._guard = guard_for(path)
        # The guard holds the connections (see store/sqlite/guard.py); the engine its slots.
        self._main = Slot()  # xetrack's reads and writes
        self._user = Slot()  # tracker.conn
        self._finalizer = close_when_collected(self, self._guard, self._main, self._user)
        # What this process knows of the file's tables, shared by every engine on the file
        # (kept valid by schema_version): a sweep's next Tracker reads no schema again.
        self._tables: dict[str, _Table] = self._guard.tables if path is not None else {}
        if path is not None and not create and not os.path.exists(path):
            raise FileNotFoundError(f"Database {path!r} does not exist")
        with self._guard.lock:
            self._live()

    # -- connection -------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        target, uri = self._target()
        conn = sqlite3.connect(
            target,
            timeout=self.timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=128,  # every ALTER expires all cached statements: keep it small
            uri=uri,
        )
        try:
            if self._create and self.path is not None:
                retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone(), self.timeout, self.path)
            for name, value in PRAGMAS.items():  # names and values are ours, never the user's
                conn.execute(f"PRAGMA {name}={value}")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # is it a database?
        except sqlite3.DatabaseError as exc:
            conn.close()
            clear = fault(exc, self.path, self.timeout)  # a busy file, a full disk or a read-only folder says so
            if clear is not None and not isinstance(clear, DatabaseError):
                raise clear from None
            raise DatabaseError(
                f"{self.path!r} is not a SQLite database or is damaged ({exc})"
            ) from None
        return conn

    def _target(self) -> tuple[str, bool]:
        if self.path is None:
            return ":memory:", False
        if self._create:
            return self.path, False
        return read_target(self.path)  # never creates a file; read-only where it must be

    def _live(self) -> sqlite3.Connection:
        """The engine's own connection, reopened after the guard closed it or in a forked child."""
        main = self._main
        conn = main.conn
        if conn is None or main.pid != os.getpid():
            # Kept idle by an earlier owner when it opened the file the same way (guard.py).
            key = None if self.path is None else (self._create, self.path)
            conn = self._guard.connect(main, self._open, key)
        return conn

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The engine's own connection, held under its lock, for the store's side-table
        modules (the lock keeps other threads off the connection; it is no transaction:
        :meth:`write` is).

        >>> with SQLiteEngine(None).reading() as conn:
        ...     conn.execute("SELECT 1").fetchone()
        (1,)
        """
        with self._guard.lock:
            yield self._live()

    def release_connection(self) -> None:
        """Close the connections (they reopen on next use); see :mod:`xetrack.store.sqlite.guard`."""
        if self.path is None:
            return  # an in-memory database lives only as long as its connection
        self._guard.close(self._main, self._user)

    @property
    def conn(self) -> sqlite3.Connection:
        """A connection for the user's SQL, in autocommit mode, with the file also
        attached as ``db`` so that ``SELECT * FROM db."default"`` works as under DuckDB.

        It is not the connection xetrack writes with: a file attached twice to one
        connection makes ``BEGIN IMMEDIATE`` wait on itself.
        """
        with self._guard.lock:
            main = self._live()
            if self.path is None:
                return main  # in memory there is nothing to attach
            user = self._user
            if user.conn is None or user.pid != os.getpid():
                return self._guard.connect(user, self._open_user)
            return user.conn

    def _open_user(self) -> sqlite3.Connection:
        user = self._open()
        user.execute("ATTACH DATABASE ? AS db", (self._target()[0],))
        return user

    def close(self) -> None:
        # In memory the database goes with its connection; a file's connection is kept
        # idle for the next owner (store/sqlite/guard.py), tracker.conn's is closed.
        self._guard.release(self._main, self._user)

    # -- schema -----------------------------------------------------------------
    @surfaces_faults
    def tables(self) -> list[str]:
        with self._guard.lock:
            rows = self._live().execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid"
            ).fetchall()
        return [name for (name,) in rows if not is_internal_table(name)]

    def _read_columns(self, conn: sqlite3.Connection, table: str) -> dict[str, str]:
        rows = conn.execute("SELECT name, type FROM pragma_table_info(?)", (table,)).fetchall()
        return {name: (decl or "").upper() for name, decl in rows}

    def _table(self, conn: sqlite3.Connection, table: str, refresh: bool = False) -> _Table:
        """The table's columns; with ``refresh``, brought up to date with the file."""
        known = self._tables.get(table)
        if known is None:
            known = self._tables[table] = _Table()
        elif not refresh:
            return known
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        if version != known.version:  # read the version first: a race only rereads again
            known.load(self._read_columns(conn, table), version, read_types(conn, table))
        if not known.columns:
            del self._tables[table]
            raise table_not_found(table, str(self.path), self.tables())
        return known

    @surfaces_faults
    def columns(self, table: str) -> dict[str, str]:
        with self._guard.lock:
            return dict(self._table(self._live(), table, refresh=True).columns)

    def column_types(self, table: str) -> dict[str, str]:
        with self._guard.lock:
            conn = self._live()
            return self._logical(conn, table, self._table(conn, table, refresh=True))

    def _logical(self, conn: sqlite3.Connection, table: str, known: _Table) -> dict[str, str]:
        """The logical types as the file records them now (this process's view refreshed)."""
        logical = logical_types(known.columns, read_types(conn, table))
        known.logical.update(logical)
        return logical

    @surfaces_faults
    def ensure_table(self, table: str, reset: bool = False) -> None:
        with self._guard.lock:
            conn = self._live()
            if not reset:
                try:
                    self._table(conn, table, refresh=True)  # one schema read when it exists
                    if table.lower() != EVENTS_VIEW or not _events_view(conn):
                        return
                except TableNotFoundError:
                    pass
            columns = ", ".join(f"{quote(n)} {t}" for n, t in BASE_COLUMNS.items())
            index = quote(f"ix_{table}_{TRACK_ID}")

            def create() -> None:
                with self._writing(conn, table):
                    if reset:
                        conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
                        forget_table(conn, table)  # its columns' logical types go with it
                    if table.lower() == EVENTS_VIEW and _events_view(conn):  # the name is the user's now
                        conn.execute(f"DROP VIEW {quote(EVENTS_VIEW)}")
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(table)} ({columns})")
                    conn.execute(
                        f"CREATE INDEX IF NOT EXISTS {index} ON {quote(table)} ({quote(TRACK_ID)})"
                    )
                    if table == DEFAULT_TABLE:  # a name that is taken already stays as it is
                        conn.execute(_EVENTS_SQL.replace("CREATE VIEW", "CREATE VIEW IF NOT EXISTS", 1))

            retry_busy(create, self.timeout, self.path)
            self._table(conn, table, refresh=True)

    def _add_columns(
        self, conn: sqlite3.Connection, table: str, wanted: dict[str, str | None], known: _Table | None = None
    ) -> _Table:
        """Inside a write transaction: add the wanted columns that are still missing
        (``known``: the schema, when the caller has just refreshed it under the lock).

        A column wanted for None (type None) is added with no declared type: SQLite then
        stores every value exactly as given, and the first one sets its logical type.
        """
        if known is None:
            known = self._table(conn, table, refresh=True)
        missing = {n: t or "" for n, t in wanted.items() if n.lower() not in known.lower}
        if not missing:
            return known
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_COLUMN)
        if len(known.columns) + len(missing) > limit:
            raise ColumnLimitError(
                f"Table {table!r} has {len(known.columns)} columns; adding "
                f"{len(missing)} more ({', '.join(list(missing)[:5])}"
                f"{', ...' if len(missing) > 5 else ''}) would pass SQLite's limit of "
                f"{limit} columns. Nothing was written. Log fewer distinct keys, "
                "for example a dict as one JSON value, or use another table."
            )
        if any(name.lower() in ROWID_ALIASES for name in missing):
            rowid_alias([*known.columns, *missing])  # refuse to shadow every rowid name
        raced = False
        for name, decl in missing.items():
            try:
                conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {decl}".rstrip())
            except sqlite3.OperationalError as exc:
                if "duplicate column name" not in str(exc):
                    raise
                raced = True  # someone else's column, maybe of another declared type
            known.add(name, decl)
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        if raced:  # we hold the write lock: reading the schema now gives it exactly
            known.load(self._read_columns(conn, table), version, read_types(conn, table))
        else:  # only our ALTERs moved the version
            known.version = version
        return known

    # -- writes -----------------------------------------------------------------
    def insert(
        self, table: str, row: dict[str, Any], assets: AssetWrites | None = None, roles: Roles | None = None
    ) -> None:
        keys = tuple(row)
        values = tuple(row.values())
        # The same keys with values of the same types: an INSERT checked before.
        signature = (keys, tuple(map(type, values)))
        try:  # inline, not @surfaces_faults: no extra call per log()
            with self._guard.lock:
                main = self._main
                conn = main.conn if main.conn is not None and main.pid == os.getpid() else self._live()
                known = self._tables.get(table) or self._table(conn, table)
                sql = None if assets else known.insert_sql.get(signature)
                if sql is not None and (not roles or self._roles_recorded(conn, table, known, roles)):
                    try:
                        conn.execute(sql, values)
                        return
                    except sqlite3.OperationalError as exc:
                        if not _stale_schema(exc):
                            raise
                        self._tables.pop(table, None)  # another connection reset the table
                        known = self._table(conn, table)
                _check_distinct(keys)
                if (not assets and all(k.lower() in known.lower for k in keys) and not known.changes(keys, values)
                        and (not roles or self._roles_recorded(conn, table, known, roles))):
                    sql = _insert_sql(table, keys)
                    conn.execute(sql, values)
                    if len(known.insert_sql) >= _MAX_CHECKED:  # rows of ever-changing shapes
                        known.insert_sql = {}
                    known.insert_sql[signature] = sql
                    return

                # New columns, or a logical type or role to record: the path of every batch.
                retry_busy(lambda: self._grow_and_write(conn, table, keys, [values], values.__getitem__, assets, roles),
                           self.timeout, self.path)
        except sqlite3.Error as exc:
            raise_fault(self, exc)
            raise

    def checked(self, table: str, keys: tuple[str, ...], types: tuple[type, ...]) -> Any:
        """A token for :meth:`insert_checked`: the INSERT this engine checked for rows of
        these keys and value types (None when it has checked none)."""
        known = self._tables.get(table)
        sql = None if known is None else known.insert_sql.get((keys, types))
        return None if sql is None else (known, known.insert_sql, sql)

    def insert_checked(self, table: str, token: Any, values: tuple[Any, ...]) -> bool:
        """Insert a row of the keys and value types ``token`` was made for, with no check
        of its own. False (nothing written) when the token went stale: the caller takes
        the full :meth:`insert` instead."""
        known, checked, sql = token
        try:  # inline, as in insert(): the fast path of log()
            with self._guard.lock:
                main = self._main
                conn = main.conn
                # A forked child finds a file's slots emptied (guard.py); only a private
                # in-memory guard needs the pid compared.
                if conn is None or (self.path is None and main.pid != os.getpid()):
                    conn = self._live()
                if self._tables.get(table) is not known or known.insert_sql is not checked:
                    return False
                try:
                    conn.execute(sql, values)
                except sqlite3.OperationalError as exc:
                    if not _stale_schema(exc):
                        raise
                    self._tables.pop(table, None)  # another connection reset the table
                    return False
                return True
        except sqlite3.Error as exc:
            raise_fault(self, exc)
            raise

    def _roles_recorded(self, conn: sqlite3.Connection, table: str, known: _Table, roles: Roles) -> bool:
        """Whether the file records ``roles`` already, as this process knows it (the
        recorded roles are read once per schema version)."""
        if known.roles is None:
            known.roles = read_roles(conn, table)
        return not pending_roles(known.roles, roles)

    def _record(self, conn: sqlite3.Connection, table: str, known: _Table, proposed: dict[str, str]) -> None:
        """Inside a write transaction: record the logical types the values now written bring."""
        if proposed:
            known.logical.update(record_types(conn, table, proposed, known.columns))

    @contextmanager
    def _writing(self, conn: sqlite3.Connection, table: str) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``. On any error it rolls back and forgets the
        cached schema of ``table``, since columns added inside are gone again."""
        try:
            with immediate(conn):
                yield
        except BaseException:
            self._tables.pop(table, None)
            raise

    @surfaces_faults
    def insert_many(
        self,
        table: str,
        keys: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        first_value: Callable[[int], Any],
        assets: AssetWrites | None = None,
        kinds: Sequence[set[type]] | None = None,  # SQLite stores any value: not needed
        roles: Roles | None = None,
    ) -> None:
        _check_distinct(keys)
        with self._guard.lock:
            conn = self._live()
            self._tables.get(table) or self._table(conn, table)  # a missing table: a clear error now
            retry_busy(lambda: self._grow_and_write(conn, table, keys, rows, first_value, assets, roles),
                       self.timeout, self.path)

    def _grow_and_write(self, conn: sqlite3.Connection, table: str, keys: tuple[str, ...],
                        rows: list[tuple[Any, ...]], first_value: Callable[[int], Any],
                        assets: AssetWrites | None, roles: Roles | None = None) -> None:
        """The one schema-growth path (a log() with a new key, every log_batch): under the
        write lock, add the missing columns (another process may have added them: the
        schema is reread), record the logical types these values set and the roles not
        recorded yet, store the assets and insert ``rows``, all in one transaction."""
        with self._writing(conn, table):
            # The schema as the file has it now (reread only when its version moved).
            grown = self._table(conn, table, refresh=True)
            missing = {k: sql_type(first_value(i)) for i, k in enumerate(keys) if k.lower() not in grown.lower}
            if missing:
                grown = self._add_columns(conn, table, missing, grown)
            self._record(conn, table, grown, _batch_changes(grown, keys, rows, first_value))
            if assets:
                _write_assets(conn, assets)
            conn.executemany(_insert_sql(table, keys), rows)
            if roles:
                recorded = write_roles(conn, table, roles)
                if grown.roles is not None:
                    grown.roles.update(recorded)

    @surfaces_faults
    def update(self, table: str, values: dict[str, Any], where: Where | None) -> int:
        with self._guard.lock:
            conn = self._live()
            self._checked(conn, table, where)

            def write() -> int:
                with self._writing(conn, table):
                    grown = self._add_columns(conn, table, {k: sql_type(v) for k, v in values.items()})
                    if not values:
                        return 0
                    sets = ", ".join(f"{quote(k)} = ?" for k in values)
                    clause, params = where_clause(where)
                    cur = conn.execute(
                        f"UPDATE {quote(table)} SET {sets}{clause}", [*values.values(), *params]
                    )
                    if cur.rowcount:  # a value stored: it may set or widen a logical type
                        self._record(conn, table, grown, grown.changes(tuple(values), tuple(values.values())))
                    return cur.rowcount

            return retry_busy(write, self.timeout, self.path)

    @surfaces_faults
    def delete(self, table: str, where: Where | None) -> int:
        with self._guard.lock:
            conn = self._live()
            self._checked(conn, table, where)
            clause, params = where_clause(where)

            def write() -> int:
                with self._writing(conn, table):
                    return conn.execute(f"DELETE FROM {quote(table)}{clause}", params).rowcount

            return retry_busy(write, self.timeout, self.path)

    def _checked(self, conn: sqlite3.Connection, table: str, where: Where | None) -> _Table:
        """The table's fresh schema; a missing table or filter column is a clear error."""
        known = self._table(conn, table, refresh=True)
        for key in where or ():
            if key.lower() not in known.lower:
                raise column_not_found(key, table, list(known.columns))
        return known

    # -- side tables (runs, artifacts, models): plain SQL in one transaction ---------
    @surfaces_faults
    def write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """``body(conn)`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error,
        run again when the file stays busy. ``body`` must be safe to run twice."""
        with self._guard.lock:
            conn = self._live()
            return transact(conn, lambda: body(conn), self.timeout, self.path)

    @surfaces_faults
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one read; a table that does not exist yet reads as no rows."""
        with self._guard.lock:
            return rows_if_table(self._live(), sql, params)

    # -- assets -----------------------------------------------------------------
    _asset_query = query

    def asset_get(self, key: str) -> bytes | None:
        rows = self._asset_query(f"SELECT value FROM {quote(ASSETS_TABLE)} WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def has_asset(self, key: str) -> bool:
        return bool(self._asset_query(f"SELECT 1 FROM {quote(ASSETS_TABLE)} WHERE key = ?", (key,)))

    def asset_keys(self) -> list[str]:
        return [k for (k,) in self._asset_query(f"SELECT key FROM {quote(ASSETS_TABLE)} ORDER BY rowid")]

    def asset_count(self) -> int:
        rows = self._asset_query(f"SELECT count(*) FROM {quote(ASSETS_TABLE)}")
        return rows[0][0] if rows else 0

    def asset_refs(self, key: str) -> int:
        rows = self._asset_query(f"SELECT count FROM {quote(ASSET_COUNTS)} WHERE hash = ?", (key,))
        return rows[0][0] if rows else 0

    @surfaces_faults
    def asset_delete(self, key: str, table: str | None = None, column: str | None = None) -> int:
        with self._guard.lock:
            conn = self._live()
            if table is not None and column is not None:
                self._checked(conn, table, {column: None})

            def write() -> int:
                with self._writing(conn, table or ASSETS_TABLE):
                    _create_asset_tables(conn)
                    conn.execute(f"DELETE FROM {quote(ASSETS_TABLE)} WHERE key = ?", (key,))
                    conn.execute(f"DELETE FROM {quote(ASSET_COUNTS)} WHERE hash = ?", (key,))
                    if table is None or column is None:
                        return 0
                    cur = conn.execute(
                        f"UPDATE {quote(table)} SET {quote(column)} = NULL WHERE {quote(column)} = ?",
                        (key,),
                    )
                    return cur.rowcount

            return retry_busy(write, self.timeout, self.path)

    # -- reads ------------------------------------------------------------------
    @surfaces_faults
    def count(self, table: str, where: Where | None = None) -> int:
        with self._guard.lock:
            conn = self._live()
            self._checked(conn, table, where)
            clause, params = where_clause(where)
            return conn.execute(f"SELECT count(*) FROM {quote(table)}{clause}", params).fetchone()[0]

    def select_sql(
        self,
        table: str,
        columns: dict[str, str],
        where: Where | None,
        head: int | None,
        tail: int | None,
        selected: Sequence[str] | None = None,
        source: str | None = None,
    ) -> tuple[str, list[Any]]:
        """SELECT for ``read``; ``source`` lets DuckDB name the table ``db."t"``."""
        src = source or quote(table)
        cols = ", ".join(quote(c) for c in selected) if selected else "*"
        clause, params = where_clause(where)
        rowid = rowid_alias(columns)
        if tail is not None:
            inner = f"SELECT {rowid} FROM {src}{clause} ORDER BY {rowid} DESC LIMIT {int(tail)}"
            return f"SELECT {cols} FROM {src} WHERE {rowid} IN ({inner}) ORDER BY {rowid}", params
        sql = f"SELECT {cols} FROM {src}{clause} ORDER BY {rowid}"
        if head is not None:
            sql += f" LIMIT {int(head)}"
        return sql, params

    @surfaces_faults
    def read(
        self,
        table: str,
        where: Where | None = None,
        head: int | None = None,
        tail: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> Any:
        with self._guard.lock:
            conn = self._live()
            checked = self._checked(conn, table, where)
            sql, params = self.select_sql(table, checked.columns, where, head, tail, columns)
            # One statement: one consistent snapshot even while others write.
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            # Read after the rows: a logical type is recorded with the values that set it
            # and only ever widens, so these types cover every row read above.
            types = self._logical(conn, table, checked)
        return frame_from_rows(names, [types.get(n, "") for n in names], rows)

    @surfaces_faults
    def _row_at(
        self, table: str, where: Where | None, order: str, offset: int, drop_null: bool
    ) -> dict[str, Any] | None:
        with self._guard.lock:
            conn = self._live()
            checked = self._checked(conn, table, where)
            clause, params = where_clause(where)
            rowid = rowid_alias(checked.columns)
            cursor = conn.execute(
                f"SELECT * FROM {quote(table)}{clause} ORDER BY {rowid} {order} LIMIT 1 OFFSET ?",
                [*params, offset],
            )
            values = cursor.fetchone()
            names = [d[0] for d in cursor.description]
            if values is None:
                return None
            types = self._logical(conn, table, checked)  # after the row, as in read()
        return row_dict(names, [types.get(n, "") for n in names], values, drop_null)

    def last_row(
        self, table: str, where: Where | None = None, offset: int = 0, drop_null: bool = True
    ) -> dict[str, Any] | None:
        return self._row_at(table, where, "DESC", offset, drop_null)

    def nth_row(self, table: str, where: Where | None, n: int, drop_null: bool = True) -> dict[str, Any] | None:
        return self._row_at(table, where, "ASC", n, drop_null)


def _events_view(conn: sqlite3.Connection) -> bool:
    """Whether the file holds xetrack's ``events`` view (see EVENTS_VIEW), as created."""
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ? COLLATE NOCASE AND sql = ?"
    return conn.execute(sql, (EVENTS_VIEW, _EVENTS_SQL)).fetchone() is not None


def _create_asset_tables(conn: sqlite3.Connection) -> None:
    # The assets table is sqlitedict's own layout, so SqliteDict(db, tablename="assets")
    # opens it and pickle.loads gives the objects back.
    conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(ASSETS_TABLE)} (key TEXT PRIMARY KEY, value BLOB)")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {quote(ASSET_COUNTS)} "
        "(hash TEXT PRIMARY KEY, count INTEGER NOT NULL)"
    )


def _write_assets(conn: sqlite3.Connection, assets: AssetWrites) -> None:
    """Inside the rows' transaction: store new blobs once, count the rows pointing at each."""
    _create_asset_tables(conn)
    for key, data in assets.blobs.items():
        check_pickle_size(conn, key, data)
        conn.execute(
            f"INSERT OR IGNORE INTO {quote(ASSETS_TABLE)} (key, value) VALUES (?, ?)",
            (key, sqlite3.Binary(data)),
        )
    for key, n in assets.refs.items():
        conn.execute(
            f"INSERT INTO {quote(ASSET_COUNTS)} (hash, count) "
            f"SELECT ?, ? WHERE EXISTS (SELECT 1 FROM {quote(ASSETS_TABLE)} WHERE key = ?) "
            "ON CONFLICT (hash) DO UPDATE SET count = count + excluded.count",
            (key, n, key),
        )


def _batch_changes(
    known: _Table, keys: Sequence[str], rows: list[tuple[Any, ...]], first_value: Callable[[int], Any]
) -> dict[str, str]:
    """Column -> kind, for the logical types a batch sets or widens.

    Only untyped and INTEGER columns can change; an INTEGER one is scanned in C for a
    float (a NaN is no value), the other columns are not looked at.
    """
    out: dict[str, str] = {}
    for i, key in enumerate(keys):
        name = known.lower.get(key.lower(), key)
        current = known.logical.get(name, "")
        if not current:
            kind = kind_of(first_value(i))
            if kind is None:
                continue  # empty in every row
            if kind != "INTEGER":
                out[name] = kind
                continue
            out[name] = "INTEGER"
        elif current != "INTEGER":
            continue
        pick = itemgetter(i)
        if float in set(map(type, map(pick, rows))):
            if any(type(v) is float and v == v for v in map(pick, rows)):
                out[name] = "REAL"
    return out


def _check_distinct(keys: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for key in keys:
        other = seen.setdefault(key.lower(), key)
        if other != key:
            raise ValueError(
                f"Keys {other!r} and {key!r} name the same column: SQLite column names "
                "ignore case"
            )


def _insert_sql(table: str, keys: Sequence[str]) -> str:
    names = ", ".join(quote(k) for k in keys)
    marks = ", ".join("?" * len(keys))
    return f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})"


def sqlite_of(engine: Engine) -> SQLiteEngine | None:
    """``engine`` when it keeps a SQLite file (the sqlite and duckdb engines); None for
    ``Tracker.SKIP_INSERT``, whose side tables keep nothing."""
    return engine if isinstance(engine, SQLiteEngine) else None
