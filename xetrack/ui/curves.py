"""The charts page's server side: which runs and metrics it charts, several runs' curves
of a metric at once, a zoomed range of one run's curve, and runs grouped by params as
one mean curve per group with a band.

The runs come as ids (``?run=``) or as the top ``top`` runs of the runs page's filter
and sort (the ``search()`` grammar). Every answer names its runs: ``name`` is the run's
``run_name`` when it has one, else None (the page then shows the track_id).

A range of a curve is read by the store (:meth:`xetrack.store.base.Engine.run_range`):
the run's points between two x values, as the lowest and highest point of each pixel
column, so that zooming into a run of a million points reaches single steps without
the server reading the million points.

>>> group_curves(Reader("exp.db"), runs, "loss", ["model"], "std", None, 500)  # doctest: +SKIP
{'metric': 'loss', 'x_name': 'step', 'groups': [{'label': 'model=rf', 'n': 5, ...}], ...}
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..run_columns import STEP_COLUMNS
from ..schema import TRACK_ID
from .data import (
    MAX_POINTS,
    RELATIVE,
    WALL,
    BadRequest,
    TooLarge,
    check_column,
    curve,
    default_step,
    downsample_indices,
    json_value,
    sort_spec,
)
from .groups import MAX_GROUP_BY, is_system

if TYPE_CHECKING:
    from .reading import TableReader

#: The most runs one charts request covers, and the most points a group request reads.
MAX_RUNS, MAX_READ = 1000, 5_000_000
#: How many runs of the filter the page charts when it is given none.
DEFAULT_TOP = 10
#: The summary column of a run's display name.
NAME = "run_name"
_NUMERIC = ("INTEGER", "REAL", "NUMERIC", "FLOAT", "DOUBLE", "INT", "BIGINT")
_BANDS = {"std": "std", "minmax": "minmax", "min-max": "minmax"}


def float_arg(name: str, text: Any) -> float | None:
    """A finite number from query text, None when absent."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a number, got {str(text)[:40]!r}") from None
    if not math.isfinite(value) or abs(value) > 2**62:  # the bound of every number asked (data.int_arg)
        raise BadRequest(f"{name} must be a finite number from -2**62 to 2**62, got {str(text)[:40]!r}")
    return value


def x_range(xmin: Any, xmax: Any) -> tuple[float, float] | None:
    """``(xmin, xmax)`` from query text: both or neither, xmin < xmax."""
    low, high = float_arg("xmin", xmin), float_arg("xmax", xmax)
    if low is None and high is None:
        return None
    if low is None or high is None:
        raise BadRequest("Pass both xmin and xmax for a range of the curve, or neither")
    if not low < high:
        raise BadRequest(f"xmin must be below xmax, got xmin={low:g}, xmax={high:g}")
    return low, high


# ------------------------------------------------------------------- runs
#: The runs a request charts: (ids, filter, sort, top), as :func:`pick_runs` takes them.
RunChoice = tuple[Sequence[str], str | None, str | None, int]


def pick_runs(
    reader: TableReader, ids: Sequence[str], where: str | None, sort: str | None, top: int
) -> tuple[pd.DataFrame, list[str], int]:
    """(the runs summary rows of the runs charted, the ids given that name no run, how many
    runs the filter matches). With ``ids``, those runs in that order; else the first
    ``top`` runs of ``where`` sorted by ``sort``."""
    ids = list(dict.fromkeys(i for i in ids if i))
    if len(ids) > MAX_RUNS or top > MAX_RUNS:
        raise TooLarge(f"At most {MAX_RUNS} runs per chart, got {max(len(ids), top)}: filter them first")
    if ids:
        runs = reader.runs()
        found = runs[runs[TRACK_ID].isin(ids)]
        order = found[TRACK_ID].map({track_id: i for i, track_id in enumerate(ids)})
        found = found.iloc[np.argsort(order.to_numpy(), kind="stable")]
        present = set(found[TRACK_ID])
        missing = [i for i in ids if i not in present]
        return found, missing, len(found)
    if top < 1:
        raise BadRequest("top must be at least 1")
    matched = reader.search(where or None, order_by=sort_spec(sort))
    return matched.head(top), [], len(matched)


