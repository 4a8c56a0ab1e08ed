"""Runs read back the way MLflow returns them: ``search_runs``' DataFrame (``run_id``,
``status``, ``start_time``, ``params.<k>``, ``metrics.<k>``, ``tags.<k>``...), a
:class:`~xetrack.mlflow.entities.Run`, a metric's history as
:class:`~xetrack.mlflow.entities.Metric` points. Everything goes through
:class:`xetrack.Reader` (``classify``, ``search``, ``to_df``, ``tags``).

An MLflow key is found by its column: the column it was logged to (``train/loss`` ->
``train_loss``), shown under the key as logged when xetrack recorded it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import meta
from ..errors import ColumnNotFoundError, TableNotFoundError
from ..run_columns import summary_names
from ..schema import TRACK_ID, column_name
from ..store import is_url
from . import _filter
from .entities import Experiment, Metric, Run, RunData, RunInfo, stamp_to_ms, to_mlflow_status

#: The column of the step: never one of MLflow's metrics.
STEP = "step"
BASE = ["run_id", "experiment_id", "status", "start_time", "end_time"]
RUN_NAME_TAG = "mlflow.runName"


@contextmanager
def reader(db: str, table: str = "default") -> Iterator[Any]:
    """A Reader of ``table`` in ``db``, closed after use."""
    from ..reader import Reader

    opened = Reader(db, table=table)
    try:
        yield opened
    finally:
        opened.close()


def exists(db: str) -> bool:
    return is_url(db) or os.path.isfile(db)


def tables(db: str) -> list[str]:
    """The experiment tables of ``db`` (none when the file does not exist yet)."""
    if not exists(db):
        return []
    with reader(db) as r:
        return list(r.store.tables())


def find_table(db: str, run_id: str, first: str | None = None) -> str | None:
    """The table that holds run ``run_id`` (``first`` is looked in first), or None."""
    from ..runs import run_records

    if not isinstance(run_id, str) or not run_id:
        raise TypeError(f"run_id must be a non-empty str, got {run_id!r}")
    names = tables(db)
    if first in names:
        names.remove(first)
        names.insert(0, first)
    if not names:
        return None
    with reader(db, names[0]) as r:
        for table in names:
            if run_id in run_records(r.store, table) or r.store.count(table, {TRACK_ID: run_id}):
                return table
    return None


def experiment(db: str, table: str) -> Experiment | None:
    """The experiment of ``table`` (None when ``db`` has no such table): named as its
    description keeps it (``MLflow experiment: <name>``), else by the table."""
    from ..migrate.mlflow_import import DESCRIPTION_HEAD

    names = tables(db)
    if table not in names:
        return None
    with reader(db, table) as r:
        text = meta.descriptions(r.store).get(table) or ""
    name = text.split("\n", 1)[0][len(DESCRIPTION_HEAD) :] if text.startswith(DESCRIPTION_HEAD) else table
    return Experiment(experiment_id=table, name=name, artifact_location="", lifecycle_stage="active", tags={})


class Columns:
    """One table's runs summary as MLflow names it: summary column -> params or metrics key."""

    def __init__(self, r: Any, table: str) -> None:
        params, metrics, self.types = r.classify()
        has_names, self.tag_keys = meta.summary_columns(r.store, table)
        reserved = (["run_name"] if has_names else []) + ["tags." + k for k in self.tag_keys]
        names = summary_names(params, metrics, reserved)
        keys = {c: key or c for c, (_, key) in meta.recorded_keys(r.store, table).items()}
        self.has_names = has_names
        self.params = {names[c]: keys.get(c, c) for c in params}
        self.metrics = {names[c]: keys.get(c, c) for c in metrics if c.lower() != STEP}
        self.types = {names[c]: t for c, t in self.types.items() if c in names}
        self._lookup = {
            kind: {k.lower(): s for s, k in found.items()} | {column_name(k).lower(): s for s, k in found.items()}
            for kind, found in (("params", self.params), ("metrics", self.metrics))
        }

    def column(self, entity: str, key: str) -> str | None:
        """The summary column of ``metrics``/``params``/``tags`` ``key`` (None: not in the table)."""
        if entity == "attributes":
            return "run_name" if key == "run_name" and self.has_names else None
        if entity == "tags":
            return key if key in self.tag_keys else None
        found = self._lookup[entity]
        return found.get(key.lower()) or found.get(column_name(key).lower())


