"""Run queries on a PostgreSQL store: an in-memory SQLite copy of one table.

``runs``/``search``/``compare``/``aggregate``/``history``/``predictions`` run the very
SQL they run on a SQLite file (:mod:`.sqlite_run_sql`), over an in-memory SQLite copy of
one table and its side rows, made for the call; keys past the table's columns are spilled
in the copy as in a file (:mod:`.sqlite.spill`), under the rows' ids. That gives the SQLite engine's answers
exactly (values, dtypes, status ``dead``), at the price of reading the table once per
process; later calls read only the rows logged since (:mod:`.pg_mirror`). The copy
keeps no run summary. Its twin, :mod:`.sqlite_run_copy`, hands a SQLite file over as is.

>>> run_source(open_engine("postgresql://ana@db-host/exp"), "default")  # doctest: +SKIP
(<xetrack.store.sqlite.engine.SQLiteEngine object at 0x...>, False)
"""

from __future__ import annotations

import threading
from typing import Any

from ..schema import TRACK_ID, quote
from .tables import KINDS, PREDICTIONS, RUN_NAMES, RUNS, SPILL, TAGS


class _Copy:
    """One table's rows as this process last read them, in an in-memory SQLite database."""

    def __init__(self) -> None:
        from .sqlite.engine import SQLiteEngine

        self.engine = SQLiteEngine(None)
        self.lock = threading.Lock()  # one refresh at a time (the dashboard serves from threads)
        self.seen: Any = None  # the description of the rows it holds (store/postgres/mirror.py)
        self.upto = 0  # the last row it holds


#: (the store's URL, table) -> its copy. A process that asks again fetches only newer rows.
_COPIES: dict[tuple[str, str], _Copy] = {}
_MAX_COPIES = 8


def run_source(engine: Any, table: str) -> tuple[Any, bool]:
    """(the SQLite engine the run queries of ``table`` read: the copy of
    :func:`sqlite_copy`; False: it keeps no run summary)."""
    return sqlite_copy(engine, table), False


def sqlite_copy(engine: Any, table: str) -> Any:
    """An in-memory SQLite engine holding ``table`` (its values as logged, each column
    declared with its logical type) and the table's lifecycle, prediction and metadata rows.

    The copy is kept per process: a later call reads only the rows logged since, unless
    the rows it holds changed (an update, a delete, a new column, a reset), which makes it
    read the table again (:mod:`xetrack.store.postgres.mirror`). The side tables, one row per
    run at most, are read whole every time."""
    from .postgres.mirror import read_since

    key = (engine._url, table)
    copy = _COPIES.pop(key, None) or _Copy()
    _COPIES[key] = copy  # the newest last
    while len(_COPIES) > _MAX_COPIES:
        _COPIES.pop(next(iter(_COPIES)))
    with copy.lock:
        return _refresh(engine, table, key, copy, read_since)


def _refresh(engine: Any, table: str, key: tuple[str, str], copy: _Copy, read_since: Any) -> Any:
    from .meta_sql import DDL as META_DDL
    from .postgres import meta as pg_meta
    from .postgres import side as pg_side
    from .sqlite import spill as sqlite_spill
    from .sqlite.column_types import forget_table, record_types
    from .sqlite.ddl import PREDICTIONS_DDL, RUNS_DDL

    kept, described, last, (names, types, values, spilled) = read_since(engine, table, copy.seen, copy.upto)
    runs = pg_side.side_rows(engine, RUNS, table)
    predictions = pg_side.side_rows(engine, PREDICTIONS, table)
    extra = {
        name: pg_meta.read(engine, name, f'SELECT * FROM {quote(name)} WHERE "table" = ?', (table,))
        for name in (TAGS, RUN_NAMES, KINDS)
    }

    def fill(conn: Any) -> None:
        linked = spilled is not None  # keys past the columns: the copy spills them as a file does
        if not kept:
            conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            sqlite_spill.drop(conn, table)
            forget_table(conn, table)
            declared = ", ".join(f"{quote(n)} {t}".rstrip() for n, t in zip(names, types))
            conn.execute(f"CREATE TABLE {quote(table)} ({declared})")
            if TRACK_ID in names:  # one run's rows through an index, as in the file
                conn.execute(f"CREATE INDEX {quote('ix_' + table + '_track_id')} ON {quote(table)} ({quote(TRACK_ID)})")
        if linked:
            if not sqlite_spill.spilled_keys(conn, table):  # the copy holds no link column yet
                sqlite_spill.add_link(conn, table)
            sqlite_spill.register(conn, table, spilled.keys)  # new keys after the ones it holds
            record_types(conn, table, dict(zip(spilled.keys, spilled.types)), {})
        if values is not None:
            rows = values.tolist()
            if linked:
                into = ", ".join(quote(n) for n in [*names, sqlite_spill.LINK])
                marks = ", ".join("?" for _ in range(len(names) + 1))
                conn.executemany(
                    f"INSERT INTO {quote(table)} ({into}) VALUES ({marks})",
                    [(*row, link) for row, link in zip(rows, spilled.links)],
                )
                conn.executemany(
                    f'INSERT OR REPLACE INTO {quote(SPILL)} ("tbl", "row", "key", "value") VALUES (?, ?, ?, ?)',
                    [(table, *found) for found in spilled.found],
                )
            else:
                marks = ", ".join("?" for _ in names)
                conn.executemany(f"INSERT INTO {quote(table)} VALUES ({marks})", rows)
        for name, ddl, rows in (
            (RUNS, RUNS_DDL, runs),
            (PREDICTIONS, PREDICTIONS_DDL, predictions),
            *((n, META_DDL[n], r) for n, r in extra.items()),
        ):
            conn.execute(f"DROP TABLE IF EXISTS {quote(name)}")
            if rows:
                conn.execute(ddl)
                conn.executemany(f"INSERT INTO {quote(name)} VALUES ({', '.join('?' for _ in rows[0])})", rows)

    try:
        copy.engine.write(fill)
    except BaseException:
        _COPIES.pop(key, None)  # half-filled: the next call starts over
        raise
    copy.seen, copy.upto = described, last
    return copy.engine