def run_names(frame: pd.DataFrame) -> dict[str, str | None]:
    """track_id -> the run's name (None without one)."""
    if NAME not in frame.columns:
        return {str(t): None for t in frame[TRACK_ID]}
    return {str(t): (str(n) if json_value(n) is not None else None) for t, n in zip(frame[TRACK_ID], frame[NAME])}


def missing_text(reader: TableReader, missing: Sequence[str]) -> list[str]:
    return [f"No run {track_id!r} in table {reader.table_name!r}" for track_id in missing]


def chart_setup(
    reader: TableReader, ids: Sequence[str], where: str | None, sort: str | None, top: int
) -> dict[str, Any]:
    """What the charts page draws: its runs (id, name, status), the metrics that get a
    panel (the model's, then the machine's ``system``), the params to group by, the
    numeric columns an x axis can be, the default step column, and a message per id
    that names no run."""
    frame, missing, total = pick_runs(reader, ids, where, sort, top)
    params, metrics, types = reader.classify()
    numeric = [c for c, t in types.items() if str(t).upper() in _NUMERIC]
    chosen = frame[TRACK_ID].astype(str).tolist()
    names = run_names(frame)
    drawn: list[str] = []
    system: list[str] = []
    for name in metrics:
        if name.lower() in STEP_COLUMNS or name not in numeric:
            continue
        held = name not in frame.columns or frame[name].notna().any()  # a summary column renamed: kept
        if held or frame.empty:
            (system if is_system(name) else drawn).append(name)
    statuses = frame["status"].tolist() if "status" in frame.columns else [None] * len(frame)
    return {
        "table": reader.table_name,
        "runs": [{"track_id": t, "name": names[t], "status": json_value(s)} for t, s in zip(chosen, statuses)],
        "total": total,
        "missing": list(missing),
        "problems": missing_text(reader, missing),
        "metrics": drawn,
        "system": system,
        "params": [p for p in params if p != NAME],
        "numeric": numeric,
        "step": default_step(reader.columns),
    }


