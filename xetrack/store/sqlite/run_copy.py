"""Run queries on a SQLite file: the file itself, with its run summary.

The twin of :mod:`.pg_run_copy` (a PostgreSQL store is read through an in-memory SQLite
copy of the table): :func:`run_source` gives the SQLite engine that the run queries
(:mod:`.sqlite_run_sql`) read. The duckdb engine reads the same file; SKIP_INSERT
has none.

>>> from xetrack.store import IN_MEMORY, open_engine
>>> run_source(open_engine(IN_MEMORY), "default")[1]
True
"""

from __future__ import annotations

from typing import Any


def run_source(engine: Any, table: str) -> tuple[Any, bool]:
    """(the engine when it keeps a SQLite file, else None; True: the run summary of
    :mod:`xetrack.summary` may answer)."""
    from .engine import sqlite_of

    return sqlite_of(engine), True