def param_text(value: Any) -> str | None:
    """A param as MLflow shows it: its text (``0.1`` -> ``'0.1'``, True -> ``'True'``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    item = getattr(value, "item", None)
    if callable(item):
        value = item()
    try:
        import pandas as pd

        if value is pd.NA:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return str(value)


def _datetimes(values: Any) -> Any:
    """The wide table's local stamps as UTC datetimes (NaT where None), on ``values``' index."""
    import pandas as pd

    ms = pd.Series([stamp_to_ms(v) for v in values], index=values.index, dtype="float64")
    return pd.to_datetime(ms, unit="ms", utc=True)


def table_frame(db: str, table: str, clauses: list[_filter.Clause], missing: list[str]) -> Any:
    """The runs of one table that match ``clauses``, in MLflow's columns (None: the table
    does not exist). A clause on a column the table lacks matches nothing there (its name
    goes to ``missing``)."""
    import pandas as pd

    try:
        with reader(db, table) as r:
            cols = Columns(r, table)
            try:
                where = _filter.condition(clauses, cols.column, cols.types)
                found = r.search(where)
            except (_filter.Missing, ColumnNotFoundError) as exc:
                missing.append(str(exc.args[0]) if exc.args else str(exc))
                return pd.DataFrame(columns=BASE)
    except TableNotFoundError:
        return None
    out = pd.DataFrame(
        {
            "run_id": found[TRACK_ID].astype(object),
            "experiment_id": table,
            "status": [to_mlflow_status(s) for s in found["status"]],
            "start_time": _datetimes(found["start"]),
            "end_time": _datetimes(found["end"]),
        }
    )
    extra: dict[str, Any] = {}
    for summary, key in cols.metrics.items():
        extra["metrics." + key] = pd.to_numeric(found[summary], errors="coerce").astype("float64")
    for summary, key in cols.params.items():
        extra["params." + key] = pd.Series([param_text(v) for v in found[summary]], dtype=object, index=found.index)
    for key in cols.tag_keys:
        if key != RUN_NAME_TAG:
            extra["tags." + key] = found["tags." + key].astype(object)
    names = found["run_name"] if "run_name" in found else pd.Series([None] * len(found), index=found.index)
    kept = found["tags." + RUN_NAME_TAG] if RUN_NAME_TAG in cols.tag_keys else names
    extra["tags." + RUN_NAME_TAG] = names.astype(object).fillna(kept.astype(object)).fillna(found[TRACK_ID])
    frame = pd.concat([out, pd.DataFrame(extra, index=found.index)], axis=1)
    return frame.reset_index(drop=True)


def search_frame(
    db: str,
    names: list[str],
    filter_string: str | None = None,
    order_by: Any = None,
    max_results: int | None = None,
    warn_missing: bool = True,
) -> Any:
    """``search_runs``' DataFrame over the tables ``names`` of ``db``."""
    import pandas as pd

    clauses = _filter.parse_filter(filter_string or None)
    order = _filter.parse_order(order_by)
    if max_results is not None and (
        isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1
    ):
        raise ValueError(f"max_results must be an int >= 1, got {max_results!r}")
    frames: list[Any] = []
    missing: list[str] = []
    existing = set(tables(db))
    for table in names:
        if table not in existing:
            continue
        frame = table_frame(db, table, clauses, missing)
        if frame is not None and len(frame):
            frames.append(frame)
    if not frames:
        if missing and len(missing) == len([t for t in names if t in existing]) and warn_missing:
            warnings.warn(f"search_runs: no run has {missing[0]}, so none matches", stacklevel=3)
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if "time" in c else object) for c in BASE})
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = frame.loc[:, [c for c in frame.columns if c in BASE or frame[c].notna().any()]]
    for name, _ in order:
        if name not in frame.columns and warn_missing:
            warnings.warn(f"search_runs: order_by {name!r}: no run found has it", stacklevel=3)
    keys = [(n, a) for n, a in order if n in frame.columns] + [("start_time", False), ("run_id", True)]
    frame = frame.sort_values(
        [n for n, _ in keys], ascending=[a for _, a in keys], na_position="last", kind="mergesort"
    ).reset_index(drop=True)
    return frame.head(max_results) if max_results is not None else frame


