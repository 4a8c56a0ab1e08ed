"""What the CLI asks the DuckDB engines beyond rows: the engine's own column types
(``xt columns``) and the user's own SQL (``xt sql``), through DuckDB. A mixin of
:class:`~xetrack.store.duckdb.engine.DuckDBEngine`; the defaults are on
:class:`~xetrack.store.base.Engine`.

The user's SQL is the one place where text a user typed runs as SQL: on the engine's
user connection (the database attached as ``db``), never on the one xetrack writes with.
"""

from __future__ import annotations

from typing import Any

from ...schema import quote
from ..base import SQLError

Result = tuple["list[str] | None", "list[tuple[Any, ...]]", int]


class DuckDBUserSQL:
    """For the DuckDB engines, on a SQLite file or a PostgreSQL server: ``conn`` is DuckDB
    with the database attached as ``db``."""

    conn: Any
    columns: Any

    def native_types(self, table: str) -> dict[str, str]:
        self.columns(table)  # raises TableNotFoundError, naming the tables
        return {row[0]: row[1] for row in self.conn.execute(f"DESCRIBE db.{quote(table)}").fetchall()}

    def run_sql(self, query: str) -> Result:
        import duckdb

        conn = self.conn
        try:
            conn.execute("USE db")  # unqualified names resolve in the database, too
            result = conn.execute(query)
            names, rows = list(result.columns), result.fetchall()
        except duckdb.Error as exc:
            raise SQLError(str(exc)) from None
        if names == ["NULL"] and not rows:  # a statement with no result set
            return None, [], -1
        return names, rows, -1


__all__ = ["DuckDBUserSQL"]
