"""The SQL behind ``Reader.runs/history/search/compare/aggregate`` (:class:`RunQueries`).

It reads the run summary (:mod:`xetrack.summary`) when there is one, and the wide table
with plain SQL when there is not; the runs side table (:mod:`xetrack.runs`) gives each
run's status, start and end. Every query is built from quoted identifiers that were
checked against the table's columns, and every user value is a bound parameter.
"""

from __future__ import annotations

import gc
import math
import socket
import sqlite3
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import meta, runs_pg, summary
from .filters import order_sql, parse_condition
from .filters import resolve_column as _resolve
from .frames import frame_from_rows
from .runs import PREDICTIONS_TABLE, RUNS_TABLE
from .schema import TIMESTAMP, TRACK_ID, quote
from .store import sqlite_engine
from .store.base import close_matches

AGGS = {"last": None, "first": None, "min": "min", "max": "max", "mean": "avg"}
STEP_COLUMNS = ("step", "epoch")
#: Summary columns before the params and metrics.
BASE = ("track_id", "status", "start", "end", "duration", "events")
_NUMERIC = ("INTEGER", "REAL", "NUMERIC", "FLOAT", "DOUBLE", "INT", "BIGINT")
_ALIVE_FN = "xetrack_pid_alive"
#: runs() recomputes at most this many runs of a cached frame; more, and it is computed whole.
PATCH_RUNS = 1000
#: runs() guesses params from these runs (the first ones, and those of the latest rows), then checks
SAMPLE_RUNS, SAMPLE_ROWS = 32, 256
#: dtypes whose column stays of that dtype with a NULL added (name -> kind, to be exact)
_NULL_JOINS = {"str": "O", "string": "O", "float64": "f", "Int64": "i", "boolean": "b", "object": "O"}


