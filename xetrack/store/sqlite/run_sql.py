"""The SQL of ``Reader.runs/search/compare/aggregate/history/predictions`` on a SQLite file.

:class:`xetrack.run_queries.RunQueries` decides (params or metrics, summary or plain
SQL, what is cached) and builds the frames; the functions here build its SELECTs and
run them on the engine's own connection, returning plain rows. A PostgreSQL store is
read through an in-memory SQLite copy of the table (:mod:`.pg_run_copy`), so this is
the only dialect these queries have. Identifiers are quoted names the caller checked
against the table's columns; every value is bound.

>>> engine = open_engine("exp.db")  # doctest: +SKIP
>>> sql, binds = select_rows("default", "last", ["lr"], ["loss"], {"lr": "lr", "loss": "loss"}, True)  # doctest: +SKIP
>>> query(engine, sql + ' ORDER BY "start", "track_id"', binds)  # doctest: +SKIP
(['track_id', 'status', 'start', 'end', 'duration', 'events', 'lr', 'loss'], [...])
"""

from __future__ import annotations

import math
import socket
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ...schema import TIMESTAMP, TRACK_ID, quote
from ..base import has_table
from ..meta_sql import RUN_NAME, TAG_PREFIX
from ..tables import PREDICTIONS, RUN_NAMES, RUNS, SPILL, SUMMARY_COLUMNS, SUMMARY_RUNS, TAGS
from .spill import LINK

#: A run's aggregation over its rows -> the SQL aggregate (``last``/``first``: by rowid).
AGGS = {"last": None, "first": None, "min": "min", "max": "max", "mean": "avg"}
#: ``aggregate()``'s aggregations over runs -> their SQL (``std``: two passes, below).
GROUP_AGGS = {
    "mean": "avg({m})",
    "min": "min({m})",
    "max": "max({m})",
    "count": "count({m})",
    "sum": "sum({m})",
    "std": None,
}
ALIVE_FN = "xetrack_pid_alive"
#: The order of runs(): by start, ties by track_id.
RUN_ORDER = '"start", "track_id"'
#: The lifecycle and predictions side tables (:mod:`xetrack.runs`).


