"""The run summary's SQL on a SQLite file: side tables, triggers, fold, watermark.

What the summary holds and when it is brought up to date is told in
:mod:`xetrack.summary`, which keeps the engine-neutral parts (the switch, the progress
bar, the per-process cache of frames). Everything here runs on the engine's own
connection (``engine.reading()``) or on a ``sqlite3`` connection the caller holds inside
a write transaction; every table name is quoted and every value bound.

>>> engine = open_engine(IN_MEMORY)  # doctest: +SKIP
>>> refresh(engine, "default", True, lambda built: False, lambda step: None)  # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...schema import INTERNAL_PREFIX, TIMESTAMP, TRACK_ID, quote
from ..base import has_table
from ..tables import RUNS, SUMMARY_COLUMNS, SUMMARY_DIRTY, SUMMARY_RUNS, SUMMARY_STATE
from .busy import immediate
from .signature import signature

#: Rows per fold: bounds the memory of a first build.
CHUNK_ROWS = 200_000
#: Columns per fold query: 6 aggregates each stay under SQLite's result-column limit.
COLUMN_BATCH = 150

STATE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(SUMMARY_STATE)} ("
    '"tbl" TEXT PRIMARY KEY, "watermark" INTEGER NOT NULL, "columns" TEXT NOT NULL, '
    '"gen" INTEGER NOT NULL DEFAULT 0, "floor" INTEGER)'
)
RUN_STATS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(SUMMARY_RUNS)} ("
    '"tbl" TEXT NOT NULL, "track_id" NOT NULL, "events" INTEGER, "t0", "t1", '
    'PRIMARY KEY ("tbl", "track_id")) WITHOUT ROWID'
)
COLUMN_STATS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(SUMMARY_COLUMNS)} ("
    '"tbl" TEXT NOT NULL, "track_id" NOT NULL, "col" TEXT NOT NULL, "n" INTEGER, '
    '"mn", "mx", "tot", "fr" INTEGER, "fv", "lr" INTEGER, "lv", '
    'PRIMARY KEY ("tbl", "track_id", "col")) WITHOUT ROWID'
)
DIRTY_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(SUMMARY_DIRTY)} ("
    '"tbl" TEXT NOT NULL, "track_id" NOT NULL, PRIMARY KEY ("tbl", "track_id")) WITHOUT ROWID'
)
#: Changes of xetrack_runs (status, start, end) bump every table's gen: cached frames go stale.
RUNS_SIDE_TRIGGER = INTERNAL_PREFIX + "summary_runs_side_{op}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def trigger_names(table: str) -> tuple[str, str]:
    return (f"{INTERNAL_PREFIX}dirty_u_{table}", f"{INTERNAL_PREFIX}dirty_d_{table}")


def _trigger_ddl(table: str) -> list[str]:
    """The UPDATE and DELETE triggers that mark a table's changed runs dirty.

    A trigger body takes no bound parameters: the table name is an escaped literal."""
    upd, dele = trigger_names(table)
    t, d, lit = quote(table), quote(SUMMARY_DIRTY), _literal(table)
    top = f"(SELECT coalesce(max(rowid), 0) FROM {t})"
    mark = (
        f'INSERT OR IGNORE INTO {d} ("tbl", "track_id") '
        f"SELECT {lit}, {{v}}.{quote(TRACK_ID)} WHERE {{v}}.{quote(TRACK_ID)} IS NOT NULL;"
    )
    return [
        f"CREATE TRIGGER IF NOT EXISTS {quote(upd)} AFTER UPDATE ON {t} BEGIN "
        f"{mark.format(v='OLD')} {mark.format(v='NEW')} END",
        f"CREATE TRIGGER IF NOT EXISTS {quote(dele)} AFTER DELETE ON {t} BEGIN {mark.format(v='OLD')} "
        # Deleting the highest rows lets SQLite hand their rowids out again: remember the
        # lowest the largest rowid fell to, so that the rows reusing them are folded in.
        f'UPDATE {quote(SUMMARY_STATE)} SET "floor" = min(coalesce("floor", "watermark"), {top}) '
        f'WHERE "tbl" = {lit} AND {top} < "watermark"; END',
    ]


def _runs_side_ddl() -> list[str]:
    from .ddl import RUNS_DDL

    bump = f'UPDATE {quote(SUMMARY_STATE)} SET "gen" = "gen" + 1;'
    return [RUNS_DDL] + [
        f"CREATE TRIGGER IF NOT EXISTS {quote(RUNS_SIDE_TRIGGER.format(op=op.lower()))} AFTER {op} "
        f"ON {quote(RUNS)} BEGIN {bump} END"
        for op in ("INSERT", "UPDATE", "DELETE")
    ]


def _fold(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], where: str, binds: Sequence[Any], merge: bool
) -> int:
    """Fold the rows matching ``where`` into the summary, ``merge``-ing with what is there
    (rows past the watermark), or as the whole of each run (dirty runs, already cleared).
    Returns the number of runs touched."""
    t, tid, rid = quote(table), quote(TRACK_ID), "rowid"
    cs = quote(SUMMARY_COLUMNS)
    upsert = (
        f'INSERT INTO {cs} ("tbl", "track_id", "col", "n", "mn", "mx", "tot", "fr", "fv", "lr", "lv") '
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    if merge:
        upsert += (
            ' ON CONFLICT ("tbl", "track_id", "col") DO UPDATE SET "n" = "n" + excluded."n", '
            '"mn" = CASE WHEN excluded."mn" < "mn" THEN excluded."mn" ELSE "mn" END, '
            '"mx" = CASE WHEN excluded."mx" > "mx" THEN excluded."mx" ELSE "mx" END, '
            '"tot" = "tot" + excluded."tot", '
            '"lr" = excluded."lr", "lv" = excluded."lv"'
        )
    run_rows: list[tuple[Any, ...]] = []
    # The first query also gives each run's events and first and last timestamp: one
    # pass over the rows less than a separate GROUP BY for them.
    batches = [columns[i : i + COLUMN_BATCH] for i in range(0, len(columns), COLUMN_BATCH)] or [[]]
    for number, batch in enumerate(batches):
        head = f"{tid}, count(*), min({quote(TIMESTAMP)}), max({quote(TIMESTAMP)})" if number == 0 else tid
        skip = 4 if number == 0 else 1
        aggs, looks = [head], []
        for i, c in enumerate(batch):
            q = quote(c)
            aggs.append(
                f"count({q}) AS n{i}, min({q}), max({q}), total({q}), "
                f"min({rid}) FILTER (WHERE {q} IS NOT NULL) AS f{i}, max({rid}) FILTER (WHERE {q} IS NOT NULL) AS l{i}"
            )
            looks.append(f"(SELECT {q} FROM {t} WHERE {rid} = g.f{i}), (SELECT {q} FROM {t} WHERE {rid} = g.l{i})")
        sql = (
            f"SELECT g.*{''.join(', ' + x for x in looks)} FROM (SELECT {', '.join(aggs)} FROM {t} "
            f"WHERE {where} AND {tid} IS NOT NULL GROUP BY {tid}) AS g"
        )
        k = len(batch)
        out = []
        for row in conn.execute(sql, binds):
            run = row[0]
            if number == 0:
                run_rows.append(row[:4])
            for i, c in enumerate(batch):
                n, mn, mx, tot, fr, lr = row[skip + 6 * i : skip + 6 + 6 * i]
                if n:
                    out.append(
                        (
                            table,
                            run,
                            c,
                            n,
                            mn,
                            mx,
                            tot,
                            fr,
                            row[skip + 6 * k + 2 * i],
                            lr,
                            row[skip + 1 + 6 * k + 2 * i],
                        )
                    )
        conn.executemany(upsert, out)
    if not run_rows:
        return 0
    rs = quote(SUMMARY_RUNS)
    conn.executemany(
        f'INSERT INTO {rs} ("tbl", "track_id", "events", "t0", "t1") VALUES (?, ?, ?, ?, ?) '
        'ON CONFLICT ("tbl", "track_id") DO UPDATE SET "events" = "events" + excluded."events", '
        '"t0" = CASE WHEN "t0" IS NULL OR excluded."t0" < "t0" THEN excluded."t0" ELSE "t0" END, '
        '"t1" = CASE WHEN "t1" IS NULL OR excluded."t1" > "t1" THEN excluded."t1" ELSE "t1" END',
        [(table, *r) for r in run_rows],
    )
    return len(run_rows)


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, Any]]:
    return [(n, d) for n, d in conn.execute("SELECT name, dflt_value FROM pragma_table_info(?)", (table,))]


def _clear(conn: sqlite3.Connection, table: str) -> None:
    for name in (SUMMARY_RUNS, SUMMARY_COLUMNS, SUMMARY_DIRTY, SUMMARY_STATE):
        conn.execute(f'DELETE FROM {quote(name)} WHERE "tbl" = ?', (table,))


def _ensure_side_tables(conn: sqlite3.Connection) -> None:
    for ddl in (STATE_DDL, RUN_STATS_DDL, COLUMN_STATS_DDL, DIRTY_DDL, *_runs_side_ddl()):
        conn.execute(ddl)


def update(
    conn: sqlite3.Connection, table: str, progress: bool = True, delta: list[Any] | None = None
) -> tuple[int, int, set[Any]]:
    """Inside a write transaction: bring ``table``'s summary up to date.

    Returns (watermark, gen, the runs recomputed or folded; None in the set when
    every run may have changed, after a rebuild). With ``delta``, appends
    (gen before, gen after, those runs, whether the change was rows appended to the
    same columns only: no rebuild, no dirty run, no new column)."""
    _ensure_side_tables(conn)
    cols = _columns(conn, table)
    names = [n for n, _ in cols if n not in (TRACK_ID,)]
    folded = [n for n in names if n != TIMESTAMP]
    state = conn.execute(
        f'SELECT "watermark", "columns", "gen", "floor" FROM {quote(SUMMARY_STATE)} WHERE "tbl" = ?', (table,)
    ).fetchone()
    hi = conn.execute(f"SELECT max(rowid) FROM {quote(table)}").fetchone()[0] or 0
    touched: set[Any] = set()
    changed_floor = False
    rebuild = state is None
    if not rebuild:
        wm, known, gen = state[0], json.loads(state[1]), state[2]
        if state[3] is not None:  # rowids above the floor were given out again: fold from there
            wm = min(wm, state[3])
            changed_floor = True
        upd, dele = trigger_names(table)
        n_triggers = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND name IN (?, ?)",
            (table, upd, dele),
        ).fetchone()[0]
        defaults = dict(cols)
        new = [n for n in folded if n not in set(known)]
        rebuild = (
            n_triggers != 2 or hi < wm or not set(known) <= set(folded) or any(defaults[n] is not None for n in new)
        )
    if rebuild:
        known = []
        # A new state (the summary was dropped: gc(vacuum=True), or never built) starts its
        # gen at the clock, past any gen this file had, so that no frame cached at an old
        # gen (or change recorded since one) is taken for the new summary's.
        gen = (state[2] + 1) if state is not None else time.time_ns()
        _clear(conn, table)
        for ddl in _trigger_ddl(table):
            conn.execute(ddl)
        wm = 0
        touched.add(None)
    changed = rebuild or changed_floor or known != folded
    if hi > wm:
        bar = None
        if progress and wm == 0:
            from ...progress import Progress

            bar = Progress(hi - wm, f"summarizing {table}")
        lo = wm
        while lo < hi:
            top = min(lo + CHUNK_ROWS, hi)
            _fold(conn, table, folded, "rowid > ? AND rowid <= ?", (lo, top), merge=True)
            lo = top
            if bar is not None:
                bar.update(lo - wm)
        if bar is not None:
            bar.close()
        if None not in touched:
            touched.update(
                r
                for (r,) in conn.execute(
                    f"SELECT DISTINCT {quote(TRACK_ID)} FROM {quote(table)} WHERE rowid > ? AND rowid <= ?", (wm, hi)
                )
            )
        changed = True
    dirty = [r for (r,) in conn.execute(f'SELECT "track_id" FROM {quote(SUMMARY_DIRTY)} WHERE "tbl" = ?', (table,))]
    if dirty:
        for run in dirty:  # recomputed whole, through the track_id index
            conn.execute(f'DELETE FROM {quote(SUMMARY_RUNS)} WHERE "tbl" = ? AND "track_id" = ?', (table, run))
            conn.execute(f'DELETE FROM {quote(SUMMARY_COLUMNS)} WHERE "tbl" = ? AND "track_id" = ?', (table, run))
            _fold(conn, table, folded, f"{quote(TRACK_ID)} = ? AND rowid <= ?", (run, hi), merge=False)
        conn.execute(f'DELETE FROM {quote(SUMMARY_DIRTY)} WHERE "tbl" = ?', (table,))
        touched.update(dirty)
        changed = True
    appended = not (rebuild or changed_floor or dirty or known != folded)
    if changed:
        if delta is not None:
            delta.append((gen, gen + 1, touched, appended))
        gen += 1
        conn.execute(
            f'INSERT INTO {quote(SUMMARY_STATE)} ("tbl", "watermark", "columns", "gen", "floor") '
            "VALUES (?, ?, ?, ?, NULL) "
            'ON CONFLICT ("tbl") DO UPDATE SET "watermark" = excluded."watermark", '
            '"columns" = excluded."columns", "gen" = excluded."gen", "floor" = NULL',
            (table, hi, json.dumps(folded), gen),
        )
    return hi, gen, touched


def drop(conn: sqlite3.Connection, table: str | None = None) -> None:
    """Forget the summary of ``table`` (every table when None): the next read rebuilds it.

    Needed after a VACUUM by another tool, which may renumber rowids."""
    names = [
        r for (r,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (SUMMARY_STATE,))
    ]
    if not names:
        return
    if table is None:
        for name in (SUMMARY_RUNS, SUMMARY_COLUMNS, SUMMARY_DIRTY, SUMMARY_STATE):
            conn.execute(f"DELETE FROM {quote(name)}")
    else:
        _clear(conn, table)


def pending(conn: sqlite3.Connection, table: str) -> bool:
    """Cheap, read-only: does ``table``'s summary need :func:`update`? (No write lock.)"""
    try:
        state = conn.execute(
            f'SELECT "watermark", "columns", "floor" FROM {quote(SUMMARY_STATE)} WHERE "tbl" = ?', (table,)
        ).fetchone()
    except sqlite3.OperationalError:
        return True
    if state is None or state[2] is not None:
        return True
    hi = conn.execute(f"SELECT max(rowid) FROM {quote(table)}").fetchone()[0] or 0
    if hi != state[0]:
        return True
    if conn.execute(f'SELECT 1 FROM {quote(SUMMARY_DIRTY)} WHERE "tbl" = ? LIMIT 1', (table,)).fetchone():
        return True
    upd, dele = trigger_names(table)
    n = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND name IN (?, ?)",
        (table, upd, dele),
    ).fetchone()[0]
    if n != 2:
        return True
    cols = [c for c, _ in _columns(conn, table) if c not in (TRACK_ID, TIMESTAMP)]
    folded: list[str] = json.loads(state[1])
    return cols != folded