def frame_runs(frame: Any) -> list[Run]:
    """The rows of a search frame as Run objects."""
    runs = []
    for row in frame.to_dict("records"):
        data = RunData(metrics={}, params={}, tags={})
        for name, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            kind, _, key = name.partition(".")
            if kind == "metrics":
                data.metrics[key] = float(value)
            elif kind == "params":
                data.params[key] = str(value)
            elif kind == "tags":
                data.tags[key] = str(value)
        runs.append(Run(info=_info(row, data.tags.get(RUN_NAME_TAG)), data=data))
    return runs


def _info(row: dict[str, Any], run_name: str | None) -> RunInfo:
    def ms(value: Any) -> int | None:
        return None if value is None or value != value else int(value.timestamp() * 1000)

    return RunInfo(
        run_id=row["run_id"],
        experiment_id=row["experiment_id"],
        run_name=run_name or row["run_id"],
        status=row["status"],
        start_time=ms(row.get("start_time")),
        end_time=ms(row.get("end_time")),
        lifecycle_stage="active",
        user_id=None,
        artifact_uri=None,
    )


def get_run(db: str, table: str, run_id: str) -> Run:
    """Run ``run_id`` of ``table``: from its summary row, or, before it logged a row, from
    its status, tags and name alone."""
    from ..runs import run_records

    clause = "attributes.run_id = '" + run_id.replace("'", "''") + "'"
    found = frame_runs(search_frame(db, [table], clause, warn_missing=False))
    if found:
        return found[0]
    with reader(db, table) as r:
        status, start, end = run_records(r.store, table).get(run_id, ("running", None, None))
        tags = r.tags(run_id)
        name = meta.run_names(r.store, table).get(run_id) or tags.get(RUN_NAME_TAG) or run_id
    tags[RUN_NAME_TAG] = name
    info = RunInfo(
        run_id=run_id,
        experiment_id=table,
        run_name=name,
        status=to_mlflow_status(status),
        start_time=stamp_to_ms(start),
        end_time=stamp_to_ms(end),
        lifecycle_stage="active",
        user_id=None,
        artifact_uri=None,
    )
    return Run(info=info, data=RunData(metrics={}, params={}, tags=tags))


def metric_history(db: str, table: str, run_id: str, key: str) -> list[Metric]:
    """Every value of metric ``key`` in run ``run_id``, oldest first, with its step (0 when
    none was given, as MLflow has it) and timestamp (ms). A key never logged: ``[]``."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"A metric key is a non-empty str, got {key!r}")
    with reader(db, table) as r:
        kinds = meta.recorded_keys(r.store, table)
        frame = r.to_df(track_id=run_id)
    logged_as = {(k or c).lower(): c for c, (kind, k) in kinds.items() if kind == "metric"}
    params = {c.lower() for c, (kind, _) in kinds.items() if kind == "param"}
    columns = {c.lower(): c for c in frame.columns}
    column = columns.get(logged_as.get(key.lower(), column_name(key)).lower())
    if column is None or column.lower() in params or column.lower() == STEP:
        return []  # not a metric of this table
    import pandas as pd

    steps = frame[columns[STEP]] if STEP in columns else [None] * len(frame)
    out = []
    for stamp, step, value in zip(frame["timestamp"], steps, frame[column]):
        if pd.isna(value):
            continue
        out.append(Metric(key, float(value), stamp_to_ms(stamp) or 0, 0 if pd.isna(step) else int(step)))
    return out


__all__ = [
    "reader",
    "tables",
    "experiment",
    "find_table",
    "Columns",
    "search_frame",
    "frame_runs",
    "get_run",
    "metric_history",
]
