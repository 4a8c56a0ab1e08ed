"""One run's rows, points and error text on PostgreSQL: the reads behind the dashboard.

The cursor of a row is the table's identity column ``xetrack$row`` (SQLite's rowid).
A value kept in the row's JSONB overflow (it did not fit its column's type) counts as
a value and reads back as logged, as everywhere else (:mod:`.pg_types`). Identifiers
are ``psycopg.sql.Identifier``; values are bound.

>>> Reader("postgresql://ana@db-host/exp")._engine.run_error("default", "fierce-pudu-1649")  # doctest: +SKIP
'ValueError: boom'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from psycopg import errors as pg_errors
from psycopg import sql

from ...schema import TIMESTAMP, TRACK_ID
from ..tables import RUNS
from .sql import Run, TableSchema, plain
from .values import OVERFLOW, ROW, merge_rows

_I = sql.Identifier
#: PostgreSQL's types of columns that hold numbers (``format_type`` names).
_NUMBERS = frozenset({"double precision", "real", "bigint", "integer", "smallint", "numeric"})


def _present(column: str) -> Any:
    """SQL: the row holds a value for ``column``, in it or in the overflow."""
    return sql.SQL("({} IS NOT NULL OR COALESCE({} ? {}, false))").format(_I(column), _I(OVERFLOW), sql.Literal(column))


class PostgresRunReads:
    """Mixed into the PostgreSQL engine; see :class:`xetrack.store.base.Engine` for the contract."""

    _run: Run
    _load: Callable[[Any, str], TableSchema]

    def _values(self, known: TableSchema, names: list[str], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Fetched ``(*names, overflow, cursor)`` rows as ``(cursor, *values as logged)``."""
        if not rows:
            return []
        types = [known.logical.get(n, "") for n in names]
        untyped = [j for j, n in enumerate(names) if known.columns.get(n) == ""]
        table = merge_rows([r[:-1] for r in rows], names, types, untyped)
        return [(r[-1], *(plain(v, t) for v, t in zip(values, types))) for r, values in zip(rows, table.tolist())]

    def _checked_names(self, known: TableSchema, table: str, columns: Sequence[str]) -> list[str]:
        from ..base import column_not_found

        names = []
        for column in columns:
            name = known.lower.get(column.lower())
            if name is None:
                raise column_not_found(column, table, list(known.columns))
            names.append(name)
        return names

    def run_rows(
        self, table: str, track_id: str, after: int | None, offset: int, size: int
    ) -> tuple[list[str], list[tuple[Any, ...]], int | None, int]:
        def attempt(conn: Any) -> tuple[list[str], list[tuple[Any, ...]], int | None, int]:
            known = self._load(conn, table)
            names = list(known.columns)
            select = sql.SQL("SELECT {} FROM {} WHERE {} = %s AND {} ").format(
                sql.SQL(", ").join(map(_I, [*names, OVERFLOW, ROW])), _I(table), _I(TRACK_ID), _I(ROW)
            )
            if after is not None:
                rows = conn.execute(
                    select + sql.SQL("> %s ORDER BY {} LIMIT %s").format(_I(ROW)), (track_id, after, size)
                ).fetchall()
                return names, self._values(known, names, rows), None, after
            total, top = conn.execute(
                sql.SQL("SELECT count(*), coalesce(max({}), 0) FROM {} WHERE {} = %s").format(
                    _I(ROW), _I(table), _I(TRACK_ID)
                ),
                (track_id,),
            ).fetchone()
            rows = conn.execute(
                select + sql.SQL("<= %s ORDER BY {} LIMIT %s OFFSET %s").format(_I(ROW)), (track_id, top, size, offset)
            ).fetchall()
            return names, self._values(known, names, rows), total, top

        return self._run(attempt)

    def run_points(
        self, table: str, track_id: str, columns: Sequence[str], after: int, limit: int | None = None
    ) -> tuple[list[tuple[Any, ...]], int | None]:
        def attempt(conn: Any) -> tuple[list[tuple[Any, ...]], int | None]:
            known = self._load(conn, table)
            names = self._checked_names(known, table, columns)
            query = sql.SQL("SELECT {} FROM {} WHERE {} = %s AND {} > %s").format(
                sql.SQL(", ").join(map(_I, [*names, OVERFLOW, ROW])), _I(table), _I(TRACK_ID), _I(ROW)
            )
            for name in names:
                query += sql.SQL(" AND ") + _present(name)
            rows = conn.execute(query + sql.SQL(" ORDER BY {}").format(_I(ROW)), (track_id, after)).fetchall()
            return self._values(known, names, rows), None

        return self._run(attempt)

    def points_before(self, table: str, track_id: str, column: str, cursor: int) -> int:
        def attempt(conn: Any) -> int:
            (name,) = self._checked_names(self._load(conn, table), table, [column])
            query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s AND {} <= %s AND ").format(
                _I(table), _I(TRACK_ID), _I(ROW)
            ) + _present(name)
            count: int = conn.execute(query, (track_id, cursor)).fetchone()[0]
            return count

        return self._run(attempt)

    def run_range(
        self, table: str, track_id: str, y: str, x: str, low: float, high: float, columns: int
    ) -> tuple[list[tuple[Any, Any]], int]:
        def attempt(conn: Any) -> tuple[list[tuple[Any, Any]], int]:
            known = self._load(conn, table)
            y_name, x_name = self._checked_names(known, table, [y, x])
            if not all(known.declared.get(n, "") in _NUMBERS for n in (y_name, x_name)):
                return [], 0  # a column of text (a value that was no number sits in the overflow)
            where = sql.SQL("{} = %s AND {} BETWEEN %s AND %s AND {} IS NOT NULL").format(
                _I(TRACK_ID), _I(x_name), _I(y_name)
            )
            args = (track_id, low, high)
            pair = sql.SQL("{}, {}").format(_I(x_name), _I(y_name))
            # Few points in the range: every one (the scan stops past 2 * columns of them).
            few = conn.execute(
                sql.SQL("SELECT {} FROM {} WHERE {} LIMIT %s").format(pair, _I(table), where), (*args, 2 * columns + 1)
            ).fetchall()
            if len(few) <= 2 * columns:
                return sorted({(a, b) for a, b in few}), len(few)
            # Else, per slice of the range, the row of the lowest and of the highest y.
            slot = sql.SQL("LEAST(floor(({} - %s) * %s / %s)::bigint, %s)").format(_I(x_name))
            inner = sql.SQL("SELECT {} AS s, {} FROM {} WHERE {}").format(slot, pair, _I(table), where)
            chosen: set[tuple[Any, Any]] = set()
            total = 0
            for order in (sql.SQL("ASC"), sql.SQL("DESC")):
                rows = conn.execute(
                    sql.SQL(
                        "SELECT DISTINCT ON (s) {}, count(*) OVER (PARTITION BY s) FROM ({}) AS p ORDER BY s, {} {}"
                    ).format(pair, inner, _I(y_name), order),
                    (low, columns, high - low, columns - 1, *args),
                ).fetchall()
                total = sum(r[2] for r in rows)
                chosen.update((r[0], r[1]) for r in rows)
            return sorted(chosen), total

        return self._run(attempt)

    def run_start(self, table: str, track_id: str) -> Any:
        query = sql.SQL("SELECT {} FROM {} WHERE {} = %s ORDER BY {} LIMIT 1").format(
            _I(TIMESTAMP), _I(table), _I(TRACK_ID), _I(ROW)
        )
        row = self._run(lambda conn: conn.execute(query, (track_id,)).fetchone())
        return row[0] if row else None

    def run_error(self, table: str, track_id: str) -> str | None:
        query = sql.SQL('SELECT "error" FROM {} WHERE "track_id" = %s AND "table" = %s').format(_I(RUNS))

        def attempt(conn: Any) -> Any:
            try:
                return conn.execute(query, (track_id, table)).fetchone()
            except pg_errors.UndefinedTable:
                return None

        row = self._run(attempt)
        return row[0] if row else None
