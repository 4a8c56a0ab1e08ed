"""One run's rows, points and error text on SQLite: the reads behind the dashboard.

They run on the engine's user connection (the file attached as ``db``), set
``query_only``: these reads never write. Identifiers are quoted names the caller
checked against the table's columns; every value is bound.

A key past the table's columns (spilled, :mod:`.spill`) reads like a column: a run's
rows show the spilled keys after the table's own columns (never the link column), and
a curve of a spilled key joins each of the run's rows to its value in the spill.

>>> Reader("exp.db")._engine.run_rows("default", "fierce-pudu-1649", None, 0, 100)  # doctest: +SKIP
(['timestamp', 'track_id', 'acc'], [(1, '2026-...', 'fierce-pudu-1649', 0.9)], 1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from ...schema import TIMESTAMP, TRACK_ID, quote
from ..base import rowid_alias
from . import spill

#: A run whose points span more rowids than this is downsampled inside SQLite, bucket by bucket.
BUCKET_ABOVE = 50_000
#: ... reading the table's rows in rowid order when the run holds this share of its span or more
DENSE_SPAN = 0.25


@dataclass
class _Source:
    """Where a read of some columns of one table takes its rows: ``db."table"`` alone, or
    (when a column asked is a spilled key) the table joined to the spill rows of each such
    key, table first (``CROSS JOIN``: SQLite keeps that order, so the run's rows lead).
    ``sql`` goes after FROM with ``params`` bound there; ``rowid`` and ``of(name)`` are the
    expressions of the rowid and of a column. A row without a value of a joined key is
    left out, as the reads that join want (points where every column holds a value)."""

    sql: str
    rowid: str
    params: list[Any] = field(default_factory=list)
    exprs: dict[str, str] = field(default_factory=dict)
    prefix: str = ""

    def of(self, name: str) -> str:
        return self.exprs.get(name) or self.prefix + quote(name)


class SQLiteRunReads:
    """Mixed into the SQLite engine; see :class:`xetrack.store.base.Engine` for the contract."""

    conn: Any
    columns: Any  # the engine's
    spilled: Any  # the engine's

    def _reads(self, table: str) -> tuple[Any, str, str]:
        """(the query-only connection, ``db."table"``, the rowid's name)."""
        alias = rowid_alias(self.columns(table))  # raises TableNotFoundError
        conn = self.conn
        conn.execute("PRAGMA query_only = 1")  # this connection never writes
        return conn, "db." + quote(table), alias

    def _source(self, table: str, name: str, alias: str, columns: Sequence[str]) -> _Source:
        """The rows of ``table`` (``name``: ``db."table"``) with ``columns`` readable."""
        lower = {k.lower(): k for k in self.spilled(table)}
        joined = list(dict.fromkeys(lower[c.lower()] for c in columns if c.lower() in lower))
        if not joined:
            return _Source(name, alias)
        t = quote("xetrack$t")
        source = _Source(f"{name} AS {t}", f"{t}.{alias}", prefix=t + ".")
        for i, key in enumerate(joined):
            s = quote(f"xetrack$s{i}")
            source.sql += (
                f' CROSS JOIN db.{quote(spill.SPILL)} AS {s} ON {s}."tbl" = ? AND {s}."key" = ?'
                f' AND {s}."row" = {t}.{quote(spill.LINK)}'
            )
            source.params += [table, key]
            source.exprs.update((c, f'{s}."value"') for c in columns if c.lower() == key.lower())
        return source

    def run_error(self, table: str, track_id: str) -> str | None:
        conn = self.conn
        conn.execute("PRAGMA query_only = 1")
        has_runs = conn.execute(
            "SELECT 1 FROM db.sqlite_master WHERE type = 'table' AND name = 'xetrack_runs'"
        ).fetchone()
        if not has_runs:
            return None
        found = conn.execute(
            'SELECT "error" FROM db."xetrack_runs" WHERE "track_id" = ? AND "table" = ?', (track_id, table)
        ).fetchone()
        return found[0] if found else None

    def run_rows(
        self, table: str, track_id: str, after: int | None, offset: int, size: int
    ) -> tuple[list[str], list[tuple[Any, ...]], int | None, int]:
        conn, name, alias = self._reads(table)
        keys = self.spilled(table)
        run = f"{quote(TRACK_ID)} = ?"
        with spill.snapshot(conn) if keys else nullcontext():  # the rows and their spill rows: one snapshot
            if after is not None:
                cursor = conn.execute(
                    f"SELECT {alias} AS {quote('__rowid')}, * FROM {name} "
                    f"WHERE {run} AND {alias} > ? ORDER BY {alias} LIMIT ?",
                    (track_id, after, size),
                )
                total, top = None, after
            else:
                total, top = conn.execute(
                    f"SELECT count(*), coalesce(max({alias}), 0) FROM {name} WHERE {run}", (track_id,)
                ).fetchone()
                cursor = conn.execute(
                    f"SELECT {alias} AS {quote('__rowid')}, * FROM {name} WHERE {run} AND {alias} <= ? "
                    f"ORDER BY {alias} LIMIT ? OFFSET ?",
                    (track_id, top, size, offset),
                )
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            if spill.LINK in names:  # keys past the columns: after the table's own, the link left out
                names, rows = self._with_spilled(conn, table, keys, names, rows)
        return names[1:], rows, total, top

    def _with_spilled(
        self, conn: Any, table: str, keys: list[str], names: list[str], rows: list[tuple[Any, ...]]
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """``rows`` (with the link column at its place in ``names``) with the link left out
        and each spilled key's value appended (None where the row has none)."""
        at = names.index(spill.LINK)
        links = [r[at] for r in rows]
        found = spill.values_for(conn, table, links, "db")
        extra = spill.columns(links, keys, found)
        values = list(extra.values())
        merged = [(*r[:at], *r[at + 1 :], *(v[i] for v in values)) for i, r in enumerate(rows)]
        return [*names[:at], *names[at + 1 :], *extra], merged

    def run_points(
        self, table: str, track_id: str, columns: Sequence[str], after: int, limit: int | None = None
    ) -> tuple[list[tuple[Any, ...]], int | None]:
        conn, name, alias = self._reads(table)
        source = self._source(table, name, alias, columns)
        if limit is not None and len(columns) == 2:
            picked = _bucket_extremes(conn, name, alias, source, track_id, columns[0], columns[1], after, limit)
            if picked is not None:
                return picked
        rowid = source.rowid
        selected = ", ".join([rowid, *map(source.of, columns)])
        not_null = "".join(f" AND {source.of(c)} IS NOT NULL" for c in columns)
        fetched = conn.execute(
            f"SELECT {selected} FROM {source.sql} WHERE {source.of(TRACK_ID)} = ? AND {rowid} > ?{not_null} "
            f"ORDER BY {rowid}",
            (*source.params, track_id, after),
        ).fetchall()
        return fetched, None

    def points_before(self, table: str, track_id: str, column: str, cursor: int) -> int:
        conn, name, alias = self._reads(table)
        source = self._source(table, name, alias, [column])
        count: int = conn.execute(
            f"SELECT count(*) FROM {source.sql} WHERE {source.of(TRACK_ID)} = ? AND {source.rowid} <= ? "
            f"AND {source.of(column)} IS NOT NULL",
            (*source.params, track_id, cursor),
        ).fetchone()[0]
        return count

    def run_range(
        self, table: str, track_id: str, y_name: str, x_name: str, low: float, high: float, columns: int
    ) -> tuple[list[tuple[Any, Any]], int]:
        conn, name, alias = self._reads(table)
        source = self._source(table, name, alias, [y_name, x_name])
        tid, y, x = source.of(TRACK_ID), source.of(y_name), source.of(x_name)
        numbers = f"typeof({y}) IN ('integer', 'real') AND typeof({x}) IN ('integer', 'real')"
        where = f"{tid} = ? AND {x} BETWEEN ? AND ? AND {numbers}"
        args = (*source.params, track_id, low, high)
        # Few points in the range: every one (the scan stops past 2 * columns of them).
        few = conn.execute(
            f"SELECT {x}, {y} FROM {source.sql} WHERE {where} LIMIT ?", (*args, 2 * columns + 1)
        ).fetchall()
        if len(few) <= 2 * columns:
            return sorted(set(few)), len(few)
        # Else a GROUP BY per slice of the range, one for the lowest and one for the
        # highest y: with one min() or max() in the query, SQLite takes the other columns
        # (the x) from that row. ``high`` itself is in the last slice.
        slot = f"CASE WHEN {x} >= ? THEN ? ELSE CAST(({x} - ?) * ? / ? AS INTEGER) END"
        chosen: set[tuple[Any, Any]] = set()
        total = 0
        for pick in ("min", "max"):
            rows = conn.execute(
                f"SELECT {slot} AS {quote('__slot')}, {x}, {pick}({y}), count(*) FROM {source.sql} WHERE {where} "
                f"GROUP BY {quote('__slot')}",
                (high, columns - 1, low, columns, high - low, *args),
            ).fetchall()
            total = sum(r[3] for r in rows)
            chosen.update((r[1], r[2]) for r in rows)
        return sorted(chosen), total

    def run_start(self, table: str, track_id: str) -> Any:
        conn, name, alias = self._reads(table)
        row = conn.execute(
            f"SELECT {quote(TIMESTAMP)} FROM {name} WHERE {quote(TRACK_ID)} = ? ORDER BY {alias} LIMIT 1", (track_id,)
        ).fetchone()
        return row[0] if row else None


def _bucket_extremes(
    conn: Any,
    table: str,
    alias: str,
    source: _Source,
    track_id: str,
    y_name: str,
    x_column: str,
    after: int,
    limit: int,
) -> tuple[list[tuple[Any, ...]], int] | None:
    """The points the dashboard's downsampling keeps, chosen inside SQLite: (rowid, y, x) of
    the first and last point and of the min and max of each rowid bucket, in rowid order,
    and the number of points. Fetching a million rows into Python costs three times what
    SQLite's aggregates over them cost; each bucket is a range of the ``track_id`` index.
    (SQLite documents that with one min() or max(), the other columns come from that row.)
    None for a run that is small enough to fetch whole, or whose column holds text.
    ``table`` (``db."table"``) and ``alias`` give the run's span of rowids; ``source``
    reads its points (joined to the spill for a spilled key)."""
    tid = quote(TRACK_ID)
    where = f"{tid} = ? AND {alias} > ?"
    lo = conn.execute(f"SELECT min({alias}) FROM {table} WHERE {where}", (track_id, after)).fetchone()[0]
    hi = conn.execute(f"SELECT max({alias}) FROM {table} WHERE {where}", (track_id, after)).fetchone()[0]
    if lo is None or hi - lo < max(BUCKET_ABOVE, limit):
        return None
    buckets = max(1, (limit - 2) // 2)
    width = math.ceil((hi - lo + 1) / buckets)
    # The run's rows among all rows of its rowid span (the index alone counts them): where
    # they are most of it, reading the table's rows in rowid order beats a seek per row
    # through the index, which "+" keeps the planner from using.
    rows = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", (track_id, after)).fetchone()[0]
    rid, y, x = source.rowid, source.of(y_name), source.of(x_column)
    run = f"+{source.of(TRACK_ID)}" if rows >= DENSE_SPAN * (hi - lo + 1) else source.of(TRACK_ID)
    cond = f"{rid} >= ? AND {rid} < ? AND {run} = ? AND {y} IS NOT NULL AND {x} IS NOT NULL"
    lows = f"SELECT {rid}, min({y}), {x}, count(*) FROM {source.sql} WHERE {cond}"
    highs = f"SELECT {rid}, max({y}), {x} FROM {source.sql} WHERE {cond}"
    ends = f"SELECT {rid}, {y}, {x} FROM {source.sql} WHERE {cond} ORDER BY {rid}"
    joins = tuple(source.params)
    points: dict[int, tuple[Any, ...]] = {}
    total = 0
    for b in range(buckets):
        start = lo + b * width
        low = conn.execute(lows, (*joins, start, start + width, track_id)).fetchone()
        if not low[3]:
            continue
        total += low[3]
        points[low[0]] = low[:3]
        high = conn.execute(highs, (*joins, start, start + width, track_id)).fetchone()
        points[high[0]] = high
    bounds = (*joins, lo, hi + 1, track_id)
    for row in (
        conn.execute(ends + " LIMIT 1", bounds).fetchone(),
        conn.execute(ends + " DESC LIMIT 1", bounds).fetchone(),
    ):
        if row is not None:
            points[row[0]] = row
    chosen = [points[k] for k in sorted(points)]
    if any(type(r[1]) not in (int, float) for r in chosen):
        return None  # text among the numbers: the whole fetch turns it into gaps
    return chosen, total
