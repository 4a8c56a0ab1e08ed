"""Runs on a PostgreSQL store (first slice).

- The lifecycle and predictions side tables are written on the server
  (:mod:`xetrack.store.pg_side`), in the same layout as on SQLite.
- ``runs``/``search``/``compare``/``aggregate``/``history``/``predictions`` run the
  very SQL they run on a SQLite file, over an in-memory SQLite copy of one table and
  its side rows, made for the call. That gives the SQLite engine's answers exactly
  (values, dtypes, status ``dead``), at the price of reading the table whole; a run
  summary kept on the server is the next step (docs/postgres.md).

>>> Reader("postgresql://ana@db-host/exp").runs()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import socket
from typing import Any

from . import meta
from .schema import quote
from .store.base import Engine


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


def sqlite_copy(engine: Any, table: str) -> Any:
    """An in-memory SQLite engine holding ``table`` (its values as logged, each column
    declared with its logical type) and the table's lifecycle and prediction rows."""
    from .runs import PREDICTIONS_DDL, PREDICTIONS_TABLE, RUNS_DDL, RUNS_TABLE
    from .store import pg_side
    from .store.sqlite import SQLiteEngine

    names, types, values = engine.fetch(table)
    runs = pg_side.side_rows(engine, pg_side.RUNS_TABLE, table)
    predictions = pg_side.side_rows(engine, pg_side.PREDICTIONS_TABLE, table)
    memory = SQLiteEngine(None)

    def fill(conn: Any) -> None:
        declared = ", ".join(f"{quote(n)} {t}".rstrip() for n, t in zip(names, types))
        conn.execute(f"CREATE TABLE {quote(table)} ({declared})")
        marks = ", ".join("?" for _ in names)
        conn.executemany(f"INSERT INTO {quote(table)} VALUES ({marks})", values.tolist())
        if runs:
            conn.execute(RUNS_DDL)
            conn.executemany(f"INSERT INTO {quote(RUNS_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", runs)
        if predictions:
            conn.execute(PREDICTIONS_DDL)
            conn.executemany(f"INSERT INTO {quote(PREDICTIONS_TABLE)} VALUES (?, ?, ?, ?, ?, ?)", predictions)

    def fill_meta(conn: Any) -> None:  # tags, run names and recorded kinds, as runs() reads them
        for name in (meta.TAGS, meta.NAMES, meta.KINDS):
            rows = meta._read(engine, name, f'SELECT * FROM {quote(name)} WHERE "table" = ?', (table,))
            if rows:
                conn.execute(meta._DDL[name])
                marks = ", ".join("?" for _ in rows[0])
                conn.executemany(f"INSERT INTO {quote(name)} VALUES ({marks})", rows)

    memory.write(fill)
    memory.write(fill_meta)
    return memory