# ------------------------------------------------------------------ curves
def curves(
    reader: TableReader,
    runs: RunChoice,
    metric: str,
    x: str | None,
    points: int = MAX_POINTS,
    after: Sequence[int] = (),
    start: Sequence[int] = (),
    span: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Each run's curve of ``metric`` (see :func:`xetrack.ui.data.curve`) with its name,
    for the runs given (a run that does not exist: no points, ``found`` false) or else
    the top runs of the filter. ``after``/``start``, when given, hold one cursor and one
    count per run given, in order (the live update of every run in one request);
    ``span``: the range ``(xmin, xmax)`` of each curve (:func:`curve_range`)."""
    ids = list(dict.fromkeys(i for i in runs[0] if i))
    if (after and len(after) != len(ids)) or (start and len(start) != len(ids)):
        raise BadRequest("Pass one after= and one start= per run=, in the same order")
    frame, _, _ = pick_runs(reader, *runs)
    names = run_names(frame)
    if not ids:
        ids = list(names)
    answers = []
    for i, track_id in enumerate(ids):
        if span is not None:
            one = curve_range(reader, track_id, metric, x, span[0], span[1], points)
        else:
            one = curve(reader, track_id, metric, x, after[i] if after else 0, points, start[i] if start else None)
        one["name"] = names.get(track_id)
        one["found"] = track_id in names
        answers.append(one)
    if answers:
        return {"metric": answers[0]["metric"], "x_name": answers[0]["x_name"], "runs": answers}
    y_name = check_column(reader, metric, "metric")
    return {"metric": y_name, "x_name": x or default_step(reader.columns) or "index", "runs": []}


def range_column(reader: TableReader, x: str | None) -> str:
    """The column a range of a curve is read over: a step or numeric column."""
    x_name = x or default_step(reader.columns)
    if x_name is None or x_name in (WALL, RELATIVE):
        shown = "time" if x_name else "the point index (the table has no step column)"
        raise BadRequest(f"A range of a curve is read over a step or numeric x column, not over {shown}")
    return check_column(reader, x_name, "x column")


def curve_range(
    reader: TableReader, track_id: str, metric: str, x: str | None, low: float, high: float, points: int
) -> dict[str, Any]:
    """The run's points of ``metric`` with ``low <= x <= high``, at most ``points`` of
    them: the lowest and highest point of each of ``points // 2`` equal columns of the
    range (every point when there are that few), read by the store. ``n``: the points in
    the range."""
    y_name = check_column(reader, metric, "metric")
    x_name = range_column(reader, x)
    fetched, n = reader.store.run_range(reader.table_name, track_id, y_name, x_name, low, high, max(1, points // 2))
    return {
        "track_id": track_id,
        "metric": y_name,
        "x_name": x_name,
        "x": [_number(px) for px, _ in fetched],
        "y": [_number(py) for _, py in fetched],
        "n": n,
        "range": [low, high],
        "cursor": None,
    }


def _number(value: Any) -> Any:
    """A stored number as JSON: integers stay integers (a Decimal becomes a float)."""
    if isinstance(value, (bool, int)):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


# ------------------------------------------------------------------ groups
def check_group_by(reader: TableReader, frame: pd.DataFrame, by: Sequence[str]) -> list[str]:
    """The params ``by`` names as the table spells them; a 400 for one that is no param."""
    if len(by) > MAX_GROUP_BY:
        raise BadRequest(f"Group by at most {MAX_GROUP_BY} params, got {len(by)}")
    params, _, _ = reader.classify()
    lowered = {p.lower(): p for p in params if p in frame.columns or frame.empty}
    out = []
    for name in by:
        found = lowered.get(name.lower())
        if found is None:
            listed = ", ".join(lowered.values()) or "none"
            raise BadRequest(f"Cannot group by {name!r}: not a param of table {reader.table_name!r}. Params: {listed}")
        if found not in out:
            out.append(found)
    return out


def label(by: Sequence[str], values: Sequence[Any]) -> str:
    """``model=rf, lr=0.1``; every run in one group without ``by``: ``all runs``."""
    if not by:
        return "all runs"
    return ", ".join(f"{b}={_shown(v)}" for b, v in zip(by, values))


def _shown(value: Any) -> str:
    return str(json_value(value))


def run_points(reader: TableReader, track_ids: Sequence[str], y_name: str, x_name: str | None) -> pd.DataFrame:
    """``track_id, x, y`` of the runs' points that are numbers (x: the point's index
    without a step column), read whole after counting them: past MAX_READ, a 413."""
    engine, table = reader.store, reader.table_name
    counted = sum(engine.points_before(table, t, y_name, 2**62) for t in track_ids)
    if counted > MAX_READ:
        raise TooLarge(
            f"These {len(track_ids)} runs hold {counted:,} points of {y_name!r}; a group chart reads at most "
            f"{MAX_READ:,}: chart fewer runs (filter them) or fewer groups"
        )
    parts = []
    for track_id in track_ids:
        fetched, _ = engine.run_points(table, track_id, [y_name] + ([x_name] if x_name else []), 0)
        if not fetched:
            continue
        width = 3 if x_name else 2
        try:  # numbers only, the common case: ten times faster than a column at a time
            flat = itertools.chain.from_iterable(fetched)
            grid = np.fromiter(flat, dtype=float, count=width * len(fetched)).reshape(len(fetched), width)
        except (TypeError, ValueError):  # text among them: NaN, left out below
            columns = zip(*fetched)
            grid = np.column_stack(
                [pd.to_numeric(pd.Series(c, dtype=object), errors="coerce").to_numpy(dtype=float) for c in columns]
            )
        y = grid[:, 1]
        xs = grid[:, 2] if x_name else np.arange(len(y), dtype=float)
        parts.append(pd.DataFrame({TRACK_ID: track_id, "x": xs, "y": y}))
    if not parts:
        empty = {TRACK_ID: pd.Series(dtype=object), "x": pd.Series(dtype=float), "y": pd.Series(dtype=float)}
        return pd.DataFrame(empty)
    points = pd.concat(parts, ignore_index=True)
    return points[np.isfinite(points["x"]) & np.isfinite(points["y"])]


def group_curves(
    reader: TableReader,
    runs: RunChoice,
    metric: str,
    by: Sequence[str],
    band: str,
    x: str | None,
    points: int = MAX_POINTS,
    span: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """One curve per group of the runs ``runs`` picks (:func:`pick_runs`) with the same
    values of the params ``by``: at each x (the step column; runs are aligned on it),
    the ``count`` of runs with a point there, their ``mean``, ``std`` (0 for one run),
    ``min`` and ``max``; ``lower``/``upper``: the band, mean -+ std or min and max.
    Downsampled to at most ``points`` x values (the mean's extremes kept); ``span``: only
    the x values in that range. At most MAX_RUNS runs and MAX_READ points (else 413)."""
    frame, missing, _ = pick_runs(reader, *runs)
    kind = _BANDS.get(band or "std")
    if kind is None:
        raise BadRequest(f"band must be 'std' or 'min-max', got {band!r}")
    y_name = check_column(reader, metric, "metric")
    x_name = x or default_step(reader.columns)
    if x_name in (WALL, RELATIVE):
        raise BadRequest("Group curves align runs on a step or numeric x column, not on time")
    if x_name is not None:
        x_name = check_column(reader, x_name, "x column")
    by = check_group_by(reader, frame, by)
    names = run_names(frame)
    ids = list(names)
    keys = frame[list(by)].astype(object).apply(lambda row: tuple(json_value(v) for v in row), axis=1) if by else None
    group_of = {t: (keys.iloc[i] if keys is not None else ()) for i, t in enumerate(ids)}
    points_frame = run_points(reader, ids, y_name, x_name)
    read = len(points_frame)
    if span is not None:
        within = (points_frame["x"] >= span[0]) & (points_frame["x"] <= span[1])
        points_frame = points_frame[within]
    members: dict[tuple[Any, ...], list[str]] = {}
    for track_id in ids:
        members.setdefault(group_of[track_id], []).append(track_id)
    answer = []
    for key, group in members.items():
        mine = points_frame[points_frame[TRACK_ID].isin(group)]
        stats = mine.groupby("x", sort=True)["y"].agg(["count", "mean", "std", "min", "max"])
        stats["std"] = stats["std"].fillna(0.0)
        mean = stats["mean"].to_numpy(dtype=float)
        chosen = downsample_indices(mean, points) if len(mean) else np.arange(0)
        stats = stats.iloc[chosen]
        if kind == "std":
            lower, upper = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
        else:
            lower, upper = stats["min"], stats["max"]
        xs = stats.index.to_numpy(dtype=float)
        answer.append(
            {
                "key": {b: json_value(v) for b, v in zip(by, key)},
                "label": label(by, key),
                "n": len(group),
                "runs": [{"track_id": t, "name": names[t]} for t in group],
                "x": [int(v) if v.is_integer() and abs(v) < 2**53 else v for v in xs.tolist()],
                "count": [int(v) for v in stats["count"].tolist()],
                "mean": _floats(stats["mean"]),
                "std": _floats(stats["std"]),
                "min": _floats(stats["min"]),
                "max": _floats(stats["max"]),
                "lower": _floats(lower),
                "upper": _floats(upper),
            }
        )
    return {
        "metric": y_name,
        "x_name": x_name or "index",
        "by": list(by),
        "band": "std" if kind == "std" else "min-max",
        "groups": answer,
        "points_read": int(read),
        "missing": missing,
        "problems": missing_text(reader, missing),
    }


def _floats(series: pd.Series) -> list[Any]:
    return [v if math.isfinite(v) else None for v in series.to_numpy(dtype=float).tolist()]
