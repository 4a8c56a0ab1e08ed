"""DuckDB over the same SQLite file, through DuckDB's sqlite scanner.

Reads and the user's SQL (``tracker.conn``) run in DuckDB; writes go through
:class:`SQLiteEngine`. DuckDB's scanner has no busy timeout (a concurrent writer gets
"database is locked" at once) and refuses a value that does not match the column's
declared type.

The file is attached as ``db`` only inside :meth:`FileGuard.duckdb
<xetrack.store.sqlite.guard.FileGuard.duckdb>`, for one statement at a time, and detached
before the guard lets go: the DuckDB connection behind ``tracker.conn`` has no file
attached between calls, so nothing taken from it can reach the file while Python's
SQLite holds it. Queries attach it read-only, which also keeps DuckDB's SQLite from
checkpointing or deleting a WAL that a connection out of the guard's sight still uses.

The scanner is loaded from the ``duckdb-extension-sqlite-scanner`` wheel, so no
network is needed; ``INSTALL sqlite`` is only the fallback. Loading it costs some 60 ms
per DuckDB database, so xetrack's own reads (``to_df`` and the like) share one DuckDB
database per process, loaded once: each engine attaches its file there under an alias
of its own (two engines on two files may read at once), inside the same guard, and
detaches only that alias. The DuckDB behind ``tracker.conn``, where the user's SQL
sees the file as ``db``, stays the engine's own and is made on first use.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb

from ...errors import DatabaseError
from ...frames import normalize_duckdb_frame
from ...schema import quote
from ..base import Where, rowid_alias, where_clause
from ..sqlite import spill
from ..sqlite.engine import DEFAULT_TIMEOUT, SQLiteEngine
from .extension import bundled_extension
from .user_sql import DuckDBUserSQL

ALIAS = "db"


# The wheel's extension path lives in .extension (public: xetrack.duckdb_extension_path).
_bundled_extension = bundled_extension


def load_sqlite_scanner(conn: duckdb.DuckDBPyConnection) -> None:
    """Load DuckDB's sqlite extension from the pip package, else from DuckDB's own store."""
    errors = []
    path = _bundled_extension()
    if path is not None:
        try:
            conn.load_extension(path)
            return
        except duckdb.Error as exc:
            errors.append(f"{path}: {exc}")
    for statements in (["LOAD sqlite"], ["INSTALL sqlite", "LOAD sqlite"]):
        try:
            for statement in statements:
                conn.execute(statement)
            return
        except duckdb.Error as exc:
            errors.append(f"{'; '.join(statements)}: {exc}")
    raise RuntimeError(
        "DuckDB could not load its sqlite extension. Install the wheel that ships it: "
        f"pip install duckdb-extension-sqlite-scanner=={duckdb.__version__}\n" + "\n".join(errors)
    )


_shared: tuple[int, duckdb.DuckDBPyConnection] | None = None  # (pid, database)
_shared_lock = threading.Lock()
_aliases = itertools.count(1)


def _with_scanner() -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB database with the sqlite scanner loaded (about 60 ms)."""
    duck = duckdb.connect()
    load_sqlite_scanner(duck)
    return duck


