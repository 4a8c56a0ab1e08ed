"""One run's rows, points and error text on SQLite: the reads behind the dashboard.

They run on the engine's user connection (the file attached as ``db``), set
``query_only``: these reads never write. Identifiers are quoted names the caller
checked against the table's columns; every value is bound.

>>> Reader("exp.db")._engine.run_rows("default", "fierce-pudu-1649", None, 0, 100)  # doctest: +SKIP
(['timestamp', 'track_id', 'acc'], [(1, '2026-...', 'fierce-pudu-1649', 0.9)], 1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ...schema import TIMESTAMP, TRACK_ID, quote
from ..base import rowid_alias

#: A run whose points span more rowids than this is downsampled inside SQLite, bucket by bucket.
BUCKET_ABOVE = 50_000
#: ... reading the table's rows in rowid order when the run holds this share of its span or more
DENSE_SPAN = 0.25


class SQLiteRunReads:
    """Mixed into the SQLite engine; see :class:`xetrack.store.base.Engine` for the contract."""

    conn: Any
    columns: Any  # the engine's

    def _reads(self, table: str) -> tuple[Any, str, str]:
        """(the query-only connection, ``db."table"``, the rowid's name)."""
        alias = rowid_alias(self.columns(table))  # raises TableNotFoundError
        conn = self.conn
        conn.execute("PRAGMA query_only = 1")  # this connection never writes
        return conn, "db." + quote(table), alias

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
        run = f"{quote(TRACK_ID)} = ?"
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
        return names[1:], cursor.fetchall(), total, top

    def run_points(
        self, table: str, track_id: str, columns: Sequence[str], after: int, limit: int | None = None
    ) -> tuple[list[tuple[Any, ...]], int | None]:
        conn, name, alias = self._reads(table)
        if limit is not None and len(columns) == 2:
            picked = _bucket_extremes(conn, name, alias, track_id, columns[0], columns[1], after, limit)
            if picked is not None:
                return picked
        selected = ", ".join([alias, *map(quote, columns)])
        not_null = "".join(f" AND {quote(c)} IS NOT NULL" for c in columns)
        fetched = conn.execute(
            f"SELECT {selected} FROM {name} WHERE {quote(TRACK_ID)} = ? AND {alias} > ?{not_null} ORDER BY {alias}",
            (track_id, after),
        ).fetchall()
        return fetched, None

    def points_before(self, table: str, track_id: str, column: str, cursor: int) -> int:
        conn, name, alias = self._reads(table)
        count: int = conn.execute(
            f"SELECT count(*) FROM {name} WHERE {quote(TRACK_ID)} = ? AND {alias} <= ? AND {quote(column)} IS NOT NULL",
            (track_id, cursor),
        ).fetchone()[0]
        return count

    def run_range(
        self, table: str, track_id: str, y_name: str, x_name: str, low: float, high: float, columns: int
    ) -> tuple[list[tuple[Any, Any]], int]:
        conn, name, _ = self._reads(table)
        tid, y, x = quote(TRACK_ID), quote(y_name), quote(x_name)
        numbers = f"typeof({y}) IN ('integer', 'real') AND typeof({x}) IN ('integer', 'real')"
        where = f"{tid} = ? AND {x} BETWEEN ? AND ? AND {numbers}"
        args = (track_id, low, high)
        # Few points in the range: every one (the scan stops past 2 * columns of them).
        few = conn.execute(f"SELECT {x}, {y} FROM {name} WHERE {where} LIMIT ?", (*args, 2 * columns + 1)).fetchall()
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
                f"SELECT {slot} AS {quote('__slot')}, {x}, {pick}({y}), count(*) FROM {name} WHERE {where} "
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
    conn: Any, table: str, alias: str, track_id: str, y_name: str, x_column: str, after: int, limit: int
) -> tuple[list[tuple[Any, ...]], int] | None:
    """The points the dashboard's downsampling keeps, chosen inside SQLite: (rowid, y, x) of
    the first and last point and of the min and max of each rowid bucket, in rowid order,
    and the number of points. Fetching a million rows into Python costs three times what
    SQLite's aggregates over them cost; each bucket is a range of the ``track_id`` index.
    (SQLite documents that with one min() or max(), the other columns come from that row.)
    None for a run that is small enough to fetch whole, or whose column holds text."""
    tid, y, x = quote(TRACK_ID), quote(y_name), quote(x_column)
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
    run = f"+{tid}" if rows >= DENSE_SPAN * (hi - lo + 1) else tid
    cond = f"{alias} >= ? AND {alias} < ? AND {run} = ? AND {y} IS NOT NULL AND {x} IS NOT NULL"
    lows = f"SELECT {alias}, min({y}), {x}, count(*) FROM {table} WHERE {cond}"
    highs = f"SELECT {alias}, max({y}), {x} FROM {table} WHERE {cond}"
    ends = f"SELECT {alias}, {y}, {x} FROM {table} WHERE {cond} ORDER BY {alias}"
    points: dict[int, tuple[Any, ...]] = {}
    total = 0
    for b in range(buckets):
        start = lo + b * width
        low = conn.execute(lows, (start, start + width, track_id)).fetchone()
        if not low[3]:
            continue
        total += low[3]
        points[low[0]] = low[:3]
        high = conn.execute(highs, (start, start + width, track_id)).fetchone()
        points[high[0]] = high
    bounds = (lo, hi + 1, track_id)
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
