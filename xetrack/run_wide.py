"""The run queries of a table too wide for one SELECT: spilled keys, or more columns than
SQLite lets a result have (:mod:`xetrack.store.sqlite.spill`). The queries themselves are
methods of :class:`xetrack.run_reads.RunReads`; these are their helpers.

``runs()`` of such a table is the summary SELECT in parts of at most ``PART_COLUMNS``
params and metrics each (one row per run, in runs() order, in every part), put side by
side, and the spilled keys' per-run values (params: their one value; metrics: the
``agg`` of their values), each after its kind. ``search()``, ``compare()`` and
``aggregate()`` then run the same WHERE, ORDER BY and GROUP BY over an in-memory table of
just the columns they name, taken from that frame: the same SQLite comparisons, any width.

>>> RunQueries(engine, "default").runs()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: What these functions take: a :class:`xetrack.run_queries.RunQueries` (not imported: it
#: imports this module), typed loosely.
RunQueries = Any

#: Params and metrics per SELECT: with the base and name/tag columns, under SQLite's 2,000.
PART_COLUMNS = 1_500


def is_wide(q: RunQueries) -> bool:
    """Whether the table needs this module: spilled keys, or too many columns for one SELECT."""
    return bool(q.spilled()) or len(q.columns()) > PART_COLUMNS


def tags_start(frame: pd.DataFrame) -> int:
    """Where the tag columns (``tags.``) begin: the end of the params and metrics."""
    for i, c in enumerate(frame.columns):
        if str(c).startswith("tags."):
            return i
    return len(frame.columns)


def memory_of(q: RunQueries, frame: pd.DataFrame, columns: Sequence[str]) -> Any:
    """An in-memory table ``s`` of ``frame``'s ``columns`` (and ``start``, ``track_id``,
    and the row's position as ``?i``), values as SQLite compares them."""
    chosen = list(dict.fromkeys([*columns, "start", "track_id"]))
    data = [_sql_values(frame[c]) for c in chosen]
    rows = list(zip(range(len(frame)), *data))
    return q.sql.MemoryRuns(["?i", *chosen], rows)


def _sql_values(column: pd.Series) -> list[Any]:
    """A column's values as SQLite would hold them: NULL for missing, plain Python types."""
    values = column.astype(object).tolist()
    out: list[Any] = []
    for v in values:
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            out.append(v)
    return out


def named(sql: str, columns: Sequence[str]) -> list[str]:
    """The ``columns`` that the SQL text ``sql`` names (quoted, as the condition and order
    parsers write them)."""
    from .schema import quote

    return [c for c in columns if quote(str(c)) in sql]


__all__ = ["PART_COLUMNS", "is_wide", "memory_of", "named", "tags_start"]