def usable(conn: sqlite3.Connection, table: str) -> bool:
    """The summary answers for tables with a ``track_id`` column and no NULL track_id
    (a NULL run is left to the plain SQL)."""
    cols = {c for c, _ in _columns(conn, table)}
    if TRACK_ID not in cols or TIMESTAMP not in cols:
        return False
    return conn.execute(f"SELECT 1 FROM {quote(table)} WHERE {quote(TRACK_ID)} IS NULL LIMIT 1").fetchone() is None


def varying_in(engine: Any, table: str, runs: Sequence[Any]) -> dict[str, Any]:
    """:func:`varying` over ``runs`` only."""
    marks = ", ".join("?" for _ in runs)
    sql = (
        f'SELECT "col", max("mn" <> "mx") FROM {quote(SUMMARY_COLUMNS)} WHERE "tbl" = ? '
        f'AND "track_id" IN ({marks}) GROUP BY "col"'
    )
    return dict(_rows(engine, sql, (table, *runs)))


def varying(engine: Any, table: str) -> dict[str, Any]:
    """Column -> whether some run holds more than one distinct non-NULL value in it
    (``max(min <> max)`` over the runs, as the plain SQL decides it)."""
    sql = f'SELECT "col", max("mn" <> "mx") FROM {quote(SUMMARY_COLUMNS)} WHERE "tbl" = ? GROUP BY "col"'
    return dict(_rows(engine, sql, (table,)))