def _shared_cursor() -> duckdb.DuckDBPyConnection:
    """A new cursor of this process's DuckDB database for xetrack's own reads, the
    scanner loaded once per process (a cursor shares its database's extensions)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            # In a forked child the parent's DuckDB (and its threads) is left alone.
            _shared = (os.getpid(), _with_scanner())
        return _shared[1].cursor()


def _before_fork() -> None:
    # A child cannot load the scanner into a DuckDB of its own while the parent's loaded
    # one is open (it hangs): close it; the parent loads it again on its next read.
    global _shared
    with _shared_lock:
        if _shared is not None and _shared[0] == os.getpid():
            _shared[1].close()
        _shared = None


def _after_fork_in_child() -> None:
    global _shared_lock
    _shared_lock = threading.Lock()


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def attach_sql(path: str, alias: str = ALIAS, read_only: bool = False) -> str:
    literal = "'" + os.path.abspath(path).replace("'", "''") + "'"
    options = "TYPE sqlite, READ_ONLY" if read_only else "TYPE sqlite"
    return f"ATTACH {literal} AS {quote(alias)} ({options})"


#: Result methods of a DuckDB connection: on the wrapper they read its last result.
_RESULT_METHODS = (
    "fetchone",
    "fetchmany",
    "fetchall",
    "fetchnumpy",
    "fetchdf",
    "fetch_df",
    "df",
    "pl",
    "arrow",
    "fetch_arrow_table",
    "to_arrow_table",
    "fetch_record_batch",
    "torch",
    "tf",
)


class DuckDBConnection:
    """``tracker.conn`` for engine='duckdb': DuckDB, with the file attached as ``db``
    for the length of each statement.

    ``execute``/``sql``/``query`` run under the file guard: the file is attached, the
    statement runs, its result is fetched whole, and the file is detached again. What
    they return is a relation over that fetched result. Everything else is DuckDB's own
    connection, which never has the file attached outside those calls, so nothing
    taken from it (a cursor, a relation, a view) can reach the file behind the guard's
    back. ``cursor()`` returns another guarded wrapper.

    >>> tracker.conn.execute('SELECT * FROM db."default"').fetchall()  # doctest: +SKIP
    """

    def __init__(self, engine: DuckDBEngine) -> None:
        self._engine = engine
        self._last: duckdb.DuckDBPyRelation | None = None

    def execute(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyRelation:
        self._last = self._engine.run(query, parameters)
        return self._last

    def sql(self, query: str, params: Any = None) -> duckdb.DuckDBPyRelation:
        return self.execute(query, params)

    query = sql

    def executemany(self, query: str, parameters: Any = ()) -> DuckDBConnection:
        for values in parameters:
            self.execute(query, values)
        return self

    def cursor(self) -> DuckDBConnection:
        """Another guarded connection to the same file (DuckDB's cursors are connections)."""
        return DuckDBConnection(self._engine)

    @property
    def description(self) -> Any:
        return None if self._last is None else self._last.description

    def close(self) -> None:
        self._engine.close_duck()

    def __enter__(self) -> DuckDBConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name in _RESULT_METHODS:
            if self._last is None:
                raise duckdb.InvalidInputException("No open result set: call execute() first")
            return getattr(self._last, name)
        # DuckDB's own connection: the file is not attached to it outside the guard.
        return getattr(self._engine.duck, name)

    def __repr__(self) -> str:
        return f"<DuckDBConnection {self._engine.path!r}, attached as {ALIAS} per statement>"


class DuckDBEngine(DuckDBUserSQL, SQLiteEngine):
    """Reads and SQL in DuckDB; writes, counts and single rows through SQLite (an
    indexed lookup in SQLite beats a DuckDB scan of the attached file).

    ``path=None`` (``Tracker.IN_MEMORY``): DuckDB reads a SQLite *file*, so the store is
    a private temporary file, removed when the engine is collected or the process exits.
    """

    def __init__(self, path: str | None, *, create: bool = True, timeout: float = DEFAULT_TIMEOUT):
        if path is None:
            folder = _private_folder()
            weakref.finalize(self, _remove_folder, folder, os.getpid())  # kept alive by weakref itself
            path = os.path.join(folder, "memory.db")
        super().__init__(path, create=create, timeout=timeout)
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._duck_pid = 0
        self._use_db = False  # the user's SQL said USE db: say it again on each attach
        self._alias = f"xetrack_{next(_aliases)}"  # the file's name in the shared database
        with self._scanning():  # load the scanner and attach now, so a problem shows at once
            pass

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        """DuckDB with the sqlite scanner loaded; the file is attached only inside the guard."""
        if self._duck is None or self._duck_pid != os.getpid():
            # In a forked child the parent's DuckDB (and its threads) is left alone.
            self._duck, self._duck_pid = _with_scanner(), os.getpid()
        return self._duck

    @property
    def conn(self) -> DuckDBConnection:  # type: ignore[override]
        return DuckDBConnection(self)

    @contextmanager
    def _attached(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """The file attached as ``db`` for the block, with every ``sqlite3`` connection of
        this process on it closed; detached again however the block ends."""
        with self._guard.duckdb():
            duck = self.duck
            duck.execute(attach_sql(str(self.path), read_only=read_only))
            try:
                if self._use_db:
                    duck.execute(f"USE {ALIAS}")
                yield duck
            finally:
                _detach_all(duck)

    @contextmanager
    def _scanning(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """For xetrack's own reads: the file attached read-only to the process's shared
        DuckDB database as ``self._alias``, inside the guard; detached however the block
        ends. Only this alias is detached: other engines' files may be attached there."""
        with self._guard.duckdb():
            cursor = _shared_cursor()
            try:
                cursor.execute(attach_sql(str(self.path), self._alias, read_only=True))
                try:
                    yield cursor
                finally:
                    cursor.execute(f"DETACH DATABASE IF EXISTS {quote(self._alias)}")
            finally:
                cursor.close()

    def run(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyRelation:
        """Run the user's SQL in DuckDB; the result is fetched whole and handed back as a
        relation over the fetched data.

        Queries attach the file read-only; other statements (an UPDATE through
        ``tracker.conn``) read-write, as in DuckDB. Read-only is the safety net for
        what the guard cannot see, a ``sqlite3`` connection of the user's own: DuckDB's
        SQLite then never checkpoints or deletes the WAL under it (docs/concepts.md).
        """
        with self._attached(read_only=self._reads_only(query)) as duck:
            result = duck.execute(query, parameters)
            fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
            try:
                table = fetch()
            except duckdb.InvalidInputException:  # a statement with no result set
                table = None
            [(database,)] = duck.execute("SELECT current_database()").fetchall()
            self._use_db = database == ALIAS
        if table is None:
            return self.duck.sql("SELECT NULL WHERE false")
        return self.duck.from_arrow(table)

    def _reads_only(self, query: str) -> bool:
        try:
            statements = self.duck.extract_statements(query)
        except duckdb.Error:
            return False  # DuckDB reports the syntax error when it runs the query
        return all(s.type in _READ_STATEMENTS for s in statements)

    def _frame(self, sql: str, params: list[Any]) -> Any:
        with self._scanning() as duck:
            return duck.execute(sql, params).df()

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
            known = dict(checked.columns)
            types = self._logical(conn, table, checked)
        if spill.LINK in known:  # keys past the columns: read with their spill rows, as SQLite does
            return super().read(table, where, head, tail, columns)
        source = f"{quote(self._alias)}.{quote(table)}"
        if (head is not None or tail is not None) and rowid_alias(known) != "rowid":
            # DuckDB's scanner only knows "rowid"; a user column has taken that name.
            return super().read(table, where, head, tail, columns)
        if _scanner_misreads(known, types, columns):
            return super().read(table, where, head, tail, columns)
        if head is None and tail is None:  # DuckDB keeps scan order; no sort needed
            cols = ", ".join(quote(c) for c in columns) if columns else "*"
            clause, params = where_clause(where)
            sql = f"SELECT {cols} FROM {source}{clause}"
        else:
            sql, params = self.select_sql(table, known, where, head, tail, columns, source)
        try:
            frame = self._frame(sql, params)
        except (duckdb.TypeMismatchException, duckdb.ConversionException):
            # A column holds values of more than one type, which DuckDB's scanner
            # refuses; SQLite hands each value back as stored.
            return super().read(table, where, head, tail, columns)
        return normalize_duckdb_frame(frame, types)

    def close_duck(self) -> None:
        with self._guard.lock:
            if self._duck is not None and self._duck_pid == os.getpid():
                self._duck.close()
            self._duck = None

    def close(self) -> None:
        with self._guard.lock:
            if self._main.conn is None and os.path.exists(f"{self.path}-wal"):
                # A read-only attach cannot remove the -wal/-shm it made; a sqlite3
                # connection's close does, when it is the file's last user anywhere.
                try:
                    self._live()
                except (sqlite3.Error, OSError, DatabaseError):
                    pass
            super().close()
            self.close_duck()


def _scanner_misreads(declared: dict[str, str], types: dict[str, str], columns: Sequence[str] | None) -> bool:
    """Whether DuckDB's scanner would read a selected column otherwise than SQLite.

    It reads a column declared with no type as BLOB (an int comes back as ``b'1'``),
    and it casts every value to the declared type (an INTEGER column holding a REAL
    raises). So a column whose logical type is not its declared one, or an untyped
    column that is not BLOB, is read through SQLite, which hands back each value as
    stored. An untyped column with no logical type yet holds only NULLs (xetrack
    records the type with the first value), which DuckDB reads as well as SQLite.
    """
    wanted = None if columns is None else {c.lower() for c in columns}
    for name, decl in declared.items():
        if wanted is not None and name.lower() not in wanted:
            continue
        kind = types.get(name, decl)
        if kind and kind != (decl or "BLOB"):
            return True
    return False


def _detach_all(duck: duckdb.DuckDBPyConnection) -> None:
    """Leave no SQLite file attached to ``duck``, whatever the SQL run meanwhile did."""
    [(database,)] = duck.execute("SELECT current_database()").fetchall()
    if database != "memory":
        duck.execute("USE memory")
    attached = duck.execute("SELECT database_name FROM duckdb_databases() WHERE type = 'sqlite'").fetchall()
    for (name,) in attached:
        try:
            duck.execute(f"DETACH {quote(name)}")
        except duckdb.Error:
            # DETACH is refused inside a transaction the SQL left open: roll it back.
            duck.execute("ROLLBACK")
            duck.execute(f"DETACH {quote(name)}")
            raise DatabaseError(
                "A transaction was left open on the file through engine='duckdb' and was "
                "rolled back: the file is attached for one call at a time, so send "
                "BEGIN ... COMMIT in one execute()"
            ) from None


_READ_STATEMENTS = frozenset((duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN, duckdb.StatementType.SET))
_MEMORY_PREFIX = "xetrack-memory-"


def _private_folder() -> str:
    """A new folder for an in-memory store; folders of processes that died are removed."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        if name.startswith(_MEMORY_PREFIX):
            pid = name[len(_MEMORY_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{_MEMORY_PREFIX}{os.getpid()}-", dir=base)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_folder(folder: str, owner: int) -> None:
    if os.getpid() == owner:  # a forked child leaves its parent's store alone
        shutil.rmtree(folder, ignore_errors=True)
