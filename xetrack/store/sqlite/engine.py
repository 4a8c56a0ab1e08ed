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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

import pandas as pd

from ...errors import DatabaseError, TableNotFoundError
from ...frames import frame_from_rows, row_dict
from ...schema import BASE_COLUMNS, TRACK_ID, is_internal_table, quote
from ..base import Engine, Where, column_not_found, rowid_alias, rows_if_table, table_not_found, where_clause
from ..logical_types import logical_types
from . import spill
from .assets import SQLiteAssets
from .busy import retry_busy, transact
from .column_types import forget_table, read_types
from .faults import fault, read_target, surfaces_faults
from .guard import Slot, close_when_collected, guard_for
from .known_tables import KnownTable
from .runs import SQLiteRunReads
from .user_sql import SQLiteUserSQL
from .writes import SQLiteWrites

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
MAX_CHECKED = 4096


class SQLiteEngine(SQLiteWrites, SQLiteAssets, SQLiteUserSQL, SQLiteRunReads, Engine):
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
        self._tables: dict[str, KnownTable] = self._guard.tables if path is not None else {}
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
            raise DatabaseError(f"{self.path!r} is not a SQLite database or is damaged ({exc})") from None
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
            rows = self._live().execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid").fetchall()
        return [name for (name,) in rows if not is_internal_table(name)]

    def _read_columns(self, conn: sqlite3.Connection, table: str) -> dict[str, str]:
        rows = conn.execute("SELECT name, type FROM pragma_table_info(?)", (table,)).fetchall()
        return {name: (decl or "").upper() for name, decl in rows}

    def _table(self, conn: sqlite3.Connection, table: str, refresh: bool = False) -> KnownTable:
        """The table's columns; with ``refresh``, brought up to date with the file."""
        known = self._tables.get(table)
        if known is None:
            known = self._tables[table] = KnownTable()
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
        """The table's columns (the spill's link left out), then its spilled keys (declared
        with no type)."""
        with self._guard.lock:
            conn = self._live()
            known = self._table(conn, table, refresh=True)
            out = {n: d for n, d in known.columns.items() if n != spill.LINK}
            out.update((k, "") for k in spill.spilled_keys(conn, table) if k not in out)
            return out

    def column_types(self, table: str) -> dict[str, str]:
        with self._guard.lock:
            conn = self._live()
            logical = self._logical(conn, table, self._table(conn, table, refresh=True))
            logical.pop(spill.LINK, None)
            keys = spill.spilled_keys(conn, table)
            if keys:
                recorded = read_types(conn, table)
                logical.update((k, recorded.get(k.lower(), "")) for k in keys if k not in logical)
            return logical

    def spilled(self, table: str) -> list[str]:
        """The table's keys past its columns (:mod:`.spill`), in the order they came."""
        with self._guard.lock:
            return spill.spilled_keys(self._live(), table)

    def _logical(self, conn: sqlite3.Connection, table: str, known: KnownTable) -> dict[str, str]:
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
                    conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {quote(table)} ({quote(TRACK_ID)})")
                    if table == DEFAULT_TABLE:  # a name that is taken already stays as it is
                        conn.execute(_EVENTS_SQL.replace("CREATE VIEW", "CREATE VIEW IF NOT EXISTS", 1))

            retry_busy(create, self.timeout, self.path)
            self._table(conn, table, refresh=True)

    def _checked(self, conn: sqlite3.Connection, table: str, where: Where | None) -> KnownTable:
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

    _asset_query = query  # the asset store reads through sqlite3 on every engine of a file

    # -- reads ------------------------------------------------------------------
    @surfaces_faults
    def count(self, table: str, where: Where | None = None) -> int:
        with self._guard.lock:
            conn = self._live()
            self._checked(conn, table, where)
            clause, params = where_clause(where)
            count: int = conn.execute(f"SELECT count(*) FROM {quote(table)}{clause}", params).fetchone()[0]
            return count

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
            if spill.LINK in checked.columns:  # keys past the columns: read with their spill rows
                return self._read_spilled(conn, table, checked, where, head, tail, columns)
            sql, params = self.select_sql(table, checked.columns, where, head, tail, columns)
            # One statement: one consistent snapshot even while others write.
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            # Read after the rows: a logical type is recorded with the values that set it
            # and only ever widens, so these types cover every row read above.
            types = self._logical(conn, table, checked)
        return frame_from_rows(names, [types.get(n, "") for n in names], rows)

    def _read_spilled(
        self,
        conn: sqlite3.Connection,
        table: str,
        checked: KnownTable,
        where: Where | None,
        head: int | None,
        tail: int | None,
        columns: Sequence[str] | None,
    ) -> Any:
        """``read`` of a table with spilled keys: its rows and their spill rows in one read
        transaction (one snapshot), the spilled keys as columns after the table's own."""
        keys = spill.spilled_keys(conn, table)
        own = [c for c in checked.columns if c != spill.LINK]
        lower = {k.lower(): k for k in keys}
        wanted_keys = keys if not columns else [lower[c.lower()] for c in columns if c.lower() in lower]
        wanted_own = own if not columns else [c for c in columns if c.lower() not in lower]
        sql, params = self.select_sql(table, checked.columns, where, head, tail, [*wanted_own, spill.LINK])
        with spill.snapshot(conn):
            rows = conn.execute(sql, params).fetchall()
            links = [r[-1] for r in rows]
            found = (
                spill.values_of(conn, table, f"SELECT {quote(spill.LINK)} FROM ({sql})", params)
                if wanted_keys and any(link is not None for link in links)
                else []
            )
            types = self._logical(conn, table, checked)
            recorded = read_types(conn, table)
        frame = frame_from_rows(wanted_own, [types.get(n, "") for n in wanted_own], [r[:-1] for r in rows])
        extra = spill.columns(links, wanted_keys, found)
        if extra:
            more = frame_from_rows(
                list(extra), [recorded.get(k.lower(), "") for k in extra], list(zip(*extra.values()))
            )
            frame = pd.concat([frame, more], axis=1) if len(wanted_own) else more
        if columns:  # in the order asked
            frame = frame[[lower.get(c.lower(), c) for c in columns]]
        return frame

    @surfaces_faults
    def _row_at(
        self, table: str, where: Where | None, order: str, offset: int, drop_null: bool
    ) -> dict[str, Any] | None:
        with self._guard.lock:
            conn = self._live()
            checked = self._checked(conn, table, where)
            clause, params = where_clause(where)
            rowid = rowid_alias(checked.columns)
            linked = spill.LINK in checked.columns
            extra: dict[str, Any] = {}
            with spill.snapshot(conn) if linked else nullcontext():  # the row and its spill rows: one snapshot
                cursor = conn.execute(
                    f"SELECT * FROM {quote(table)}{clause} ORDER BY {rowid} {order} LIMIT 1 OFFSET ?",
                    [*params, offset],
                )
                values = cursor.fetchone()
                names = [d[0] for d in cursor.description]
                if values is None:
                    return None
                types = self._logical(conn, table, checked)  # after the row, as in read()
                if linked:
                    link = values[names.index(spill.LINK)]
                    keys = spill.spilled_keys(conn, table)
                    found = spill.values_of(conn, table, "SELECT ?", [link]) if link is not None else []
                    recorded = read_types(conn, table)
                    extra = {k: v[0] for k, v in spill.columns([link], keys, found).items()}
                    keep = [i for i, n in enumerate(names) if n != spill.LINK]
                    names, values = [names[i] for i in keep], tuple(values[i] for i in keep)
        out = row_dict(names, [types.get(n, "") for n in names], values, drop_null)
        if extra:
            more = row_dict(list(extra), [recorded.get(k.lower(), "") for k in extra], tuple(extra.values()), drop_null)
            out.update(more)
        return out

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


def sqlite_of(engine: Engine) -> SQLiteEngine | None:
    """``engine`` when it keeps a SQLite file (the sqlite and duckdb engines); None for
    ``Tracker.SKIP_INSERT``, whose side tables keep nothing."""
    return engine if isinstance(engine, SQLiteEngine) else None
