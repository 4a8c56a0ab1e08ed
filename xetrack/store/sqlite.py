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
from typing import Any, Callable, Iterator, Sequence, TypeVar

from ..errors import ColumnLimitError, DatabaseError, TableNotFoundError
from ..frames import frame_from_rows, row_dict
from ..schema import ASSET_COUNTS, ASSETS_TABLE, BASE_COLUMNS, TRACK_ID, is_internal_table, quote, sql_type
from .base import ROWID_ALIASES, AssetWrites, Engine, Where, column_not_found, rowid_alias, table_not_found, where_clause
from .blobs import check_pickle_size
from .busy import is_busy, retry_busy
from .guard import guard_for

DEFAULT_TIMEOUT = 60.0
#: After a checkpoint the WAL file is cut back to this size: one big artifact must not
#: leave a WAL file of its size behind.
JOURNAL_SIZE_LIMIT = 64 * 2**20
T = TypeVar("T")
_inherited: list[sqlite3.Connection] = []  # connections copied into a forked child; never used


class _Table:
    """What this process knows of one table: its columns and the INSERTs it has checked.

    ``version`` is the file's ``PRAGMA schema_version`` the columns were read at: when
    it has not moved, the cached columns are still exact and need no rereading.
    """

    __slots__ = ("columns", "lower", "insert_sql", "version")

    def __init__(self) -> None:
        self.columns: dict[str, str] = {}  # name -> declared type, table order
        self.lower: dict[str, str] = {}
        self.insert_sql: dict[tuple[str, ...], str] = {}
        self.version = -1

    def load(self, columns: dict[str, str], version: int) -> None:
        if not set(columns) >= set(self.columns):
            self.insert_sql.clear()  # columns went away (a reset): checked INSERTs are stale
        self.columns = columns
        self.lower = {name.lower(): name for name in columns}
        self.version = version

    def add(self, name: str, decl: str) -> None:
        self.columns[name] = decl
        self.lower[name.lower()] = name


def _stale_schema(exc: BaseException) -> bool:
    text = str(exc)
    return "no such table" in text or "has no column named" in text


