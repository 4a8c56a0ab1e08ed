"""Reading rows of a PostgreSQL store: counts, frames, pages for a copy, one row
(a mixin of :class:`~xetrack.store.postgres.engine.PostgresEngine`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from psycopg import sql

from ...frames import row_dict
from ...schema import TIMESTAMP, TRACK_ID
from ..base import Where, column_not_found
from . import spill
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
        known: TableSchema,
        where: Where | None,
        columns: Sequence[str] | None,
        order: str,
        limit: int | None,
        offset: int = 0,
        span: tuple[int, int] | None = None,
    ) -> tuple[list[str], list[str], np.ndarray, Any]:
        """(names, logical types, the object table of the values as logged, the last row's
        number when ``span`` is given) of the rows ``where`` picks (and whose number is in
        ``span``: after the first, up to the second), in ``order`` of the table: the
        overflow merged back, the spilled keys after the columns (read in the caller's
        snapshot, :func:`.spill.snapshot`)."""
        own, keys = self._wanted(known, table, columns)
        clause, params = where_sql(known, where)
        if span is not None:
            clause += sql.SQL(" AND " if params else " WHERE ") + sql.SQL("{r} > %s AND {r} <= %s").format(r=_I(ROW))
            params += list(span)
        linked = bool(keys) or span is not None
        picked = [*own, OVERFLOW, *([ROW] if linked else [])]
        query = (
            sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(_I, picked)), _I(table))
            + clause
            + sql.SQL(" ORDER BY {} " + order).format(_I(ROW))
        )
        if limit is not None:
            query += sql.SQL(" LIMIT %s OFFSET %s")
            params += [limit, offset]
        rows = conn.execute(query, params).fetchall()
        if order == "DESC":
            rows.reverse()
        known.retype(self._recorded(conn, table))  # after the rows
        types = [known.logical.get(n, "") for n in own]
        untyped = [j for j, n in enumerate(own) if known.columns[n] == ""]
        if not linked:
            return own, types, merge_rows(rows, own, types, untyped), None
        links = [r[-1] for r in rows]
        last = links[-1] if links else None
        values = merge_rows([r[:-1] for r in rows], own, types, untyped)
        if not keys:
            return own, types, values, last
        whole = limit is None and not where and span is None  # every row: no list of them to send
        every = len(keys) == len(known.spilled)
        found = spill.values_of(conn, table, None if whole else links, None if every else keys) if rows else []
        key_types = [known.logical.get(k, "") for k in keys]
        names, types, merged = spill.merged(own, types, values, keys, key_types, links, found)
        if columns:  # in the order asked
            at = {name: j for j, name in enumerate(names)}
            picks = [at[known.name(c)] for c in columns]
            return [names[j] for j in picks], [types[j] for j in picks], merged[:, picks], last
        return names, types, merged, last

    @staticmethod
    def _wanted(known: TableSchema, table: str, columns: Sequence[str] | None) -> tuple[list[str], list[str]]:
        """(the table's columns, its spilled keys) among ``columns`` (None: all)."""
        if not columns:
            return list(known.columns), list(known.spilled.values())
        own, keys = [], []
        for column in columns:
            name = known.name(column)
            if name in known.columns:
                own.append(name)
            elif name.lower() in known.spilled:
                keys.append(name)
            else:
                raise column_not_found(name, table, [*known.columns, *known.spilled.values()])
        return own, keys

    def fetch(
        self,
        table: str,
        where: Where | None = None,
        head: int | None = None,
        tail: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> tuple[list[str], list[str], Any]:
        """(column names, logical types, an object table of the values as logged), the
        overflow and the spilled keys merged back: what :meth:`read` turns into a frame."""

        def attempt(conn: Any) -> tuple[list[str], list[str], Any]:
            known = self._checked(conn, table, where)
            with spill.snapshot(conn, bool(known.spilled)):  # the rows and their spill rows
                if tail is not None:
                    names, types, values, _ = self._select(conn, table, known, where, columns, "DESC", int(tail))
                else:
                    names, types, values, _ = self._select(conn, table, known, where, columns, "ASC", head)
            return names, types, values

        return self._run(attempt)

    def pages(
        self, table: str, size: int, after: int = 0, upto: int | None = None
    ) -> Iterator[tuple[list[str], list[str], Any]]:
        """The table in order (its rows past row ``after``, up to row ``upto``), ``size``
        rows at a time, as :meth:`fetch` gives them, spilled keys included (each page one
        query after the previous page's last row: bounded memory)."""
        last = after
        top = 2**63 - 1 if upto is None else upto

        def attempt(conn: Any, start: int) -> tuple[list[str], list[str], Any, int | None]:
            known = self._load(conn, table)
            with spill.snapshot(conn, bool(known.spilled)):
                return self._select(conn, table, known, None, None, "ASC", size, span=(start, top))

        while True:
            names, types, values, end = self._run(functools.partial(attempt, start=last))
            if end is None:
                return
            last = end
            yield names, types, values

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
            known = self._checked(conn, table, where)
            with spill.snapshot(conn, bool(known.spilled)):
                names, types, values, _ = self._select(conn, table, known, where, None, order, 1, offset)
            if not len(values):
                return None
            return row_dict(names, types, [plain(v, t) for v, t in zip(values[0], types)], drop_null)

        return self._run(attempt)

    def last_row(
        self, table: str, where: Where | None = None, offset: int = 0, drop_null: bool = True
    ) -> dict[str, Any] | None:
        return self._row_at(table, where, "DESC", offset, drop_null)

    def nth_row(self, table: str, where: Where | None, n: int, drop_null: bool = True) -> dict[str, Any] | None:
        return self._row_at(table, where, "ASC", n, drop_null)
