"""``history``, ``compare``, ``aggregate`` and ``predictions`` of :class:`~xetrack.run_queries.RunQueries`
(a mixin), and the dispatch of every run query of a wide table to :mod:`xetrack.run_wide`.

>>> RunQueries(Reader("exp.db").store, "default").compare(["a", "b"])  # doctest: +SKIP
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .filters import order_sql, parse_condition
from .filters import resolve_column as _resolve
from .frames import frame_from_rows
from .run_columns import BASE, STEP_COLUMNS, same_value_key, split_kinds
from .run_wide import PART_COLUMNS, is_wide, memory_of, named, tags_start
from .store.base import close_matches


class RunReads:
    """The run queries that read the summary frame's rows, or a run's values over steps."""

    engine: Any
    table: str
    sql: Any
    columns: Any
    summary_sql: Any
    runs: Any
    spilled: Any
    _frame: Any
    _types: Any
    _columns_out: Any
    classify: Any
    _recorded: Any
    _names: Any
    _select: Any
    _select_rows: Any

    def classify_all(self) -> tuple[list[str], list[str], dict[str, str]]:
        """``classify()`` with the spilled keys too, after the columns, by the same rules."""
        params, metrics, types = self.classify()
        keys = self.spilled()
        if not keys:
            return params, metrics, types
        lower = {k.lower(): k for k in keys}
        varies: dict[str, bool] = {}
        for _, key, low, high, _, _ in self.sql.spilled_stats(self.engine, self.table):
            name = lower.get(str(key).lower())
            if name is not None:
                varies[name] = varies.get(name, False) or low != high
        logical = self.engine.column_types(self.table)
        spilled_types = {k: logical.get(k, "") for k in keys}
        more_params, more_metrics, _ = split_kinds(
            keys, [varies.get(k, False) for k in keys], spilled_types, self._recorded()
        )
        return [*params, *more_params], [*metrics, *more_metrics], {**types, **spilled_types}

    # -- a wide table: the same queries over the runs() frame ----------------------
    def _wide_runs(self, agg: str) -> pd.DataFrame:
        """``runs(agg)`` of a wide table (see the module)."""
        params, metrics, cols = self.classify()
        names = self._names(params, metrics)
        parts = [metrics[i : i + PART_COLUMNS] for i in range(0, max(len(metrics), 1), PART_COLUMNS)]
        frames: list[pd.DataFrame] = []
        for k, part in enumerate(parts):
            chosen = params if k == 0 else []
            sql, binds = self._select(agg, chosen, part, cols) if k == 0 else self._select_rows(agg, chosen, part, cols)
            got, rows = self.sql.runs_rows(self.engine, sql, binds)
            frame = self._frame(got, rows, self._types(params, metrics, cols, agg))
            if k:
                if not frame["track_id"].equals(frames[0]["track_id"]):
                    raise RuntimeError("The parts of a wide runs() disagree on the runs: the table changed meanwhile")
                frame = frame.drop(columns=list(BASE))
            frames.append(frame)
        out = pd.concat(frames, axis=1) if len(frames) > 1 else frames[0]
        spilled = self.spilled()
        if not spilled:
            return out
        return self._with_spilled(out, spilled, agg, names, params, metrics)

    def _with_spilled(
        self,
        frame: pd.DataFrame,
        keys: list[str],
        agg: str,
        names: dict[str, str],
        params: list[str],
        metrics: list[str],
    ) -> pd.DataFrame:
        """``frame`` with a column per spilled key: a param (recorded so, or one value in
        every run) after the params, a metric after the metrics, in the order they spilled."""
        stats = self.sql.spilled_stats(self.engine, self.table)  # (track_id, key, min, max, mean, count)
        lower = {k.lower(): k for k in keys}
        recorded = self._recorded()
        varies: dict[str, bool] = {}
        for _, key, low, high, _, _ in stats:
            name = lower.get(str(key).lower())
            if name is not None:
                varies[name] = varies.get(name, False) or low != high
        kinds = {k: recorded.get(k) or ("metric" if varies.get(k) else "param") for k in keys}
        params_of = {(t, lower.get(str(k).lower())): high for t, k, _, high, _, _ in stats}
        if agg in ("last", "first"):
            ends = self.sql.spilled_ends(self.engine, self.table, agg == "last")
            values = {(t, lower.get(str(k).lower())): v for t, k, v in ends}
        else:
            at = {"min": 2, "max": 3, "mean": 4}[agg]
            values = {(r[0], lower.get(str(r[1]).lower())): r[at] for r in stats}
        types = self.engine.column_types(self.table)
        runs = frame["track_id"].tolist()
        columns: dict[str, list[Any]] = {}
        decl: dict[str, str] = {}
        taken = {c.lower() for c in frame.columns}
        for key in keys:
            source = params_of if kinds[key] == "param" else values
            out = key
            while out.lower() in taken:
                out += "_"
            taken.add(out.lower())
            columns[out] = [source.get((t, key)) for t in runs]
            decl[out] = "REAL" if kinds[key] != "param" and agg == "mean" else types.get(key, "")
        if not runs:
            extra = frame_from_rows(list(columns), [decl[c] for c in columns], [])
        else:
            extra = frame_from_rows(list(columns), [decl[c] for c in columns], list(zip(*columns.values())))
        first_metric = next((i for i, c in enumerate(frame.columns) if c in {names[m] for m in metrics}), None)
        after_params = first_metric if first_metric is not None else tags_start(frame)
        spilled_params = [c for c, key in zip(columns, keys) if kinds[key] == "param"]
        spilled_metrics = [c for c, key in zip(columns, keys) if kinds[key] != "param"]
        cut = tags_start(frame)
        pieces = [
            frame.iloc[:, :after_params],
            extra[spilled_params],
            frame.iloc[:, after_params:cut],
            extra[spilled_metrics],
            frame.iloc[:, cut:],
        ]
        return pd.concat([p.reset_index(drop=True) for p in pieces], axis=1)

    def _wide_search(self, where: Any, order_by: Any, limit: int | None, agg: str) -> pd.DataFrame | None:
        """``search`` of a wide table (:mod:`xetrack.run_wide`), or None for the others."""
        if not is_wide(self):
            return None
        frame = self.runs(agg)
        shown = [str(c) for c in frame.columns]
        cond, values = None, list[Any]()
        if where is not None and str(where).strip():
            cond, values = parse_condition(where, shown)
        order = order_sql(order_by, shown) if order_by else None
        mem = memory_of(self, frame, named(f"{cond or ''} {order or ''}", shown))
        _, rows = self.sql.search_rows(self.engine, None, [], cond, values, order, limit, mem)
        return frame.iloc[[r[0] for r in rows]].reset_index(drop=True)

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
            return frame_from_rows(["track_id", "step", "value"][len(constants) :], decls, rows, constants)
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
        (a str object per row) but repeated in the frame. Rows come in table order. A
        spilled key's values are joined to their rows.
        """
        cols = self.columns()
        spilled = {k.lower(): k for k in self.spilled()}
        key = spilled.get(str(metric).lower())
        if key is None:
            metric = _resolve(metric, list(cols), self.table)
        if step is None:
            step = next((c for c in STEP_COLUMNS if c in cols), None)
        else:
            step = _resolve(step, list(cols), self.table)
        one = isinstance(track_id, str)  # any other value: the stored ids, as SQLite matched them
        if key is not None:
            sql, binds = self.sql.spilled_history_sql(self.table, key, step, track_id, one)
            value_type = self.engine.column_types(self.table).get(key, "")
        else:
            sql, binds = self.sql.history_sql(self.table, metric, step, track_id, one)
            value_type = cols[metric]
        decls = [cols.get(step, "INTEGER") if step else "INTEGER", value_type]
        if one:
            return sql, binds, decls, [("track_id", "", track_id)]
        return sql, binds, ["", *decls], []

    def compare(self, track_ids: Sequence[str], only_diff: bool = False, agg: str = "last") -> pd.DataFrame:
        if isinstance(track_ids, str):
            track_ids = [track_ids]
        ids = list(dict.fromkeys(track_ids))
        if not ids:
            raise ValueError("compare needs at least one track_id")
        if is_wide(self):
            whole = self.runs(agg)
            frame = whole[whole["track_id"].isin(ids)]
        else:
            sql, binds, params, metrics, cols = self.summary_sql(agg)
            names, rows = self.sql.compare_rows(self.engine, sql, binds, ids)
            frame = self._frame(names, rows, self._types(params, metrics, cols, agg))
        found = set(frame["track_id"]) if len(frame) else set()
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(
                f"Run {missing[0]!r} not found in table {self.table!r}."
                f"{close_matches(missing[0], self.sql.run_ids(self.engine, self.table))}"
            )
        out = frame.set_index("track_id").loc[ids].T.astype(object)
        out.index.name = "field"
        out.columns.name = None
        if only_diff:
            same = out.apply(lambda r: len({same_value_key(v) for v in r}) <= 1, axis=1)
            out = out[~same]
        return out

    def aggregate(self, metric: str, by: Sequence[str], agg: Sequence[str], run_agg: str = "last") -> pd.DataFrame:
        aggs = [agg] if isinstance(agg, str) else list(agg)
        group_aggs = self.sql.GROUP_AGGS
        for a in aggs:
            if a not in group_aggs:
                raise ValueError(f"Unknown agg {a!r}: choose from {', '.join(group_aggs)}")
        by = [by] if isinstance(by, str) else list(by)
        if is_wide(self):
            whole = self.runs(run_agg)
            shown = [str(c) for c in whole.columns]
            m = _resolve(metric, shown, self.table + " runs summary")
            keys = [_resolve(b, shown, self.table + " runs summary") for b in by]
            mem = memory_of(self, whole, [*keys, m])
            names, rows = self.sql.aggregate_rows(self.engine, "", [], m, keys, aggs, memory=mem)
            frame = frame_from_rows(names, [""] * len(names), rows)
            for k in keys:  # the groups' values as the runs frame types them
                if len(frame):
                    frame[k] = frame[k].astype(whole[k].dtype, errors="ignore")
            return frame
        sql, binds, params, metrics, cols = self.summary_sql(run_agg)
        summary = self._columns_out(params, metrics)
        m = _resolve(metric, summary, self.table + " runs summary")
        keys = [_resolve(b, summary, self.table + " runs summary") for b in by]
        names, rows = self.sql.aggregate_rows(self.engine, sql, binds, m, keys, aggs)
        types = {**self._types(params, metrics, cols, run_agg), "count": "INTEGER"}
        return self._frame(names, rows, {n: ("REAL" if n in ("mean", "std") else types.get(n, "")) for n in names})

    def predictions(self, track_id: str, name: str | None = None) -> pd.DataFrame:
        found = self.sql.prediction_rows(self.engine, self.table, track_id, name)
        if found is None:
            return pd.DataFrame({"idx": pd.Series([], dtype="int64"), "prediction": [], "actual": []})
        names, rows = found
        frame = pd.DataFrame(rows, columns=names)
        return frame.infer_objects()


__all__ = ["RunReads"]
