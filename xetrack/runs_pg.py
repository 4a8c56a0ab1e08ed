"""Runs on a PostgreSQL store (first slice).

- The lifecycle and predictions side tables are written on the server
  (:mod:`xetrack.store.pg_side`), in the same layout as on SQLite.
- ``runs``/``search``/``compare``/``aggregate``/``history``/``predictions`` run the
  very SQL they run on a SQLite file, over an in-memory SQLite copy of one table and
  its side rows (:mod:`xetrack.store.pg_run_copy`). That gives the SQLite engine's
  answers exactly (values, dtypes, status ``dead``), at the price of reading the table
  whole; a run summary kept on the server is the next step (docs/postgres.md).

>>> Reader("postgresql://ana@db-host/exp").runs()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import socket
from typing import Any

from .store.base import Engine
# The in-memory SQLite copy behind the run queries moved to store/pg_run_copy.py; still
# importable from here, as before.
from .store.pg_run_copy import _COPIES, _MAX_COPIES, _Copy, _refresh, sqlite_copy  # noqa: F401


def is_postgres(engine: Engine) -> bool:
    return engine.dialect == "postgres"


def mark_started(engine: Any, table: str, track_id: str) -> None:
    from .runs import now
    from .store import pg_side

    pg_side.mark_started(engine, table, track_id, now(), os.getpid(), socket.gethostname())


def mark_ended(engine: Any, table: str, track_id: str, status: str, error: str | None, started_as: str | None) -> None:
    from .runs import now
    from .store import pg_side

    pg_side.mark_ended(engine, table, track_id, status, error, started_as, now(), os.getpid(), socket.gethostname())