def _rows(engine: Any, sql: str, binds: Sequence[Any]) -> list[tuple[Any, ...]]:
    with engine.reading() as conn:
        rows: list[tuple[Any, ...]] = conn.execute(sql, binds).fetchall()
    return rows


#: How long a read waits for the write lock to bring the summary up to date before it
#: answers with the plain SQL instead (a reader never waits out a long write).
LOCK_WAIT_MS = 2000


def refresh(
    engine: Any,
    table: str,
    persist: bool,
    first_ask: Callable[[Callable[[], bool]], bool],
    committed: Callable[[list[Any]], None],
) -> bool:
    """Bring ``table``'s summary up to date; False when it cannot be used (the plain SQL
    answers): a read-only file, a table without ``track_id``, a NULL track_id, or the
    write lock held by another process for longer than ``LOCK_WAIT_MS``. Without
    ``persist`` only an up-to-date summary is used. ``first_ask(built)`` says whether
    this call answers with the plain SQL although no summary is built yet (``built()``
    tells whether one is); ``committed(step)`` gets :func:`update`'s delta once it is
    committed, still under the engine's lock."""
    with engine.reading() as conn:
        try:
            if not usable(conn, table):
                return False
            if not pending(conn, table):
                return True
            if not persist:
                return False
            if first_ask(lambda: _built(conn, table)):
                return False
            conn.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
            try:
                step: list[Any] = []
                with immediate(conn):
                    update(conn, table, delta=step)
                committed(step)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(engine.timeout * 1000)}")
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "readonly" in text or "read-only" in text or "locked" in text or "busy" in text:
                return False
            raise
    return True


