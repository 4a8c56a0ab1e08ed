"""A PostgreSQL table read for the run queries: what changed since this process last read it.

``runs()``/``search()``/``history()`` on a PostgreSQL store run xetrack's SQLite SQL over
an in-memory SQLite copy of the table (:mod:`xetrack.store.run_mirror`). Fetching the whole table
for every call costs what shipping every row costs; this module tells the copy what it
must fetch instead, in one REPEATABLE READ snapshot:

- whether the rows it holds (those up to its last row) are still as it read them: the
  table's identity (a reset makes a new table), its columns and their logical types, how
  many rows it holds up to that row (a DELETE lowers the count), and the newest
  transaction that wrote one of them and the sum of those ids (an UPDATE writes a new row
  version stamped with its own transaction id, newer than any row the copy read);
- the rows past it, and the same description of the table up to its new last row;
- the spill rows of the rows it reads, when the table has keys past its columns. A
  set_value of a spilled key writes its rows too (:mod:`.changes`), so the description
  sees it.

>>> read_since(engine, "default", None, 0)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, NamedTuple

from psycopg import sql

from ..logical_types import logical_types
from . import spill
from .values import OVERFLOW, ROW, merge_rows

_I = sql.Identifier


class Spilled(NamedTuple):
    """The spilled keys of a table read for the copy (:mod:`.spill`)."""

    keys: list[str]  # in the order they were spilled
    types: list[str]  # their logical types
    links: list[Any]  # the row id of each row read, in order
    found: list[tuple[Any, str, Any]]  # (row id, key, value) of the rows read


def _describe(engine: Any, conn: Any, table: str, upto: int) -> tuple[tuple[Any, ...], int]:
    """(the description of ``table``'s rows up to row ``upto``, the table's last row)."""
    known = engine._load(conn, table)
    logical = logical_types(known.columns, engine._recorded(conn, table))
    # max and sum of the row versions' transaction ids: an UPDATE replaces a row version
    # by one stamped with its own, newer, transaction (the sum still moves should the
    # 32-bit ids ever wrap around)
    query = sql.SQL(
        "SELECT %s::regclass::oid, count(*) FILTER (WHERE {r} <= %s), "
        "max(xmin::text::bigint) FILTER (WHERE {r} <= %s), sum(xmin::text::bigint) FILTER (WHERE {r} <= %s), "
        "coalesce(max({r}), 0) FROM {t}"
    ).format(t=_I(table), r=_I(ROW))
    name = sql.Identifier(table).as_string(conn)  # a regclass literal: quoted, then bound
    oid, count, newest, total, last = conn.execute(query, (name, upto, upto, upto)).fetchone()
    return (oid, tuple(known.columns.items()), tuple(sorted(logical.items())), count, newest, total), last


def read_since(engine: Any, table: str, seen: Any, upto: int) -> tuple[bool, Any, int, Any]:
    """(whether the rows up to row ``upto`` are as ``seen`` describes them; the new
    description; the new last row; (names, logical types, the object table of the rows
    read, None when there are none; the spilled keys and their values, None when the
    table has none)). The rows read are those after ``upto`` when the
    first answer is yes, else every row. ``seen`` None: every row."""

    def attempt(conn: Any) -> tuple[bool, Any, int, Any]:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            kept = seen is not None
            if kept:
                now, _ = _describe(engine, conn, table, upto)
                kept = now == seen
            after = upto if kept else 0
            known = engine._load(conn, table)
            names = list(known.columns)
            query = sql.SQL("SELECT {}, {} FROM {} WHERE {} > %s ORDER BY {}").format(
                sql.SQL(", ").join(map(_I, [*names, OVERFLOW])), _I(ROW), _I(table), _I(ROW), _I(ROW)
            )
            rows = conn.execute(query, (after,)).fetchall()
            last = rows[-1][-1] if rows else after
            described, _ = _describe(engine, conn, table, last)
            recorded = engine._recorded(conn, table)
            types = [logical_types(known.columns, recorded).get(n, "") for n in names]
            spilled = None
            if known.spilled:  # the keys past the columns: the rows' spill rows, by their row id
                keys = list(known.spilled.values())
                links = [r[-1] for r in rows]
                found = spill.values_of(conn, table, links if kept else None, None) if rows else []
                spilled = Spilled(keys, [recorded.get(k.lower(), "") for k in keys], links, found)
        untyped = [j for j, n in enumerate(names) if known.columns[n] == ""]
        values = merge_rows([r[:-1] for r in rows], names, types, untyped) if rows else None  # the row id off
        return kept, described, last, (names, types, values, spilled)

    read: tuple[bool, Any, int, Any] = engine._run(attempt)
    return read