# ------------------------------------------------------------------ reading
class RunQueries:
    """The SQL behind ``Reader.runs/history/search/compare/aggregate/tables``."""

    def __init__(self, engine: Any, table: str) -> None:
        copied = engine.dialect == "postgres"
        if copied:  # the same SQL over an in-memory copy of the table (runs_pg.py)
            engine = runs_pg.sqlite_copy(engine, table)
        self.engine = sqlite_engine(engine)
        if self.engine is None:
            raise TypeError("Run queries need a SQLite file")
        self.table = table
        self.use_summary = summary.ENABLED and not copied  # False: the plain SQL, the reference the summary is tested against
        self.persist = True  # False: use the summary only when it is up to date (reads that must not write)
        self._summary: bool | None = None  # decided once per call, by classify()
        self._extra: tuple[bool, list[str]] | None = None  # run names and tag keys, read once per call
        self._kinds: dict[str, str] | None = None  # the recorded kinds, read once per call

    def _from_summary(self, delta: list[Any] | None = None) -> bool:
        """Bring the run summary (:mod:`xetrack.summary`) up to date; False when the plain SQL answers.

        ``delta`` receives what :func:`summary.update` changed, when this call changed it."""
        if self._summary is None:
            self._summary = self.use_summary and summary.refresh(self.engine, self.table, self.persist, delta)
        return self._summary

    # -- plumbing -------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self.engine._guard.lock:
            conn = self.engine._live()
            conn.create_function(_ALIVE_FN, 1, _pid_alive, deterministic=False)
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return names, cursor.fetchall()

    def _has(self, name: str) -> bool:
        _, rows = self._query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return bool(rows)

    def columns(self) -> dict[str, str]:
        """Column -> logical type: a column added for None is numeric once its first
        value is, and an INTEGER column that got a float reads as REAL."""
        return self.engine.column_types(self.table)  # raises TableNotFoundError

    def classify(self) -> tuple[list[str], list[str], dict[str, str]]:
        """(params, metrics, logical types) of the table, decided in one SQL pass.

        A param holds at most one distinct non-NULL value inside every run (SQLite's own
        comparison: 1 and 1.0 are one value). A metric is a
        numeric column that holds more than one within at least one run. Other columns
        (text that varies within a run) are in neither; ``to_df`` still has them.
        """
        cols = self.columns()
        rest = [c for c in cols if c not in (TIMESTAMP, TRACK_ID)]
        recorded = self._recorded()
        if self._from_summary():
            varies_in = summary.varying(lambda sql, binds: self._query(sql, binds)[1], self.table)
            return _split(rest, [varies_in.get(c) for c in rest], cols, recorded)
        if not rest:
            return [], [], cols
        if recorded and all(c in recorded for c in rest):  # nothing left to guess
            return _split(rest, [recorded[c] == "metric" for c in rest], cols, recorded)
        most = self._varying(rest) or (0,) * len(rest)
        return _split(rest, most, cols, recorded)

    def _varying(self, columns: list[str], runs: str = "") -> tuple[Any, ...] | None:
        """For each of ``columns``, whether some run (of those the SELECT ``runs`` names,
        else every run) holds more than one distinct non-NULL value in it."""
        t, tid = quote(self.table), quote(TRACK_ID)
        # min <> max within a run is "more than one distinct non-NULL value", and is
        # much cheaper than count(DISTINCT), which sorts every column of every run.
        varies = ", ".join(f"min({quote(c)}) <> max({quote(c)}) AS c{i}" for i, c in enumerate(columns))
        maxes = ", ".join(f"max(c{i})" for i in range(len(columns)))
        where = f" WHERE {tid} IN ({runs})" if runs else ""
        _, rows = self._query(f"SELECT {maxes} FROM (SELECT {varies} FROM {t}{where} GROUP BY {tid})")
        return rows[0] if rows else None

    def _recorded(self) -> dict[str, str]:
        """The kinds recorded for the table's columns (:mod:`xetrack.meta`), read once per call."""
        if self._kinds is None:
            self._kinds = meta.kinds(self.engine, self.table)
        return self._kinds

    def _guessed(self, agg: str) -> tuple[str, list[Any], list[str], list[str], dict[str, str], list[int]] | None:
        """The plain SQL of :meth:`summary_sql` from a split guessed on a sample of runs,
        with a check column per guessed param at the end of each row (its min beside its max).

        A column that varies inside a sampled run varies in some run: it is a metric, as
        the full pass would find. A column that varies in no sampled run is taken for a
        param, and the check columns say whether it holds in every run; when one does not,
        the caller falls back to :meth:`summary_sql`. This skips the full pass over the
        table that deciding the split takes, which costs about as much as the answer.
        Columns of a recorded kind (:mod:`xetrack.meta`) need neither. (sql, binds, params,
        metrics, types, the positions of the checked params among params); None: the
        split needs no guess (every kind recorded), or the table has run names or tags."""
        cols = self.columns()
        rest = [c for c in cols if c not in (TIMESTAMP, TRACK_ID)]
        recorded = self._recorded()
        guess = [c for c in rest if c not in recorded]
        if not guess or self._meta() != (False, []):
            return None
        t, tid = quote(self.table), quote(TRACK_ID)
        # the first runs in the index and those of the latest rows
        sample = (
            f"SELECT {tid} FROM (SELECT DISTINCT {tid} FROM {t} LIMIT {SAMPLE_RUNS}) UNION "
            f"SELECT {tid} FROM (SELECT {tid} FROM {t} ORDER BY rowid DESC LIMIT {SAMPLE_ROWS})"
        )
        most = self._varying(guess, sample)
        if most is None:
            return None
        seen = dict(zip(guess, most))
        params, metrics, cols = _split(rest, [seen.get(c) for c in rest], cols, recorded)
        check = [c for c in params if c not in recorded]
        sql, binds = self._select(agg, params, metrics, cols, check=check)
        return sql, binds, params, metrics, cols, [i for i, c in enumerate(params) if c in check]

    def _runs_source(self, has_runs: bool) -> str:
        if has_runs:
            return f"(SELECT * FROM {quote(RUNS_TABLE)} WHERE \"table\" = ?)"
        return '(SELECT NULL AS "track_id", NULL AS "status", NULL AS "start", NULL AS "end", NULL AS "pid", NULL AS "host" WHERE 0)'

    def summary_sql(self, agg: str = "last") -> tuple[str, list[Any], list[str], list[str], dict[str, str]]:
        """One SELECT: a row per run with status, times, events, params and metrics."""
        if agg not in AGGS:
            raise ValueError(f"agg must be one of {', '.join(AGGS)}, got {agg!r}")
        params, metrics, cols = self.classify()
        sql, binds = self._select(agg, params, metrics, cols)
        return sql, binds, params, metrics, cols

    def _meta(self) -> tuple[bool, list[str]]:
        """(the table has run names, its tag keys): the runs() columns of :mod:`xetrack.meta`."""
        if self._extra is None:
            self._extra = meta.summary_columns(self.engine, self.table)
        return self._extra

    def _names(self, params: list[str], metrics: list[str]) -> dict[str, str]:
        names, keys = self._meta()
        return _summary_names(params, metrics, ([meta.RUN_NAME] if names else []) + [meta.TAG_PREFIX + k for k in keys])

    def _columns_out(self, params: list[str], metrics: list[str]) -> list[str]:
        """The summary's column names, in order."""
        names, keys = self._meta()
        out = list(BASE)
        if names:
            out.insert(1, meta.RUN_NAME)
        return out + list(self._names(params, metrics).values()) + [meta.TAG_PREFIX + k for k in keys]

    def _select(
        self, agg: str, params: list[str], metrics: list[str], cols: dict[str, str], only: Sequence[Any] | None = None,
        check: Sequence[str] = (),
    ) -> tuple[str, list[Any]]:
        """The SELECT of :meth:`summary_sql` for a given split, with the run names and tags
        of :mod:`xetrack.meta` when the table has any; with ``only``, just those runs; with
        ``check`` (plain SQL only, no names or tags), the min of each of those params in a
        column after the others (see :meth:`_guessed`)."""
        sql, binds = self._select_rows(agg, params, metrics, cols, only, check)
        names, keys = self._meta()
        if not names and not keys:
            return sql, binds
        if check:
            raise ValueError("check: a table without run names and tags only")
        rest = list(self._names(params, metrics).values())
        return meta.wrap_select(sql, list(BASE), rest, names, keys, self.table, binds)

    def _select_rows(
        self, agg: str, params: list[str], metrics: list[str], cols: dict[str, str], only: Sequence[Any] | None = None,
        check: Sequence[str] = (),
    ) -> tuple[str, list[Any]]:
        has_runs = self._has(RUNS_TABLE)
        t, tid = quote(self.table), quote(TRACK_ID)
        out_names = self._names(params, metrics)
        select = [
            f"g.{tid} AS {quote('track_id')}",
            "CASE WHEN r.\"status\" = 'running' AND r.\"host\" = ? AND NOT "
            f"{_ALIVE_FN}(r.\"pid\") THEN 'dead' ELSE r.\"status\" END AS \"status\"",
            'coalesce(r."start", g."_first") AS "start"',
            'CASE WHEN r."track_id" IS NULL THEN g."_last" ELSE r."end" END AS "end"',
            '(julianday(coalesce(CASE WHEN r."track_id" IS NULL THEN g."_last" ELSE r."end" END, g."_last"))'
            ' - julianday(coalesce(r."start", g."_first"))) * 86400.0 AS "duration"',
            'g."_events" AS "events"',
        ]
        if self._summary:  # the per-run aggregates come from the summary tables
            source, source_binds = summary.source_sql(self.table, params, metrics, agg, only)
            select += [f"g.p{i} AS {quote(out_names[c])}" for i, c in enumerate(params)]
            select += [f"g.m{i} AS {quote(out_names[c])}" for i, c in enumerate(metrics)]
            sql = (
                f"SELECT {', '.join(select)} FROM ({source}) AS g "
                f"LEFT JOIN {self._runs_source(has_runs)} AS r ON r.\"track_id\" = g.{tid}"
            )
            return sql, [socket.gethostname(), *source_binds, *([self.table] if has_runs else [])]
        if only is not None:
            raise ValueError("only: the summary answers only")
        inner = [f"{tid}", f"min({quote(TIMESTAMP)}) AS \"_first\"", f"max({quote(TIMESTAMP)}) AS \"_last\"", 'count(*) AS "_events"']
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
        select += [f"g.q{i} AS \"?check{i}\"" for i, c in enumerate(params) if c in check]
        sql = (
            f"SELECT {', '.join(select)} FROM (SELECT {', '.join(inner)} FROM {t} GROUP BY {tid}) AS g "
            f"LEFT JOIN {self._runs_source(has_runs)} AS r ON r.\"track_id\" = g.{tid}"
        )
        binds: list[Any] = [socket.gethostname()]
        if has_runs:
            binds.append(self.table)
        return sql, binds

    def _frame(self, names: list[str], rows: list[tuple[Any, ...]], types: dict[str, str]) -> pd.DataFrame:
        decl = {"events": "INTEGER", "duration": "REAL", "pid": "INTEGER"}
        return frame_from_rows(names, [decl.get(n, types.get(n, "")) for n in names], rows)

    def _types(self, params: list[str], metrics: list[str], cols: dict[str, str], agg: str) -> dict[str, str]:
        names = self._names(params, metrics)
        out = {names[c]: cols[c] for c in params}
        for c in metrics:
            out[names[c]] = "REAL" if agg == "mean" else cols[c]
        has_names, keys = self._meta()
        out.update({meta.TAG_PREFIX + k: "TEXT" for k in keys})
        if has_names:
            out[meta.RUN_NAME] = "TEXT"
        return out

    # -- the calls --------------------------------------------------------------
    def runs(self, agg: str = "last") -> pd.DataFrame:
        key = summary.cache_key(self.engine, self.table, "runs", agg, self.use_summary) if self.use_summary else None
        if key is not None:  # warm: nothing in the file changed since this process last answered
            tok = summary.token(self.engine)
            frame = summary.cached(key, tok)
            if frame is not None:
                return frame.copy()
            frame = self._patched(key, agg)
            if frame is not None:
                return frame.copy()
        checks: list[int] = []
        guessed = None if not self.use_summary or self._from_summary() or agg not in AGGS else self._guessed(agg)
        if guessed is not None:
            sql, binds, params, metrics, cols, checks = guessed
        else:
            sql, binds, params, metrics, cols = self.summary_sql(agg)
        if key is not None:
            tok = summary.token(self.engine)  # after the summary's own writes, before the read
            gen = summary.generation(self.engine, self.table) if self._summary else None
            frame = summary.cached(key, tok, gen)
            if frame is not None:
                summary.remember(key, tok, gen, frame)
                return frame.copy()
        names, rows = self._query(sql + ' ORDER BY "start", "track_id"', binds)
        if checks:
            width = len(names) - len(checks)
            pairs = [(len(BASE) + i, width + k) for k, i in enumerate(checks)]
            if any(any(r[a] != r[b] for r in rows) for a, b in pairs):
                # a guessed param varies in a run outside the sample: decide on every run
                sql, binds, params, metrics, cols = self.summary_sql(agg)
                names, rows = self._query(sql + ' ORDER BY "start", "track_id"', binds)
            else:
                names = names[:width]  # the frame leaves the check columns out
        frame = self._frame(names, rows, self._types(params, metrics, cols, agg))
        # A running run turns dead when its process ends, with no write to the file.
        if key is not None and not frame["status"].isin(["running", "dead"]).any():
            summary.remember(key, tok, gen, frame, (agg, params, metrics, cols) if self._summary else None)
            return frame.copy()
        return frame

    def _patched(self, key: Any, agg: str) -> pd.DataFrame | None:
        """The cached runs frame with only the runs that the summary update of this call
        touched recomputed, when that gives what a from-scratch :meth:`runs` gives (rows
        appended to runs of the same columns, nothing else changed since the frame was
        cached); else None, and the caller computes it whole."""
        cached = summary.entry(key)
        if cached is None or cached[3] is None or cached[3][0] != agg:
            return None
        if not self._from_summary():
            return None
        _, old_gen, old, meta = cached
        params, metrics, cols = meta[1:4]
        tok = summary.token(self.engine)
        gen = summary.generation(self.engine, self.table)
        # what this process's summary updates since the frame's gen touched; None when
        # another connection changed the summary too, or more than rows were appended
        touched = summary.changes_since(self.engine, self.table, old_gen, gen)
        if touched is None or None in touched or len(touched) > PATCH_RUNS:
            return None
        if self.columns() != cols:
            return None
        only = list(touched)
        varies = summary.varying_in(lambda sql, binds: self._query(sql, binds)[1], self.table, only)
        if any(varies.get(c) for c in params):  # a param now varies within a run: the split moves
            return None
        sql, binds = self._select(agg, params, metrics, cols, only)
        names, rows = self._query(sql + ' ORDER BY "start", "track_id"', binds)
        if len(rows) != len(only) or names != list(old.columns):
            return None
        if not all(isinstance(r[0], str) and isinstance(r[2], str) for r in rows):
            return None
        new = self._frame(names, rows, self._types(params, metrics, cols, agg))
        dtypes = old.dtypes
        for j, n in enumerate(names):
            if dtypes.iloc[j] == new[n].dtype:
                continue
            # NULL alone (a new run without a status yet) takes the whole's dtype, as a NULL
            # among values does; any other difference: the dtype of the whole might differ
            if all(r[j] is None for r in rows) and _NULL_JOINS.get(str(dtypes.iloc[j])) == dtypes.iloc[j].kind:
                new[n] = pd.array([None] * len(rows), dtype=dtypes.iloc[j])
            else:
                return None
        if not all(isinstance(dtypes[c], pd.StringDtype) for c in ("start", "track_id")):
            return None  # the order below is that of text without NULLs
        tids = old["track_id"]
        if tids.hasnans or old["start"].hasnans:
            return None
        keep = np.flatnonzero(~tids.isin(only).to_numpy())
        if not len(keep):
            return None
        # ORDER BY "start", "track_id": text compares as its code points (UTF-8 bytes).
        # The frame's two sort columns as str objects, kept from the last patch.
        all_starts, all_ids = meta[4] if len(meta) > 4 else (
            old["start"].to_numpy(dtype=object), tids.to_numpy(dtype=object))
        starts, ids = all_starts[keep], all_ids[keep]
        at = []
        for r in rows:
            lo = int(np.searchsorted(starts, r[2], "left"))
            hi = int(np.searchsorted(starts, r[2], "right"))
            at.append(lo + int(np.searchsorted(ids[lo:hi], r[0])))
        order = np.insert(keep, at, np.arange(len(old), len(old) + len(rows)))
        frame = pd.concat([old, new], ignore_index=True).take(order).reset_index(drop=True)
        if not frame.dtypes.equals(dtypes):
            return None
        if not new["status"].isin(["running", "dead"]).any():
            sort_keys = tuple(
                np.concatenate([column, np.array([r[j] for r in rows], dtype=object)])[order]
                for column, j in ((all_starts, 2), (all_ids, 0))
            )
            summary.remember(key, tok, gen, frame, (agg, params, metrics, cols, sort_keys))
        return frame

    def search(self, where: str | None = None, order_by: Any = None, limit: int | None = None, agg: str = "last") -> pd.DataFrame:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be an int >= 0, got {limit!r}")
        copy, built = self._summary_copy(agg)
        if copy is not None:  # the same SELECT over the per-run rows, copied in memory
            params, metrics, cols, mem = copy
            sql, binds = '"s"', []
        else:
            sql, binds, params, metrics, cols = built or self.summary_sql(agg)
            sql = f"({sql}) AS s"
        summary = self._columns_out(params, metrics)
        clause, values = ("", [])
        if where is not None and str(where).strip():
            cond, values = parse_condition(where, summary)
            clause = f" WHERE {cond}"
        order = order_sql(order_by, summary) if order_by else '"start", "track_id"'
        query = f"SELECT * FROM {sql}{clause} ORDER BY {order}"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        if copy is not None:
            names, rows = mem.query(query, values)
        else:
            names, rows = self._query(query, [*binds, *values])
        return self._frame(names, rows, self._types(params, metrics, cols, agg))

    def _summary_copy(self, agg: str) -> tuple[Any, Any]:
        """(copy, the :meth:`summary_sql` tuple when this call computed it). copy: (params,
        metrics, types, the per-run rows of :meth:`summary_sql` in an in-memory table ``s``)
        while nothing in the file changed, made by the second search of an unchanged file
        (a first search pays no more than the SELECT); None when the summary does not
        answer or a run is running (its status can turn ``dead`` with no write)."""
        if not self.use_summary or agg not in AGGS:
            return None, None
        key = summary.cache_key(self.engine, self.table, "search", agg)
        if key is None:
            return None, None
        tok = summary.token(self.engine)
        hit = summary.entry(key)
        if hit is not None and hit[0] == tok and hit[3] is not None:
            return hit[3], None
        built = self.summary_sql(agg)
        if not self._summary:
            return None, built
        tok = summary.token(self.engine)
        gen = summary.generation(self.engine, self.table)
        hit = summary.entry(key)
        if hit is None or gen is None or hit[1] != gen:
            summary.remember(key, tok, gen, None, None)  # seen once: the next search makes the copy
            return None, built
        if hit[3] is not None:
            summary.remember(key, tok, gen, None, hit[3])
            return hit[3], built
        sql, binds, params, metrics, cols = built
        # the rows in the order the SELECT gives them, which is what a search's ORDER BY
        # sees first: ties come out alike
        names, rows = self._query(f"SELECT * FROM ({sql}) AS s", binds)
        if any(r[1] in ("running", "dead") for r in rows):
            return None, built
        copy = (params, metrics, cols, _MemoryRuns(names, rows))
        summary.remember(key, tok, gen, None, copy)
        return copy, built

    def history(self, metric: str, track_id: str | None = None, step: str | None = None) -> pd.DataFrame:
        sql, binds, decls, constants = self.history_sql(metric, track_id, step)
        # A fetch makes a tuple per row, each one counted by the cyclic GC, which would
        # walk them every 700 rows; they hold only numbers and text, so no cycle can form
        # while the rows are fetched and turned into columns, and the walks are skipped.
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            rows = self.engine.query(sql, binds)  # no SQL function of ours in it: a plain read
            return frame_from_rows(["track_id", "step", "value"][len(constants):], decls, rows, constants)
        finally:
            if collecting:
                gc.enable()

    def history_sql(
        self, metric: str, track_id: str | None = None, step: str | None = None
    ) -> tuple[str, list[Any], list[str], list[tuple[str, str, Any]]]:
        """The SELECT behind ``history``: (sql, binds, logical types of its step and value
        columns, the columns it leaves out as constants); the frame is track_id, step, value.

        One run (a str ``track_id``) is a search of the track_id index that fetches only
        the step and the metric: the id is the same on every row, so it is not fetched
        (a str object per row) but repeated in the frame. Rows come in table order.
        """
        cols = self.columns()
        metric = _resolve(metric, list(cols), self.table)
        if step is None:
            step = next((c for c in STEP_COLUMNS if c in cols), None)
        else:
            step = _resolve(step, list(cols), self.table)
        t, tid, value = quote(self.table), quote(TRACK_ID), quote(metric)
        one = isinstance(track_id, str)  # any other value: the stored ids, as SQLite matched them
        where = "" if track_id is None else f" WHERE {tid} = ?"
        binds: list[Any] = [] if track_id is None else [track_id]
        fetched = "" if one else f"{tid}, "
        if step:
            sql = (
                f"SELECT {fetched}{quote(step)}, {value} FROM {t}{where}"
                f"{' AND' if where else ' WHERE'} {value} IS NOT NULL ORDER BY rowid"
            )
        else:  # the row's position in its run, counted before the NULLs are left out
            part = "" if track_id is not None else f"PARTITION BY {tid} "
            sql = (
                f"SELECT {fetched}s, v FROM (SELECT {tid}, row_number() OVER ({part}ORDER BY rowid) - 1 AS s, "
                f"{value} AS v, rowid AS r FROM {t}{where}) WHERE v IS NOT NULL ORDER BY r"
            )
        decls = [cols.get(step, "INTEGER") if step else "INTEGER", cols[metric]]
        if one:
            return sql, binds, decls, [("track_id", "", track_id)]
        return sql, binds, ["", *decls], []

    def compare(self, track_ids: Sequence[str], only_diff: bool = False, agg: str = "last") -> pd.DataFrame:
        if isinstance(track_ids, str):
            track_ids = [track_ids]
        ids = list(dict.fromkeys(track_ids))
        if not ids:
            raise ValueError("compare needs at least one track_id")
        sql, binds, params, metrics, cols = self.summary_sql(agg)
        marks = ", ".join("?" for _ in ids)
        names, rows = self._query(f"SELECT * FROM ({sql}) AS s WHERE \"track_id\" IN ({marks})", [*binds, *ids])
        frame = self._frame(names, rows, self._types(params, metrics, cols, agg))
        found = set(frame["track_id"]) if len(frame) else set()
        missing = [i for i in ids if i not in found]
        if missing:
            _, known = self._query(f"SELECT DISTINCT {quote(TRACK_ID)} FROM {quote(self.table)}")
            raise KeyError(
                f"Run {missing[0]!r} not found in table {self.table!r}."
                f"{close_matches(missing[0], [k for (k,) in known if k is not None])}"
            )
        out = frame.set_index("track_id").loc[ids].T.astype(object)
        out.index.name = "field"
        out.columns.name = None
        if only_diff:
            same = out.apply(lambda r: len({_key(v) for v in r}) <= 1, axis=1)
            out = out[~same]
        return out

    def aggregate(self, metric: str, by: Sequence[str], agg: Sequence[str], run_agg: str = "last") -> pd.DataFrame:
        allowed = {"mean": "avg({m})", "min": "min({m})", "max": "max({m})", "count": "count({m})", "sum": "sum({m})", "std": None}
        aggs = [agg] if isinstance(agg, str) else list(agg)
        for a in aggs:
            if a not in allowed:
                raise ValueError(f"Unknown agg {a!r}: choose from {', '.join(allowed)}")
        by = [by] if isinstance(by, str) else list(by)
        sql, binds, params, metrics, cols = self.summary_sql(run_agg)
        summary = self._columns_out(params, metrics)
        m = quote(_resolve(metric, summary, self.table + " runs summary"))
        keys = [quote(_resolve(b, summary, self.table + " runs summary")) for b in by]
        parts = list(keys)
        for a in aggs:
            if a == "std":  # sample standard deviation, two passes
                parts.append(
                    f"sqrt(sum(({m} - _mean) * ({m} - _mean)) / nullif(count({m}) - 1, 0)) AS {quote(a)}"
                )
            else:
                parts.append(allowed[a].format(m=m) + f" AS {quote(a)}")  # type: ignore[union-attr]
        part = f"PARTITION BY {', '.join(keys)}" if keys else ""
        group = f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else ""
        query = f"SELECT {', '.join(parts)} FROM (SELECT *, avg({m}) OVER ({part}) AS _mean FROM ({sql})){group}"
        try:
            names, rows = self._query(query, binds)
        except sqlite3.OperationalError as exc:
            if "sqrt" not in str(exc):
                raise
            names, rows = self._query(query.replace("sqrt(", "(", 1), binds)  # no math functions
            rows = [tuple(math.sqrt(v) if n == "std" and v is not None else v for n, v in zip(names, r)) for r in rows]
        types = {**self._types(params, metrics, cols, run_agg), "count": "INTEGER"}
        return self._frame(names, rows, {n: ("REAL" if n in ("mean", "std") else types.get(n, "")) for n in names})

    def predictions(self, track_id: str, name: str | None = None) -> pd.DataFrame:
        if not self._has(PREDICTIONS_TABLE):
            return pd.DataFrame({"idx": pd.Series([], dtype="int64"), "prediction": [], "actual": []})
        sql = f'SELECT "idx", "prediction", "actual" FROM {quote(PREDICTIONS_TABLE)} WHERE "track_id" = ? AND "table" = ?'
        binds: list[Any] = [track_id, self.table]
        if name is not None:
            sql += ' AND "name" = ?'
            binds.append(name)
        names, rows = self._query(sql + ' ORDER BY "name", "idx"', binds)
        frame = pd.DataFrame(rows, columns=names)
        return frame.infer_objects()