def query(engine: Any, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of one SELECT on the engine's connection, which knows
    ``xetrack_pid_alive(pid)`` (is that process of this host alive?)."""
    with engine.reading() as conn:
        conn.create_function(ALIVE_FN, 1, _pid_alive, deterministic=False)
        cursor = conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return names, cursor.fetchall()


def running_pids(engine: Any, table: str) -> tuple[int, ...]:
    """The pids of this host's runs of ``table`` that the lifecycle table calls running:
    the processes whose life decides whether runs() says ``running`` or ``dead``."""
    if not has(engine, RUNS):
        return ()
    sql = (
        f'SELECT DISTINCT "pid" FROM {quote(RUNS)} '
        'WHERE "table" = ? AND "status" = ? AND "host" = ? AND "pid" IS NOT NULL'
    )
    _, rows = query(engine, sql, [table, "running", socket.gethostname()])
    return tuple(sorted(int(r[0]) for r in rows))


def has(engine: Any, name: str) -> bool:
    """Does the file hold a table ``name``?"""
    with engine.reading() as conn:
        return has_table(conn, name)


def varying(
    engine: Any, table: str, columns: list[str], sample: tuple[int, int] | None = None
) -> tuple[Any, ...] | None:
    """For each of ``columns``, whether some run holds more than one distinct non-NULL
    value in it; with ``sample`` (runs, rows), only among the first ``runs`` runs in the
    ``track_id`` index and the runs of the latest ``rows`` rows. None without runs.

    A wide table is read in parts of :data:`VARYING_PART` columns: a statement holds at
    most 2,000 aggregate terms, and each column takes three."""
    found: list[Any] = []
    for start in range(0, len(columns), VARYING_PART):
        part = _varying(engine, table, columns[start : start + VARYING_PART], sample)
        if part is None:
            return None
        found += part
    return tuple(found)


#: Columns per statement of :func:`varying`.
VARYING_PART = 600


def _varying(engine: Any, table: str, columns: list[str], sample: tuple[int, int] | None) -> tuple[Any, ...] | None:
    t, tid = quote(table), quote(TRACK_ID)
    # min <> max within a run is "more than one distinct non-NULL value", and is
    # much cheaper than count(DISTINCT), which sorts every column of every run.
    varies = ", ".join(f"min({quote(c)}) <> max({quote(c)}) AS c{i}" for i, c in enumerate(columns))
    maxes = ", ".join(f"max(c{i})" for i in range(len(columns)))
    where = ""
    if sample is not None:
        runs = (
            f"SELECT {tid} FROM (SELECT DISTINCT {tid} FROM {t} LIMIT {int(sample[0])}) UNION "
            f"SELECT {tid} FROM (SELECT {tid} FROM {t} ORDER BY rowid DESC LIMIT {int(sample[1])})"
        )
        where = f" WHERE {tid} IN ({runs})"
    _, rows = query(engine, f"SELECT {maxes} FROM (SELECT {varies} FROM {t}{where} GROUP BY {tid})")
    return rows[0] if rows else None


def _runs_source(has_runs: bool) -> str:
    if has_runs:
        return f'(SELECT * FROM {quote(RUNS)} WHERE "table" = ?)'
    return (
        '(SELECT NULL AS "track_id", NULL AS "status", NULL AS "start", NULL AS "end", '
        'NULL AS "pid", NULL AS "host" WHERE 0)'
    )


def _summary_source(
    table: str, params: list[str], metrics: list[str], agg: str, only: Sequence[Any] | None = None
) -> tuple[str, list[Any]]:
    """The per-run subquery ``g`` (track_id, _first, _last, _events, p0.., m0..) read from
    the run summary (:mod:`.sqlite_summary`), with its binds; with ``only``, just those runs."""
    cs = quote(SUMMARY_COLUMNS)
    field = {
        "last": '"lv"',
        "first": '"fv"',
        "min": '"mn"',
        "max": '"mx"',
        "mean": 'CASE WHEN "n" > 0 THEN "tot" / "n" END',
    }[agg]
    parts = ['r."track_id" AS "track_id"', 'r."t0" AS "_first"', 'r."t1" AS "_last"', 'r."events" AS "_events"']
    binds: list[Any] = []
    for i, c in enumerate(params):
        parts.append(f'(SELECT "mx" FROM {cs} WHERE "tbl" = ? AND "track_id" = r."track_id" AND "col" = ?) AS p{i}')
        binds += [table, c]
    for i, c in enumerate(metrics):
        parts.append(f'(SELECT {field} FROM {cs} WHERE "tbl" = ? AND "track_id" = r."track_id" AND "col" = ?) AS m{i}')
        binds += [table, c]
    sql = f'SELECT {", ".join(parts)} FROM {quote(SUMMARY_RUNS)} AS r WHERE r."tbl" = ?'
    if only is not None:
        sql += f' AND r."track_id" IN ({", ".join("?" for _ in only)})'
        return sql, [*binds, table, *only]
    return sql, [*binds, table]


def select_rows(
    table: str,
    agg: str,
    params: list[str],
    metrics: list[str],
    out_names: Mapping[str, str],
    has_runs: bool,
    from_summary: bool = False,
    only: Sequence[Any] | None = None,
    check: Sequence[str] = (),
) -> tuple[str, list[Any]]:
    """(sql, binds) of one SELECT: a row per run with track_id, status, start, end,
    duration, events, then each param and metric under its ``out_names`` name.

    ``has_runs``: the file holds the lifecycle table. ``from_summary``: the per-run values
    come from the run summary (with ``only``, just those runs); else from a GROUP BY over
    the table, with, for each param of ``check``, its min in a column after the others."""
    t, tid = quote(table), quote(TRACK_ID)
    select = [
        f"g.{tid} AS {quote('track_id')}",
        'CASE WHEN r."status" = \'running\' AND r."host" = ? AND NOT '
        f'{ALIVE_FN}(r."pid") THEN \'dead\' ELSE r."status" END AS "status"',
        'coalesce(r."start", g."_first") AS "start"',
        'CASE WHEN r."track_id" IS NULL THEN g."_last" ELSE r."end" END AS "end"',
        '(julianday(coalesce(CASE WHEN r."track_id" IS NULL THEN g."_last" ELSE r."end" END, g."_last"))'
        ' - julianday(coalesce(r."start", g."_first"))) * 86400.0 AS "duration"',
        'g."_events" AS "events"',
    ]
    if from_summary:  # the per-run aggregates come from the summary tables
        source, source_binds = _summary_source(table, params, metrics, agg, only)
        select += [f"g.p{i} AS {quote(out_names[c])}" for i, c in enumerate(params)]
        select += [f"g.m{i} AS {quote(out_names[c])}" for i, c in enumerate(metrics)]
        sql = (
            f"SELECT {', '.join(select)} FROM ({source}) AS g "
            f'LEFT JOIN {_runs_source(has_runs)} AS r ON r."track_id" = g.{tid}'
        )
        return sql, [socket.gethostname(), *source_binds, *([table] if has_runs else [])]
    if only is not None:
        raise ValueError("only: the summary answers only")
    inner = [
        f"{tid}",
        f'min({quote(TIMESTAMP)}) AS "_first"',
        f'max({quote(TIMESTAMP)}) AS "_last"',
        'count(*) AS "_events"',
    ]
    for i, c in enumerate(params):
        inner.append(f"max({quote(c)}) AS p{i}")
        select.append(f"g.p{i} AS {quote(out_names[c])}")
        if c in check:
            inner.append(f"min({quote(c)}) AS q{i}")
    for i, c in enumerate(metrics):
        if agg in ("last", "first"):
            order = "DESC" if agg == "last" else "ASC"
            select.append(
                f"(SELECT {quote(c)} FROM {t} AS x WHERE x.{tid} = g.{tid} AND {quote(c)} IS NOT NULL "
                f"ORDER BY x.rowid {order} LIMIT 1) AS {quote(out_names[c])}"
            )
        else:
            inner.append(f"{AGGS[agg]}({quote(c)}) AS m{i}")
            select.append(f"g.m{i} AS {quote(out_names[c])}")
    select += [f'g.q{i} AS "?check{i}"' for i, c in enumerate(params) if c in check]
    sql = (
        f"SELECT {', '.join(select)} FROM (SELECT {', '.join(inner)} FROM {t} GROUP BY {tid}) AS g "
        f'LEFT JOIN {_runs_source(has_runs)} AS r ON r."track_id" = g.{tid}'
    )
    binds: list[Any] = [socket.gethostname()]
    if has_runs:
        binds.append(table)
    return sql, binds


def runs_rows(engine: Any, select: str, binds: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The rows of a :func:`select_rows` SELECT in runs() order."""
    return query(engine, f"{select} ORDER BY {RUN_ORDER}", binds)


def all_rows(engine: Any, select: str, binds: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The rows of a SELECT in the order it gives them."""
    return query(engine, f"SELECT * FROM ({select}) AS s", binds)


def search_rows(
    engine: Any,
    select: str | None,
    binds: Sequence[Any],
    cond: str | None,
    values: Sequence[Any],
    order: str | None,
    limit: int | None,
    memory: MemoryRuns | None = None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The rows of ``select`` (or of ``memory``'s copy of its rows) where the condition
    ``cond`` holds (its values bound), sorted by ``order`` (else as runs()), at most ``limit``."""
    source = '"s"' if memory is not None else f"({select}) AS s"
    clause = f" WHERE {cond}" if cond is not None else ""
    sql = f"SELECT * FROM {source}{clause} ORDER BY {order or RUN_ORDER}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    if memory is not None:
        return memory.query(sql, values)
    return query(engine, sql, [*binds, *values])


def compare_rows(
    engine: Any, select: str, binds: Sequence[Any], ids: Sequence[Any]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The rows of ``select`` for the runs ``ids``."""
    marks = ", ".join("?" for _ in ids)
    return query(engine, f'SELECT * FROM ({select}) AS s WHERE "track_id" IN ({marks})', [*binds, *ids])


def spilled_stats(engine: Any, table: str) -> list[tuple[Any, ...]]:
    """Per run and spilled key (:mod:`.spill`): (track_id, key, min, max, mean, count) of
    its values. The table's rows drive (CROSS JOIN): a range of the spill's primary key per
    row, a third faster than a lookup of the link per spill row."""
    sql = (
        f'SELECT m.{quote(TRACK_ID)}, s."key", min(s."value"), max(s."value"), avg(s."value"), count(*) '
        f'FROM {quote(table)} AS m CROSS JOIN {quote(SPILL)} AS s ON s."tbl" = ? AND s."row" = m.{quote(LINK)} '
        f'GROUP BY m.{quote(TRACK_ID)}, s."key"'
    )
    return query(engine, sql, [table])[1]


def spilled_ends(engine: Any, table: str, last: bool) -> list[tuple[Any, ...]]:
    """Per run and spilled key: (track_id, key, value) of its last (else first) value
    logged (the row of the largest, else smallest, link)."""
    pick = "max" if last else "min"
    sql = (
        f'SELECT m.{quote(TRACK_ID)}, s."key", s."value", {pick}(s."row") '
        f'FROM {quote(table)} AS m CROSS JOIN {quote(SPILL)} AS s ON s."tbl" = ? AND s."row" = m.{quote(LINK)} '
        f'GROUP BY m.{quote(TRACK_ID)}, s."key"'
    )
    return [r[:3] for r in query(engine, sql, [table])[1]]


def spilled_history_sql(table: str, key: str, step: str | None, track_id: Any, one: bool) -> tuple[str, list[Any]]:
    """:func:`history_sql` of a spilled key: its values joined to their rows, in table order."""
    t, tid = quote(table), quote(TRACK_ID)
    where = "" if track_id is None else f" WHERE {tid} = ?"
    fetched = "" if one else "m.t, "
    part = "" if track_id is not None else f"PARTITION BY {tid} "
    position = quote(step) if step else f"row_number() OVER ({part}ORDER BY rowid) - 1"
    sql = (
        f'SELECT {fetched}m.s, v."value" FROM (SELECT {tid} AS t, {position} AS s, {quote(LINK)} AS l, '
        f"rowid AS r FROM {t}{where}) AS m JOIN {quote(SPILL)} AS v "
        f'ON v."tbl" = ? AND v."key" = ? AND v."row" = m.l ORDER BY m.r'
    )
    return sql, [*([] if track_id is None else [track_id]), table, key]


def run_ids(engine: Any, table: str) -> list[Any]:
    """The table's distinct track_ids, NULL left out."""
    _, known = query(engine, f"SELECT DISTINCT {quote(TRACK_ID)} FROM {quote(table)}")
    return [k for (k,) in known if k is not None]


def aggregate_rows(
    engine: Any,
    select: str,
    binds: Sequence[Any],
    metric: str,
    by: Sequence[str],
    aggs: Sequence[str],
    memory: MemoryRuns | None = None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """``aggs`` (names of :data:`GROUP_AGGS`) of the column ``metric`` over the rows of
    ``select`` (or of ``memory``'s table), grouped and sorted by the columns ``by``."""
    if memory is not None:
        select, binds = 'SELECT * FROM "s"', []
    m = quote(metric)
    keys = [quote(b) for b in by]
    parts = list(keys)
    for a in aggs:
        if a == "std":  # sample standard deviation, two passes
            parts.append(f"sqrt(sum(({m} - _mean) * ({m} - _mean)) / nullif(count({m}) - 1, 0)) AS {quote(a)}")
        else:
            parts.append(GROUP_AGGS[a].format(m=m) + f" AS {quote(a)}")  # type: ignore[union-attr]
    part = f"PARTITION BY {', '.join(keys)}" if keys else ""
    group = f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else ""
    sql = f"SELECT {', '.join(parts)} FROM (SELECT *, avg({m}) OVER ({part}) AS _mean FROM ({select})){group}"
    run = memory.query if memory is not None else lambda q, b: query(engine, q, b)
    try:
        return run(sql, binds)
    except sqlite3.OperationalError as exc:
        if "sqrt" not in str(exc):
            raise
        names, rows = run(sql.replace("sqrt(", "(", 1), binds)  # no math functions
        return names, [
            tuple(math.sqrt(v) if n == "std" and v is not None else v for n, v in zip(names, r)) for r in rows
        ]


def history_sql(table: str, metric: str, step: str | None, track_id: Any, one: bool) -> tuple[str, list[Any]]:
    """The SELECT behind ``history``: (track_id unless ``one``, step, value) of the rows
    that hold ``metric`` (of the run ``track_id`` unless it is None), in table order.
    Without a ``step`` column, the step is the row's position in its run, counted before
    the NULLs are left out."""
    t, tid, value = quote(table), quote(TRACK_ID), quote(metric)
    where = "" if track_id is None else f" WHERE {tid} = ?"
    binds: list[Any] = [] if track_id is None else [track_id]
    fetched = "" if one else f"{tid}, "
    if step:
        sql = (
            f"SELECT {fetched}{quote(step)}, {value} FROM {t}{where}"
            f"{' AND' if where else ' WHERE'} {value} IS NOT NULL ORDER BY rowid"
        )
    else:
        part = "" if track_id is not None else f"PARTITION BY {tid} "
        sql = (
            f"SELECT {fetched}s, v FROM (SELECT {tid}, row_number() OVER ({part}ORDER BY rowid) - 1 AS s, "
            f"{value} AS v, rowid AS r FROM {t}{where}) WHERE v IS NOT NULL ORDER BY r"
        )
    return sql, binds


def prediction_rows(
    engine: Any, table: str, track_id: str, name: str | None
) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    """(names, rows) of idx, prediction, actual of the run's predictions (only those of
    ``name`` when given), by name then idx; None when the file has no predictions table."""
    if not has(engine, PREDICTIONS):
        return None
    sql = f'SELECT "idx", "prediction", "actual" FROM {quote(PREDICTIONS)} WHERE "track_id" = ? AND "table" = ?'
    binds: list[Any] = [track_id, table]
    if name is not None:
        sql += ' AND "name" = ?'
        binds.append(name)
    return query(engine, sql + ' ORDER BY "name", "idx"', binds)


def wrap_select(
    sql: str, base: list[str], rest: list[str], names: bool, keys: list[str], table: str, binds: list[Any]
) -> tuple[str, list[Any]]:
    """The runs SELECT ``sql`` (columns ``base`` then ``rest``) with ``run_name`` after
    ``track_id`` and a ``tags.<key>`` column per key at the end."""
    cols = [f"s.{quote(base[0])}"]
    extra: list[Any] = []
    if names:
        cols.append(
            f'(SELECT n."run_name" FROM {quote(RUN_NAMES)} AS n WHERE n."table" = ? '
            f'AND n."track_id" = s."track_id") AS {quote(RUN_NAME)}'
        )
        extra.append(table)
    cols += [f"s.{quote(c)}" for c in base[1:] + rest]
    for key in keys:
        cols.append(
            f'(SELECT g."value" FROM {quote(TAGS)} AS g WHERE g."table" = ? AND g."track_id" = s."track_id" '
            f'AND g."key" = ?) AS {quote(TAG_PREFIX + key)}'
        )
        extra += [table, key]
    return f"SELECT {', '.join(cols)} FROM ({sql}) AS s", [*extra, *binds]


class MemoryRuns:
    """The per-run rows of a summary SELECT in an in-memory SQLite table ``s``, with the
    column affinities the SELECT's columns have (``events`` INTEGER, the others none),
    so that a WHERE and ORDER BY over it compare exactly as over the SELECT.

    >>> MemoryRuns(["track_id", "events"], [("a", 2)]).query('SELECT * FROM "s"', [])
    (['track_id', 'events'], [('a', 2)])
    """

    #: Answers kept per copy (a search asked again of the unchanged copy): the latest few.
    KEEP_ANSWERS = 16

    def __init__(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.lock = threading.Lock()
        self.answers: dict[Any, Any] = {}  # (the search's terms) -> its answer, while this copy lives
        self.conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        decl = ", ".join(quote(n) + (" INTEGER" if n == "events" else "") for n in names)
        self.conn.execute(f"CREATE TABLE s ({decl})")
        marks = ", ".join("?" for _ in names)
        self.conn.execute("BEGIN")
        self.conn.executemany(f"INSERT INTO s VALUES ({marks})", rows)
        self.conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self.lock:
            cursor = self.conn.execute(sql, params)
            return [d[0] for d in cursor.description], cursor.fetchall()

    def answer(self, terms: Any) -> Any:
        """What :meth:`keep` kept for ``terms``, or None."""
        return self.answers.get(terms)

    def keep(self, terms: Any, answer: Any) -> None:
        with self.lock:
            self.answers.pop(terms, None)
            while len(self.answers) >= self.KEEP_ANSWERS:
                self.answers.pop(next(iter(self.answers)))
            self.answers[terms] = answer


def _pid_alive(pid: Any) -> int:
    if pid is None:
        return 1  # nothing to check: trust the status
    import psutil

    return int(psutil.pid_exists(int(pid)))
