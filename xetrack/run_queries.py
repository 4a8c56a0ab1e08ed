"""The SQL behind ``Reader.runs/history/search/compare/aggregate`` (:class:`RunQueries`).

It reads the run summary (:mod:`xetrack.summary`) when there is one, and the wide table
with plain SQL when there is not; the runs side table (:mod:`xetrack.runs`) gives each
run's status, start and end. It decides (params or metrics, summary or plain SQL, what
the per-process cache still answers) and builds the frames; the SQL, built from quoted
identifiers checked against the table's columns with every user value bound, is the
``run_sql`` feature of :func:`xetrack.store.features` (SQLite's). A PostgreSQL store is
read through an in-memory SQLite copy of the table (:mod:`xetrack.store.run_mirror`).

>>> RunQueries(Reader("exp.db").store, "default").runs()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import meta, summary
from .filters import order_sql, parse_condition
from .frames import frame_from_rows
from .run_columns import BASE, split_kinds, summary_names
from .run_reads import RunReads
from .run_wide import is_wide
from .schema import TIMESTAMP, TRACK_ID
from .store import dialect_features, features
from .store.tables import RUNS

_SQLITE_SQL = dialect_features("sqlite").run_sql  # the one dialect the run queries read (above)
assert _SQLITE_SQL is not None
#: The aggregations of a run over its rows (``runs(agg=...)``), and of aggregate() over runs.
AGGS, GROUP_AGGS = _SQLITE_SQL.AGGS, _SQLITE_SQL.GROUP_AGGS

#: runs() recomputes at most this many runs of a cached frame; more, and it is computed whole.
PATCH_RUNS = 1000
#: runs() guesses params from these runs (the first ones, and those of the latest rows), then checks
SAMPLE_RUNS, SAMPLE_ROWS = 32, 256
#: dtypes whose column stays of that dtype with a NULL added (name -> kind, to be exact)
_NULL_JOINS = {"str": "O", "string": "O", "float64": "f", "Int64": "i", "boolean": "b", "object": "O"}


# ------------------------------------------------------------------ reading
class RunQueries(RunReads):
    """The SQL behind ``Reader.runs/history/search/compare/aggregate/tables``."""

    def __init__(self, engine: Any, table: str) -> None:
        # the SQLite file, or on PostgreSQL the same SQL over an in-memory copy of the table
        self.engine, summarized = features(engine).run_copy.run_source(engine, table)
        if self.engine is None:
            raise TypeError("Run queries need a SQLite file")
        sql, kept = features(self.engine).run_sql, features(self.engine).summary
        if sql is None or kept is None:
            raise TypeError("Run queries need a SQLite file")
        self.sql, self.summaries = sql, kept  # the SELECTs, and the run summary's reads
        self.table = table
        self.use_summary = (
            summary.ENABLED and summarized
        )  # False: the plain SQL, the reference the summary is tested against
        self.persist = True  # False: use the summary only when it is up to date (reads that must not write)
        self._summary: bool | None = None  # decided once per call, by classify()
        self._extra: tuple[bool, list[str]] | None = None  # run names and tag keys, read once per call
        self._kinds: dict[str, str] | None = None  # the recorded kinds, read once per call
        self._spilled: list[str] | None = None  # the table's spilled keys, read once per call

    def _from_summary(self, delta: list[Any] | None = None) -> bool:
        """Bring the run summary (:mod:`xetrack.summary`) up to date; False when the plain SQL answers.

        ``delta`` receives what the summary's ``update`` changed, when this call changed it."""
        if self._summary is None:
            self._summary = self.use_summary and summary.refresh(self.engine, self.table, self.persist, delta)
        return self._summary

    # -- plumbing -------------------------------------------------------------
    def spilled(self) -> list[str]:
        """The table's keys past its columns (kept apart by the engine), read once per call."""
        if self._spilled is None:
            self._spilled = self.engine.spilled(self.table)
        return self._spilled

    def columns(self) -> dict[str, str]:
        """Column -> logical type: a column added for None is numeric once its first
        value is, and an INTEGER column that got a float reads as REAL."""
        types = self.engine.column_types(self.table)  # raises TableNotFoundError
        for key in self.engine.spilled(self.table):  # kept apart, not columns the SQL can name
            types.pop(key, None)
        return types

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
            varies_in = self.summaries.varying(self.engine, self.table)
            return split_kinds(rest, [varies_in.get(c) for c in rest], cols, recorded)
        if not rest:
            return [], [], cols
        if recorded and all(c in recorded for c in rest):  # nothing left to guess
            return split_kinds(rest, [recorded[c] == "metric" for c in rest], cols, recorded)
        most = self.sql.varying(self.engine, self.table, rest) or (0,) * len(rest)
        return split_kinds(rest, most, cols, recorded)

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
        # the first runs in the index and those of the latest rows
        most = self.sql.varying(self.engine, self.table, guess, sample=(SAMPLE_RUNS, SAMPLE_ROWS))
        if most is None:
            return None
        seen = dict(zip(guess, most))
        params, metrics, cols = split_kinds(rest, [seen.get(c) for c in rest], cols, recorded)
        check = [c for c in params if c not in recorded]
        sql, binds = self._select(agg, params, metrics, cols, check=check)
        return sql, binds, params, metrics, cols, [i for i, c in enumerate(params) if c in check]

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
        return summary_names(params, metrics, ([meta.RUN_NAME] if names else []) + [meta.TAG_PREFIX + k for k in keys])

    def _columns_out(self, params: list[str], metrics: list[str]) -> list[str]:
        """The summary's column names, in order."""
        names, keys = self._meta()
        out = list(BASE)
        if names:
            out.insert(1, meta.RUN_NAME)
        return out + list(self._names(params, metrics).values()) + [meta.TAG_PREFIX + k for k in keys]

    def _select(
        self,
        agg: str,
        params: list[str],
        metrics: list[str],
        cols: dict[str, str],
        only: Sequence[Any] | None = None,
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
        return self.sql.wrap_select(sql, list(BASE), rest, names, keys, self.table, binds)

    def _select_rows(
        self,
        agg: str,
        params: list[str],
        metrics: list[str],
        cols: dict[str, str],
        only: Sequence[Any] | None = None,
        check: Sequence[str] = (),
    ) -> tuple[str, list[Any]]:
        has_runs = self.sql.has(self.engine, RUNS)
        return self.sql.select_rows(
            self.table, agg, params, metrics, self._names(params, metrics), has_runs, bool(self._summary), only, check
        )

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
        if key is None:
            return self._runs(None, agg)
        with summary.one_at_a_time(key):  # a thread that finds it being computed waits for it
            return self._runs(key, agg)

    def _runs(self, key: Any, agg: str) -> pd.DataFrame:
        if key is not None:  # warm: nothing in the file changed since this process last answered
            tok = self.summaries.token(self.engine)
            frame = summary.cached(key, tok)
            if frame is not None:
                return frame.copy()
            frame = self._patched(key, agg)
            if frame is not None:
                return frame.copy()
        checks: list[int] = []
        alive = self._lives() if key is not None else None  # before the read: see summary.lives
        if is_wide(self):  # spilled keys, or more columns than one SELECT takes
            if key is None:
                return self._wide_runs(agg)
            tok = self.summaries.token(self.engine)
            frame = self._wide_runs(agg)
            summary.remember(key, tok, None, frame, None, alive)
            return frame.copy()
        guessed = None if not self.use_summary or self._from_summary() or agg not in AGGS else self._guessed(agg)
        if guessed is not None:
            sql, binds, params, metrics, cols, checks = guessed
        else:
            sql, binds, params, metrics, cols = self.summary_sql(agg)
        if key is not None:
            tok = self.summaries.token(self.engine)  # after the summary's own writes, before the read
            gen = self.summaries.generation(self.engine, self.table) if self._summary else None
            frame = summary.cached(key, tok, gen)
            if frame is not None:
                summary.remember(key, tok, gen, frame)
                return frame.copy()
        names, rows = self.sql.runs_rows(self.engine, sql, binds)
        if checks:
            width = len(names) - len(checks)
            pairs = [(len(BASE) + i, width + k) for k, i in enumerate(checks)]
            if any(any(r[a] != r[b] for r in rows) for a, b in pairs):
                # a guessed param varies in a run outside the sample: decide on every run
                sql, binds, params, metrics, cols = self.summary_sql(agg)
                names, rows = self.sql.runs_rows(self.engine, sql, binds)
            else:
                names = names[:width]  # the frame leaves the check columns out
        frame = self._frame(names, rows, self._types(params, metrics, cols, agg))
        if key is not None:
            summary.remember(key, tok, gen, frame, (agg, params, metrics, cols) if self._summary else None, alive)
            return frame.copy()
        return frame

    def _lives(self) -> tuple[tuple[int, ...], tuple[bool, ...]]:
        """The processes whose life decides which runs are running and which dead (a
        running run turns dead when its process ends, with no write to the file), and
        whether each is alive now: a cached answer is served while they are as they were."""
        return summary.lives(self.sql.running_pids(self.engine, self.table))

    def _patched(self, key: Any, agg: str) -> pd.DataFrame | None:
        """The cached runs frame with only the runs that the summary update of this call
        touched recomputed, when that gives what a from-scratch :meth:`runs` gives (rows
        appended to runs of the same columns, nothing else changed since the frame was
        cached); else None, and the caller computes it whole."""
        cached = summary.entry(key)
        if cached is None or cached[3] is None or cached[3][0] != agg:
            return None
        alive = self._lives()
        if not self._from_summary():
            return None
        _, old_gen, old, meta = cached
        params, metrics, cols = meta[1:4]
        tok = self.summaries.token(self.engine)
        gen = self.summaries.generation(self.engine, self.table)
        # what this process's summary updates since the frame's gen touched; None when
        # another connection changed the summary too, or more than rows were appended
        touched = summary.changes_since(self.engine, self.table, old_gen, gen)
        if touched is None or None in touched or len(touched) > PATCH_RUNS:
            return None
        if self.columns() != cols:
            return None
        only = list(touched)
        varies = self.summaries.varying_in(self.engine, self.table, only)
        if any(varies.get(c) for c in params):  # a param now varies within a run: the split moves
            return None
        sql, binds = self._select(agg, params, metrics, cols, only)
        names, rows = self.sql.runs_rows(self.engine, sql, binds)
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
        all_starts, all_ids = (
            meta[4] if len(meta) > 4 else (old["start"].to_numpy(dtype=object), tids.to_numpy(dtype=object))
        )
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
        sort_keys = tuple(
            np.concatenate([column, np.array([r[j] for r in rows], dtype=object)])[order]
            for column, j in ((all_starts, 2), (all_ids, 0))
        )
        summary.remember(key, tok, gen, frame, (agg, params, metrics, cols, sort_keys), alive)
        return frame

    def search(
        self, where: str | None = None, order_by: Any = None, limit: int | None = None, agg: str = "last"
    ) -> pd.DataFrame:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be an int >= 0, got {limit!r}")
        wide = self._wide_search(where, order_by, limit, agg)
        if wide is not None:
            return wide
        copy, built = self._summary_copy(agg)
        mem = None
        if copy is not None:  # the same SELECT over the per-run rows, copied in memory
            params, metrics, cols, mem = copy
            sql, binds = None, []
        else:
            sql, binds, params, metrics, cols = built or self.summary_sql(agg)
        shown = self._columns_out(params, metrics)
        cond, values = None, list[Any]()
        if where is not None and str(where).strip():
            cond, values = parse_condition(where, shown)
        order = order_sql(order_by, shown) if order_by else None
        terms: Any = (cond, tuple(values), order, limit)
        try:
            hash(terms)
        except TypeError:  # a value that cannot be a key: searched every time
            terms = None
        if mem is None or terms is None:
            names, rows = self.sql.search_rows(self.engine, sql, binds, cond, values, order, limit, mem)
            return self._frame(names, rows, self._types(params, metrics, cols, agg))
        with summary.one_at_a_time(("answer", id(mem), terms)):  # asked at once: answered once
            kept = mem.answer(terms)  # the same search of the unchanged copy: its answer again
            if kept is None:
                names, rows = self.sql.search_rows(self.engine, sql, binds, cond, values, order, limit, mem)
                kept = self._frame(names, rows, self._types(params, metrics, cols, agg))
                mem.keep(terms, kept)
        return kept.copy()

    def _summary_copy(self, agg: str) -> tuple[Any, Any]:
        """(copy, the :meth:`summary_sql` tuple when this call computed it). copy: (params,
        metrics, types, the per-run rows of :meth:`summary_sql` in an in-memory table ``s``)
        while nothing in the file changed and the processes of its running runs are as they
        were. On a file, whose signature any later Reader of this process can check, the
        first search makes it; on another connection (an in-memory copy), the second search
        of the unchanged summary does (a first search pays no more than the SELECT). None
        when the summary does not answer there."""
        if not self.use_summary or agg not in AGGS:
            return None, None
        key = summary.cache_key(self.engine, self.table, "search", agg)
        if key is None:
            return None, None
        with summary.one_at_a_time(key):  # a thread that finds the copy being made waits for it
            return self._copy(key, agg)

    def _copy(self, key: Any, agg: str) -> tuple[Any, Any]:
        tok = self.summaries.token(self.engine)
        hit = summary.entry(key)
        if hit is not None and hit[0] == tok and hit[3] is not None:
            return hit[3], None
        alive = self._lives()  # before the read: see summary.lives
        built = self.summary_sql(agg)
        tok = self.summaries.token(self.engine)  # after the summary's own writes, before the read
        gen = self.summaries.generation(self.engine, self.table) if self._summary else None
        if tok[0] != "file":
            if not self._summary:
                return None, built
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
        names, rows = self.sql.all_rows(self.engine, sql, binds)
        copy = (params, metrics, cols, self.sql.MemoryRuns(names, rows))
        summary.remember(key, tok, gen, None, copy, alive)
        return copy, built
