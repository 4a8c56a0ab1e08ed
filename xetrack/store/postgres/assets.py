"""The asset store of the PostgreSQL engine: pickled objects by content hash, in a
``bytea`` table ``assets`` (key, value), deduplicated by the same hash as on SQLite, and
their reference counts in ``xetrack_asset_counts``.

>>> Tracker("postgresql://ana@db-host/exp").log({"model": model})["model"]  # doctest: +SKIP
'53425a65a40a49f4'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from psycopg import sql

from ...schema import ASSET_COUNTS, ASSETS_TABLE
from ..base import Where
from .sql import Run, TableSchema, Transact, create_side_tables, where_sql
from .values import OVERFLOW

_I = sql.Identifier


class AssetMethods:
    """The Engine's asset calls, for :class:`~xetrack.store.postgres.engine.PostgresEngine`."""

    _run: Run
    _rows: Callable[[Any, Any, Sequence[Any]], list[tuple[Any, ...]]]
    _checked: Callable[[Any, str, Where | None], TableSchema]
    _transact: Transact

    def _asset_rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        composed = sql.SQL(query).format(a=_I(ASSETS_TABLE), c=_I(ASSET_COUNTS))
        return self._run(lambda conn: self._rows(conn, composed, params))

    def asset_get(self, key: str) -> bytes | None:
        rows = self._asset_rows("SELECT value FROM {a} WHERE key = %s", (key,))
        return bytes(rows[0][0]) if rows else None

    def has_asset(self, key: str) -> bool:
        return bool(self._asset_rows("SELECT 1 FROM {a} WHERE key = %s", (key,)))

    def asset_keys(self) -> list[str]:
        return [k for (k,) in self._asset_rows("SELECT key FROM {a} ORDER BY seq")]

    def asset_count(self) -> int:
        rows = self._asset_rows("SELECT count(*) FROM {a}")
        return rows[0][0] if rows else 0

    def asset_refs(self, key: str) -> int:
        rows = self._asset_rows("SELECT count FROM {c} WHERE hash = %s", (key,))
        return rows[0][0] if rows else 0

    def asset_delete(self, key: str, table: str | None = None, column: str | None = None) -> int:
        def attempt(conn: Any) -> int:
            known = None if table is None or column is None else self._checked(conn, table, {column: None})

            def body(conn: Any) -> int:
                create_side_tables(conn)
                conn.execute(sql.SQL("DELETE FROM {} WHERE key = %s").format(_I(ASSETS_TABLE)), (key,))
                conn.execute(sql.SQL("DELETE FROM {} WHERE hash = %s").format(_I(ASSET_COUNTS)), (key,))
                if known is None or table is None or column is None:  # known: with table and column
                    return 0
                name = known.lower[column.lower()]
                clause, params = where_sql(known, {name: key})
                query = sql.SQL("UPDATE {t} SET {c} = NULL, {o} = NULLIF({o} - %s, '{{}}'::jsonb)").format(
                    t=_I(table), c=_I(name), o=_I(OVERFLOW)
                )
                cleared: int = conn.execute(query + clause, [name, *params]).rowcount
                return cleared

            return self._transact(conn, table or ASSETS_TABLE, body)

        return self._run(attempt)
