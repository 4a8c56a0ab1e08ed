"""What the CLI asks the PostgreSQL engine beyond rows: the stored objects
(``xt assets ls``) and the user's own SQL (``xt sql``). A mixin of
:class:`~xetrack.store.postgres.engine.PostgresEngine`; the defaults are on
:class:`~xetrack.store.base.Engine`.

The user's SQL is the one place where text a user typed runs as SQL: on the engine's
user connection (the database attached as ``db``), never on the one xetrack writes with.
"""

from __future__ import annotations

from typing import Any

from ...schema import ASSET_COUNTS, ASSETS_TABLE
from ..base import SQLError
from ..tables import MODELS
from .blobs import has_table
from .connect import scrub
from .sql import Run

Result = tuple["list[str] | None", "list[tuple[Any, ...]]", int]


class PostgresUserSQL:
    """For :class:`~xetrack.store.postgres.engine.PostgresEngine`: ``conn`` is a psycopg
    connection in autocommit, the user's own."""

    conn: Any
    _run: Run
    _url: str

    def asset_listing(self) -> list[tuple[str, int, int, int]]:
        from psycopg import sql

        def read(conn: Any) -> list[tuple[str, int, int, int]]:
            if not has_table(conn, ASSETS_TABLE):
                return []
            refs = (
                sql.SQL("coalesce((SELECT c.count FROM {} c WHERE c.hash = a.key), 0)").format(
                    sql.Identifier(ASSET_COUNTS)
                )
                if has_table(conn, ASSET_COUNTS)
                else sql.SQL("0")
            )
            models = (
                sql.SQL("(SELECT count(*) FROM {} m WHERE m.hash = a.key AND m.kind = 'asset')").format(
                    sql.Identifier(MODELS)
                )
                if has_table(conn, MODELS)
                else sql.SQL("0")
            )
            query = sql.SQL("SELECT a.key, octet_length(a.value), {}, {} FROM {} a ORDER BY a.seq").format(
                refs, models, sql.Identifier(ASSETS_TABLE)
            )
            return [(k, int(n), int(r), int(m)) for k, n, r, m in conn.execute(query).fetchall()]

        return self._run(read)

    def run_sql(self, query: str) -> Result:
        import psycopg

        try:
            cursor = self.conn.execute(query)
            names = [d.name for d in cursor.description] if cursor.description else None
            rows = cursor.fetchall() if names is not None else []
        except psycopg.Error as exc:
            raise SQLError(scrub(str(exc).strip(), self._url)) from None
        return names, rows, cursor.rowcount


__all__ = ["PostgresUserSQL"]
