"""Changing stored rows of a PostgreSQL store: ``update`` (growing the table for new keys,
a value that does not fit its column going to the JSONB overflow, a spilled key's value
to its spill row) and ``delete`` (the rows' spill rows with them), a mixin of
:class:`~xetrack.store.postgres.engine.PostgresEngine`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from ...schema import sql_type
from ..base import Where
from . import spill
from .sql import Run, TableSchema, Transact, changes, where_sql
from .values import OVERFLOW, fits, to_json

_I = sql.Identifier


class PostgresChanges:
    """``update`` and ``delete`` of :class:`~xetrack.store.postgres.engine.PostgresEngine`."""

    _run: Run
    _transact: Transact
    _checked: Callable[[Any, str, Where | None], TableSchema]
    _grow: Callable[[Any, str, dict[str, str]], TableSchema]
    _record: Callable[[Any, str, TableSchema, dict[str, str]], None]

    def update(self, table: str, values: dict[str, Any], where: Where | None) -> int:
        def attempt(conn: Any) -> int:
            known = self._checked(conn, table, where)

            def body(conn: Any) -> int:
                have = known.lower.keys() | known.spilled.keys()
                missing = {k: sql_type(v) or "" for k, v in values.items() if k.lower() not in have}
                grown = self._grow(conn, table, missing) if missing else known
                if not values:
                    return 0
                names = [grown.name(k) for k in values]
                clause, where_params = where_sql(grown, where)
                narrow = {n: v for n, v in zip(names, values.values()) if n.lower() in grown.spilled}
                own = [(n, v) for n, v in zip(names, values.values()) if n not in narrow]
                if own:
                    count = _set_columns(conn, table, grown, own, clause, where_params)
                else:  # only spilled keys: the rows are written unchanged, so that a copy
                    # of the table sees them changed (their transaction ids, mirror.py)
                    query = sql.SQL("UPDATE {} SET {o} = {o}").format(_I(table), o=_I(OVERFLOW)) + clause
                    count = conn.execute(query, where_params).rowcount
                if narrow and count:
                    spill.set_values(conn, table, narrow, clause, where_params)
                if count:
                    self._record(conn, table, grown, changes(grown, names, [tuple(values.values())]))
                return count

            return self._transact(conn, table, body)

        return self._run(attempt)

    def delete(self, table: str, where: Where | None) -> int:
        def attempt(conn: Any) -> int:
            known = self._checked(conn, table, where)
            clause, params = where_sql(known, where)
            if known.spills:  # the rows and their spill rows, in one statement
                return int(conn.execute(spill.delete_sql(table, clause), [*params, table]).fetchone()[0])
            deleted: int = conn.execute(sql.SQL("DELETE FROM {}").format(_I(table)) + clause, params).rowcount
            return deleted

        return self._run(attempt)


def _set_columns(
    conn: Any, table: str, known: TableSchema, own: list[tuple[str, Any]], clause: Any, where_params: list[Any]
) -> int:
    """UPDATE of columns (``own``: name -> value) on the rows ``clause`` picks; a value
    that does not fit its column goes to the overflow. Returns the rows picked."""
    sets, params, overflow = [], [], {}
    for name, value in own:
        decl = known.columns[name]
        if fits(decl, value):
            sets.append(sql.SQL("{} = %s").format(_I(name)))
            params.append(Jsonb(to_json(value)) if decl == "" and value is not None else value)
        else:
            sets.append(sql.SQL("{} = NULL").format(_I(name)))
            overflow[name] = to_json(value)
    sets.append(
        sql.SQL("{o} = NULLIF((COALESCE({o}, '{{}}'::jsonb) - %s::text[]) || %s::jsonb, '{{}}'::jsonb)").format(
            o=_I(OVERFLOW)
        )
    )
    params += [[name for name, _ in own], Jsonb(overflow)]
    query = sql.SQL("UPDATE {} SET ").format(_I(table)) + sql.SQL(", ").join(sets) + clause
    count: int = conn.execute(query, [*params, *where_params]).rowcount
    return count