class SQLiteEngine(Engine):
    """Rows in a SQLite file (or in memory when ``path`` is None)."""

    def __init__(self, path: str | None, *, create: bool = True, timeout: float = DEFAULT_TIMEOUT):
        self.path = path
        self.timeout = timeout
        self._create = create
        self._guard = guard_for(path)
        self._guard.register(self)
        self._conn: sqlite3.Connection | None = None  # xetrack's reads and writes
        self._user: sqlite3.Connection | None = None  # tracker.conn
        self._pid = 0
        self._tables: dict[str, _Table] = {}
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
                retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone(), self.timeout)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # is it a database?
        except sqlite3.DatabaseError as exc:
            conn.close()
            if is_busy(exc):
                raise
            raise DatabaseError(
                f"{self.path!r} is not a SQLite database or is damaged ({exc})"
            ) from None
        return conn

    def _target(self) -> tuple[str, bool]:
        if self.path is None:
            return ":memory:", False
        if self._create:
            return self.path, False
        return "file:" + _uri_path(self.path) + "?mode=rw", True  # never create a file

    def _live(self) -> sqlite3.Connection:
        """The engine's own connection, reopened after a release or in a forked child."""
        conn = self._conn
        if conn is None or self._pid != os.getpid():
            if conn is not None:
                _inherited.append(conn)  # a parent's: closing it could disturb the parent
                if self._user is not None:
                    _inherited.append(self._user)
                self._user = None
            conn = self._conn = self._open()
            self._pid = os.getpid()
        return conn

    def release_connection(self) -> None:
        """Close the connections (they reopen on next use); see :mod:`xetrack.store.guard`."""
        if self.path is None:
            return  # an in-memory database lives only as long as its connection
        with self._guard.lock:
            if self._pid == os.getpid():
                for conn in (self._conn, self._user):
                    if conn is not None:
                        conn.close()
            self._conn = self._user = None

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
            if self._user is None:
                user = self._open()
                user.execute("ATTACH DATABASE ? AS db", (self._target()[0],))
                self._user = user
            return self._user

    def close(self) -> None:
        self.release_connection()
        if self.path is None and self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- schema -----------------------------------------------------------------
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
            known.load(self._read_columns(conn, table), version)
        if not known.columns:
            del self._tables[table]
            raise table_not_found(table, str(self.path), self.tables())
        return known

    def columns(self, table: str) -> dict[str, str]:
        with self._guard.lock:
            return dict(self._table(self._live(), table, refresh=True).columns)

    def ensure_table(self, table: str, reset: bool = False) -> None:
        with self._guard.lock:
            conn = self._live()
            if not reset:
                try:
                    self._table(conn, table, refresh=True)  # one schema read when it exists
                    return
                except TableNotFoundError:
                    pass
            columns = ", ".join(f"{quote(n)} {t}" for n, t in BASE_COLUMNS.items())
            index = quote(f"ix_{table}_{TRACK_ID}")

            def create() -> None:
                with self._writing(conn, table):
                    if reset:
                        conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(table)} ({columns})")
                    conn.execute(
                        f"CREATE INDEX IF NOT EXISTS {index} ON {quote(table)} ({quote(TRACK_ID)})"
                    )

            retry_busy(create, self.timeout)
            self._table(conn, table, refresh=True)

    def _add_columns(
        self, conn: sqlite3.Connection, table: str, wanted: dict[str, str | None]
    ) -> _Table:
        """Inside a write transaction: add the wanted columns that are still missing."""
        known = self._table(conn, table, refresh=True)
        missing = {n: t for n, t in wanted.items() if t and n.lower() not in known.lower}
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
        for name, decl in missing.items():
            try:
                conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {decl}")
            except sqlite3.OperationalError as exc:
                if "duplicate column name" not in str(exc):
                    raise
                known.version = -1  # someone else's schema: reread next time
            known.add(name, decl)
        if known.version != -1:  # we hold the write lock: only our ALTERs moved the version
            known.version = conn.execute("PRAGMA schema_version").fetchone()[0]
        return known

    # -- writes -----------------------------------------------------------------
    def insert(self, table: str, row: dict[str, Any], assets: AssetWrites | None = None) -> None:
        keys = tuple(row)
        with self._guard.lock:
            conn = self._conn if self._conn is not None and self._pid == os.getpid() else self._live()
            known = self._tables.get(table) or self._table(conn, table)
            sql = None if assets else known.insert_sql.get(keys)
            if sql is not None:
                try:
                    conn.execute(sql, tuple(row.values()))
                    return
                except sqlite3.OperationalError as exc:
                    if not _stale_schema(exc):
                        raise
                    self._tables.pop(table, None)  # another connection reset the table
                    known = self._table(conn, table)
            _check_distinct(keys)
            if not assets and all(k.lower() in known.lower for k in keys):
                sql = known.insert_sql[keys] = _insert_sql(table, keys)
                conn.execute(sql, tuple(row.values()))
                return

            def grow_and_insert() -> None:
                wanted = {k: sql_type(v) for k, v in row.items()}
                with self._writing(conn, table):
                    grown = self._add_columns(conn, table, wanted)
                    if assets:
                        _write_assets(conn, assets)
                    present = [k for k in keys if k.lower() in grown.lower]  # drops new all-None keys
                    conn.execute(_insert_sql(table, present), [row[k] for k in present])

            retry_busy(grow_and_insert, self.timeout)

    @contextmanager
    def _writing(self, conn: sqlite3.Connection, table: str) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``. On any error it rolls back and forgets the
        cached schema of ``table``, since columns added inside are gone again."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._tables.pop(table, None)
            raise

    def insert_many(
        self,
        table: str,
        keys: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        first_value: Callable[[int], Any],
        assets: AssetWrites | None = None,
    ) -> None:
        _check_distinct(keys)
        with self._guard.lock:
            conn = self._live()
            known = self._tables.get(table) or self._table(conn, table)

            def write() -> None:
                nonlocal keys, rows
                with self._writing(conn, table):
                    grown = known
                    if not all(k.lower() in known.lower for k in keys):
                        wanted = {
                            k: sql_type(first_value(i))
                            for i, k in enumerate(keys)
                            if k.lower() not in known.lower
                        }
                        grown = self._add_columns(conn, table, wanted)
                    keep = [i for i, k in enumerate(keys) if k.lower() in grown.lower]
                    if len(keep) != len(keys):  # new keys that were None in every row
                        keys = tuple(keys[i] for i in keep)
                        rows = [tuple(r[i] for i in keep) for r in rows]
                    if assets:
                        _write_assets(conn, assets)
                    conn.executemany(_insert_sql(table, keys), rows)

            retry_busy(write, self.timeout)

    def update(self, table: str, values: dict[str, Any], where: Where | None) -> int:
        with self._guard.lock:
            conn = self._live()
            self._checked(conn, table, where)

            def write() -> int:
                with self._writing(conn, table):
                    grown = self._add_columns(conn, table, {k: sql_type(v) for k, v in values.items()})
                    present = {k: v for k, v in values.items() if k.lower() in grown.lower}
                    if not present:
                        return 0
                    sets = ", ".join(f"{quote(k)} = ?" for k in present)
                    clause, params = where_clause(where)
                    cur = conn.execute(
                        f"UPDATE {quote(table)} SET {sets}{clause}", [*present.values(), *params]
                    )
                    return cur.rowcount

            return retry_busy(write, self.timeout)

    def delete(self, table: str, where: Where | None) -> int:
        with self._guard.lock:
            conn = self._live()
            self._checked(conn, table, where)
            clause, params = where_clause(where)

            def write() -> int:
                with self._writing(conn, table):
                    return conn.execute(f"DELETE FROM {quote(table)}{clause}", params).rowcount

            return retry_busy(write, self.timeout)

    def _checked(self, conn: sqlite3.Connection, table: str, where: Where | None) -> _Table:
        """The table's fresh schema; a missing table or filter column is a clear error."""
        known = self._table(conn, table, refresh=True)
        for key in where or ():
            if key.lower() not in known.lower:
                raise column_not_found(key, table, list(known.columns))
        return known

    # -- side tables (runs, artifacts, models): plain SQL in one transaction ---------
    def write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """``body(conn)`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error,
        run again when the file stays busy. ``body`` must be safe to run twice."""
        with self._guard.lock:
            conn = self._live()

            def attempt() -> T:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = body(conn)
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

            return retry_busy(attempt, self.timeout)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one read; a table that does not exist yet reads as no rows."""
        with self._guard.lock:
            try:
                return self._live().execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []  # nothing of that kind was ever stored in this file
                raise

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

            return retry_busy(write, self.timeout)

    # -- reads ------------------------------------------------------------------
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
            known = self._checked(conn, table, where).columns
            sql, params = self.select_sql(table, known, where, head, tail, columns)
            # One statement: one consistent snapshot even while others write.
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return frame_from_rows(names, [known.get(n, "") for n in names], rows)

    def _row_at(self, table: str, where: Where | None, order: str, offset: int) -> dict[str, Any] | None:
        with self._guard.lock:
            conn = self._live()
            known = self._checked(conn, table, where).columns
            clause, params = where_clause(where)
            rowid = rowid_alias(known)
            cursor = conn.execute(
                f"SELECT * FROM {quote(table)}{clause} ORDER BY {rowid} {order} LIMIT 1 OFFSET ?",
                [*params, offset],
            )
            values = cursor.fetchone()
            names = [d[0] for d in cursor.description]
        if values is None:
            return None
        return row_dict(names, [known.get(n, "") for n in names], values)

    def last_row(self, table: str, where: Where | None = None, offset: int = 0) -> dict[str, Any] | None:
        return self._row_at(table, where, "DESC", offset)

    def nth_row(self, table: str, where: Where | None, n: int) -> dict[str, Any] | None:
        return self._row_at(table, where, "ASC", n)


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


def _uri_path(path: str) -> str:
    from urllib.parse import quote as url_quote

    return url_quote(os.path.abspath(path))