class _MemoryRuns:
    """The per-run rows of a summary SELECT in an in-memory SQLite table ``s``, with the
    column affinities the SELECT's columns have (``events`` INTEGER, the others none),
    so that a WHERE and ORDER BY over it compare exactly as over the SELECT."""

    def __init__(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        import threading

        self.lock = threading.Lock()
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


# --------------------------------------------------------------- helpers
def _pid_alive(pid: Any) -> int:
    if pid is None:
        return 1  # nothing to check: trust the status
    import psutil

    return int(psutil.pid_exists(int(pid)))


def _key(value: Any) -> Any:
    try:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return None
    except TypeError:
        pass
    return value


def _split(
    rest: list[str], most: Sequence[Any], cols: dict[str, str], recorded: Mapping[str, str] | None = None
) -> tuple[list[str], list[str], dict[str, str]]:
    """Params and metrics: the kind recorded when the column was written (see
    :mod:`xetrack.meta`), else the guess ``most`` (more than one value in some run)."""
    params, metrics = [], []
    recorded = recorded or {}
    for c, n in zip(rest, most):
        kind = recorded.get(c)
        if kind == "param":
            params.append(c)
        elif kind == "metric":
            metrics.append(c)
        elif not n:
            params.append(c)
        elif cols[c].upper() in _NUMERIC or c in STEP_COLUMNS:
            metrics.append(c)
    return params, metrics, cols


def _summary_names(params: list[str], metrics: list[str], reserved: Sequence[str] = ()) -> dict[str, str]:
    """User column -> summary column; one that clashes with a summary column gets ``_``."""
    out = {}
    taken = set(BASE) | {r.lower() for r in reserved}
    for c in [*params, *metrics]:
        name = c
        while name.lower() in taken or name.lower() in {v.lower() for v in out.values()}:
            name += "_"
        out[c] = name
    return out


