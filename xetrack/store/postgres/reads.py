"""Reading rows of a PostgreSQL store: counts, frames, pages for a copy, one row
(a mixin of :class:`~xetrack.store.postgres.engine.PostgresEngine`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from psycopg import sql

from ...frames import row_dict
from ...schema import TIMESTAMP, TRACK_ID
from ..base import Where, column_not_found
from ..logical_types import logical_types
from .sql import Run, TableSchema, plain, where_sql
from .values import OVERFLOW, ROW, frame_of, merge_rows

_I = sql.Identifier


class PostgresReads:
    """The reads of :class:`~xetrack.store.postgres.engine.PostgresEngine`."""

    _run: Run
    _checked: Callable[[Any, str, Where | None], TableSchema]
    _load: Callable[[Any, str], TableSchema]
    _recorded: Callable[[Any, str], dict[str, str]]
    _rows: Callable[[Any, Any, Sequence[Any]], list[tuple[Any, ...]]]
    _tables: dict[str, TableSchema]

    def count(self, table: str, where: Where | None = None) -> int:
        def attempt(conn: Any) -> int:
            clause, params = where_sql(self._checked(conn, table, where), where)
            query = sql.SQL("SELECT count(*) FROM {}").format(_I(table)) + clause
            count: int = conn.execute(query, params).fetchone()[0]
            return count

        return self._run(attempt)

    def _select(
        self,
        conn: Any,
        table: str,
        where: Where | None,
        columns: Sequence[str] | None,
        order: str,
        limit: int | None,
        offset: int = 0,
    ) -> tuple[list[str], list[str], list[tuple[Any, ...]], TableSchema]:
        known = self._checked(conn, table, where)
        names = [known.lower.get(c.lower(), c) for c in columns] if columns else list(known.columns)
        for name in names:
            if name not in known.columns:
                raise column_not_found(name, table, list(known.columns))
        clause, params = where_sql(known, where)
        query = (
            sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(_I, [*names, OVERFLOW])), _I(table))
            + clause
            + sql.SQL(" ORDER BY {} " + order).format(_I(ROW))
        )
        if limit is not None:
            query += sql.SQL(" LIMIT %s OFFSET %s")
            params += [limit, offset]
        rows = conn.execute(query, params).fetchall()
        known.logical = logical_types(known.columns, self._recorded(conn, table))  # after the rows
        return names, [known.logical.get(n, "") for n in names], rows, known

    def fetch(
        self,
        table: str,
        where: Where | None = None,
        head: int | None = None,
        tail: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> tuple[list[str], list[str], Any]:
        """(column names, logical types, an object table of the values as logged), the
        overflow merged back: what :meth:`read` turns into a frame."""

        def attempt(conn: Any) -> tuple[list[str], list[str], Any]:
            if tail is not None:
                names, types, rows, known = self._select(conn, table, where, columns, "DESC", int(tail))
                rows.reverse()
            else:
                names, types, rows, known = self._select(conn, table, where, columns, "ASC", head)
            untyped = [j for j, n in enumerate(names) if known.columns[n] == ""]
            return names, types, merge_rows(rows, names, types, untyped)

        return self._run(attempt)

    def pages(
        self, table: str, size: int, after: int = 0, upto: int | None = None
    ) -> Iterator[tuple[list[str], list[str], Any]]:
        """The table in order (its rows past row ``after``, up to row ``upto``), ``size``
        rows at a time, as :meth:`fetch` gives them (each page one query after the previous
        page's last row: bounded memory)."""
        last = after
        top = 2**63 - 1 if upto is None else upto

        def attempt(conn: Any, start: int) -> tuple[list[str], list[str], list[tuple[Any, ...]], TableSchema]:
            known = self._load(conn, table)
            names = list(known.columns)
            query = sql.SQL("SELECT {}, {} FROM {} WHERE {} > %s AND {} <= %s ORDER BY {} LIMIT %s").format(
                sql.SQL(", ").join(map(_I, [*names, OVERFLOW])), _I(ROW), _I(table), _I(ROW), _I(ROW), _I(ROW)
            )
            rows = conn.execute(query, (start, top, size)).fetchall()
            types = [logical_types(known.columns, self._recorded(conn, table)).get(n, "") for n in names]
            return names, types, rows, known

        while True:
            names, types, rows, known = self._run(functools.partial(attempt, start=last))
            if not rows:
                return
            last = rows[-1][-1]
            untyped = [j for j, n in enumerate(names) if known.columns[n] == ""]
            yield names, types, merge_rows([r[:-1] for r in rows], names, types, untyped)

    def stored_pairs(
        self, table: str, track_ids: Sequence[str], between: tuple[str, str] | None = None
    ) -> set[tuple[str, str]]:
        """The ``(track_id, timestamp)`` pairs of the table's rows of these runs; with
        ``between`` (first, last), only those whose timestamp lies in it."""
        query = sql.SQL("SELECT {}, {} FROM {} WHERE {} = ANY(%s)").format(
            _I(TRACK_ID), _I(TIMESTAMP), _I(table), _I(TRACK_ID)
        )
        binds: list[Any] = [list(track_ids)]
        if between is not None:
            query += sql.SQL(" AND {} BETWEEN %s AND %s").format(_I(TIMESTAMP))
            binds += list(between)
        return set(self._run(lambda conn: self._rows(conn, query, binds)))

    def read(
        self,
        table: str,
        where: Where | None = None,
        head: int | None = None,
        tail: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> Any:
        return frame_of(*self.fetch(table, where, head, tail, columns))

    def _row_at(
        self, table: str, where: Where | None, order: str, offset: int, drop_null: bool
    ) -> dict[str, Any] | None:
        def attempt(conn: Any) -> dict[str, Any] | None:
            names, types, rows, known = self._select(conn, table, where, None, order, 1, offset)
            if not rows:
                return None
            untyped = [j for j, n in enumerate(names) if known.columns[n] == ""]
            values = merge_rows(rows, names, types, untyped)[0]
            return row_dict(names, types, [plain(v, t) for v, t in zip(values, types)], drop_null)

        return self._run(attempt)

    def last_row(
        self, table: str, where: Where | None = None, offset: int = 0, drop_null: bool = True
    ) -> dict[str, Any] | None:
        return self._row_at(table, where, "DESC", offset, drop_null)

    def nth_row(self, table: str, where: Where | None, n: int, drop_null: bool = True) -> dict[str, Any] | None:
        return self._row_at(table, where, "ASC", n, drop_null)