def _built(conn: sqlite3.Connection, table: str) -> bool:
    """Does the file hold a summary of ``table`` (up to date or not)?"""
    try:
        return conn.execute(f'SELECT 1 FROM {quote(SUMMARY_STATE)} WHERE "tbl" = ?', (table,)).fetchone() is not None
    except sqlite3.OperationalError:  # no summary table in the file yet
        return False


def token(engine: Any) -> tuple[Any, ...]:
    """Changes whenever anything in the file could have changed. For a file: its
    :func:`~xetrack.store.sqlite.signature.signature`, read without a connection, so that
    a new Reader of an unchanged file finds what an earlier one cached. In memory: another
    connection's commit (``PRAGMA data_version``), this connection's rows
    (``total_changes``) or schema (``PRAGMA schema_version``); and a reopened connection."""
    path = getattr(engine, "path", None)
    if path is not None:
        found = signature(path)
        if found is not None:
            return ("file", found)
    with engine.reading() as conn:
        return (
            id(conn),
            conn,  # the object itself: an id is only unique while it lives
            conn.execute("PRAGMA data_version").fetchone()[0],
            conn.total_changes,
            conn.execute("PRAGMA schema_version").fetchone()[0],
        )


def generation(engine: Any, table: str) -> Any:
    """The persisted summary's gen for ``table`` (None without one): equal gens mean
    equal answers, whichever connection brought the summary up to date."""
    with engine.reading() as conn:
        try:
            row = conn.execute(f'SELECT "gen" FROM {quote(SUMMARY_STATE)} WHERE "tbl" = ?', (table,)).fetchone()
        except sqlite3.OperationalError:
            return None
    return None if row is None else row[0]


def bump(conn: sqlite3.Connection) -> None:
    """Bump every table's summary gen: cached runs()/search() frames go stale, as they do
    on a change of ``xetrack_runs``. Without a summary there is nothing cached by gen."""
    if has_table(conn, SUMMARY_STATE):
        conn.execute(f'UPDATE {quote(SUMMARY_STATE)} SET "gen" = "gen" + 1')
