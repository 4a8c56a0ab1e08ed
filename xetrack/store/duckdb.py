"""DuckDB over the same SQLite file, through DuckDB's sqlite scanner.

Reads and the user's SQL (``tracker.conn``) run in DuckDB, with the file attached
as ``db``. Writes go through :class:`SQLiteEngine`: DuckDB's scanner has no busy
timeout (a concurrent writer gets "database is locked" at once) and it casts every
value to the column's declared type, which would reject a later value of another
type. :mod:`xetrack.store.guard` keeps the two SQLite libraries from holding the
file at the same moment.

The scanner is loaded from the ``duckdb-extension-sqlite-scanner`` wheel, so no
network is needed; ``INSTALL sqlite`` is only the fallback.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Sequence

import duckdb

from ..frames import normalize_duckdb_frame
from ..schema import quote
from .base import Where, rowid_alias, where_clause
from .sqlite import DEFAULT_TIMEOUT, SQLiteEngine

ALIAS = "db"


def _bundled_extension() -> str | None:
    try:
        import duckdb_extension_sqlite_scanner as package
    except ImportError:
        return None
    root = os.path.dirname(package.__file__)
    exact = os.path.join(root, "extensions", f"v{duckdb.__version__}", "sqlite_scanner.duckdb_extension")
    if os.path.exists(exact):
        return exact
    found = glob.glob(os.path.join(root, "extensions", "*", "sqlite_scanner.duckdb_extension"))
    return found[0] if len(found) == 1 else None


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


def attach_sql(path: str, alias: str = ALIAS) -> str:
    literal = "'" + os.path.abspath(path).replace("'", "''") + "'"
    return f"ATTACH {literal} AS {quote(alias)} (TYPE sqlite)"


class DuckDBConnection:
    """``tracker.conn`` for engine='duckdb': a DuckDB connection with the file as ``db``.

    ``execute``/``sql``/``query`` run under the file guard and fetch their result
    fully before returning, so DuckDB never holds the file while xetrack writes.
    Everything else is DuckDB's own connection.

    >>> tracker.conn.execute('SELECT * FROM db."default"').fetchall()  # doctest: +SKIP
    """

    def __init__(self, engine: "DuckDBEngine") -> None:
        self._engine = engine

    def execute(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyRelation:
        return self._engine.run(query, parameters)

    def sql(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyRelation:
        return self._engine.run(query, parameters)

    query = sql

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine.duck, name)

    def __repr__(self) -> str:
        return f"<DuckDBConnection {self._engine.path!r} attached as {ALIAS}>"


class DuckDBEngine(SQLiteEngine):
    """Reads and SQL in DuckDB; writes, counts and single rows through SQLite (an
    indexed lookup in SQLite beats a DuckDB scan of the attached file)."""

    def __init__(self, path: str | None, *, create: bool = True, timeout: float = DEFAULT_TIMEOUT):
        if path is None:
            raise ValueError(
                "engine='duckdb' reads a SQLite file; an in-memory database works with "
                "engine='sqlite'"
            )
        super().__init__(path, create=create, timeout=timeout)
        # Load the scanner and attach now, so that a problem shows at once.
        self._duck: duckdb.DuckDBPyConnection | None = self._open_duck()

    def _open_duck(self) -> duckdb.DuckDBPyConnection:
        duck = duckdb.connect()
        load_sqlite_scanner(duck)
        with self._guard.duckdb():
            duck.execute(attach_sql(str(self.path)))
        return duck

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        """DuckDB with the file attached as ``db``; reopened after ``close()``."""
        if self._duck is None:
            self._duck = self._open_duck()
        return self._duck

    @property
    def conn(self) -> DuckDBConnection:  # type: ignore[override]
        return DuckDBConnection(self)

    def run(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyRelation:
        """Run SQL in DuckDB; the result is fetched whole, then handed back as a relation."""
        with self._guard.duckdb():
            result = self.duck.execute(query, parameters)
            fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
            try:
                table = fetch()
            except duckdb.InvalidInputException:  # a statement with no result set
                table = None
        if table is None:
            return self.duck.sql("SELECT NULL WHERE false")
        return self.duck.from_arrow(table)

    def _frame(self, sql: str, params: list[Any]) -> Any:
        with self._guard.duckdb():
            return self.duck.execute(sql, params).df()

    def read(
        self,
        table: str,
        where: Where | None = None,
        head: int | None = None,
        tail: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> Any:
        with self._guard.lock:
            known = dict(self._checked(self._live(), table, where).columns)
        source = f"{quote(ALIAS)}.{quote(table)}"
        if (head is not None or tail is not None) and rowid_alias(known) != "rowid":
            # DuckDB's scanner only knows "rowid"; a user column has taken that name.
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
        return normalize_duckdb_frame(frame, known)

    def close(self) -> None:
        super().close()
        if self._duck is not None:
            self._duck.close()
            self._duck = None


