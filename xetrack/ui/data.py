"""What the dashboard's JSON API answers, computed from a :class:`~xetrack.Reader`.

Runs, search, compare, the param/metric split, artifacts and models come from the
Reader's public calls. The few reads the Reader has no call for (a run's rows after a
cursor, a page of a run's rows, one run's points of a metric, a run's error text) are
the run reads of its store (``reader.store``, :class:`xetrack.store.base.Engine`), on
SQLite and PostgreSQL alike: names are checked against the table's columns first, and
the engine binds every value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import NotFoundError
from ..run_columns import STEP_COLUMNS
from ..schema import TIMESTAMP, TRACK_ID

if TYPE_CHECKING:
    from .reading import TableReader

#: The most points one series of a curve answer holds (min and max of 2,000 buckets).
MAX_POINTS = 4000
MAX_PAGE = 1000
#: The largest number a query parameter takes: engines bind 64-bit integers.
MAX_INT = 2**62
#: x axes a curve can use besides a column: wall-clock time, and seconds since the run began.
WALL, RELATIVE = "_wall", "_relative"


class BadRequest(ValueError):
    """A request the API refuses with 400 and this message."""


class TooLarge(ValueError):
    """A request past what one request may cost (runs, points, CSV size): 413 and this message."""


#: The most runs and points one CSV download holds, and the most runs one compare shows.
MAX_CSV_RUNS, MAX_CSV_POINTS, MAX_COMPARE_RUNS = 50, 5_000_000, 100


def json_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """``{"columns": [...], "rows": [[...], ...]}`` with NULL, NaN and +-inf as None."""
    columns = [str(c) for c in frame.columns]
    values = [json_values(frame[c]) for c in frame.columns]
    return {"columns": columns, "rows": [list(row) for row in zip(*values)] if values else []}


def json_values(series: pd.Series) -> list[Any]:
    """A column as JSON-ready Python values."""
    if series.dtype.kind == "f":
        array = series.to_numpy(dtype=float, na_value=np.nan)
        return [v if math.isfinite(v) else None for v in array.tolist()]
    return [json_value(v) for v in series.astype(object).tolist()]


def json_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, np.generic):
        return json_value(value.item())
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_value(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    return str(value)


def page_args(page: Any, size: Any, default: int = 100) -> tuple[int, int]:
    """``page`` (0-based) and ``size`` from query text, checked."""
    number = int_arg("page", page, 0)
    count = int_arg("size", size, default)
    if count < 1 or count > MAX_PAGE:
        raise BadRequest(f"size must be between 1 and {MAX_PAGE}, got {count}")
    last = (MAX_INT - 1) // count  # the page's first row, page * size, stays under MAX_INT
    if number > last:
        raise BadRequest(f"page must be at most {last} with size={count}, got {number}")
    return number, count


def int_arg(name: str, text: Any, default: int) -> int:
    """A number >= 0 from query text (``default`` when absent), at most MAX_INT."""
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be an integer, got {_shown(text)}") from None
    if value < 0:
        raise BadRequest(f"{name} must be >= 0, got {_shown(value)}")
    if value > MAX_INT:
        raise BadRequest(f"{name} must be at most {MAX_INT} (2**62), got {_shown(value)}")
    return value


def _shown(text: Any) -> str:
    """``text`` for an error message, cut short when it is long."""
    shown = str(text)
    if len(shown) > 40:
        return f"{shown[:30]!r}... ({len(shown)} characters)"
    return shown if isinstance(text, int) else repr(shown)


def check_column(reader: TableReader, name: str, what: str = "column") -> str:
    """``name`` as the table spells it; a 400 that lists the columns otherwise."""
    columns = reader.columns
    if name in columns:
        return name
    lowered = {c.lower(): c for c in columns}
    if name.lower() in lowered:
        return lowered[name.lower()]
    raise BadRequest(f"Unknown {what} {name!r} in table {reader.table_name!r}. Columns: {', '.join(columns)}")


# ------------------------------------------------------------------ experiments
def tables(reader: TableReader, open_reader: Callable[[str], TableReader]) -> list[dict[str, Any]]:
    """Every table of the file: name, rows, runs, and the timestamp of its last row
    (``open_reader(table)`` opens a Reader of another table, closed once read)."""
    frame = reader.tables()
    answer = []
    for row in frame.to_dict("records"):
        name = str(row["table"])
        last = None
        if int(row["rows"]):
            one = reader if name == reader.table_name else open_reader(name)
            try:
                tail = one.tail(1)
                if TIMESTAMP in tail.columns and len(tail):
                    last = json_value(tail[TIMESTAMP].iloc[0])
            finally:
                if one is not reader:
                    one.close()
        answer.append({"table": name, "rows": int(row["rows"]), "runs": int(row["runs"]), "last": last})
    return answer


# ------------------------------------------------------------------------ runs
def sort_spec(sort: str | None) -> list[str] | None:
    """``'-acc,loss'`` -> ``['-acc', 'loss']`` (``search()`` checks the names)."""
    if not sort:
        return None
    keys = [part.strip() for part in sort.split(",") if part.strip()]
    for key in keys:
        if key.lstrip("-").strip() == "":
            raise BadRequest(f"sort must be column names, each with an optional '-' for descending, got {sort!r}")
    return keys or None


def runs_page(
    reader: TableReader, where: str | None, sort: str | None, page: int, size: int, columns: Sequence[str] | None
) -> dict[str, Any]:
    """One page of the runs matching ``where`` (the ``search()`` grammar), sorted server-side.

    >>> runs_page(Reader("exp.db"), "metrics.acc > 0.9", "-acc", 0, 100, None)["total"]  # doctest: +SKIP
    12
    """
    frame = reader.search(where or None, order_by=sort_spec(sort))
    all_columns = [str(c) for c in frame.columns]
    total = len(frame)
    if columns:
        unknown = [c for c in columns if c not in all_columns]
        if unknown:
            raise BadRequest(f"Unknown column {unknown[0]!r}. Columns: {', '.join(all_columns)}")
        shown = [TRACK_ID] + [c for c in columns if c != TRACK_ID]
        frame = frame[shown]
    start = page * size
    body = json_frame(frame.iloc[start : start + size])
    body.update(total=total, page=page, size=size, all_columns=all_columns)
    return body


def scatter(reader: TableReader, where: str | None, x: str, y: str) -> dict[str, Any]:
    """Two fields of every run matching ``where``, for a scatter plot."""
    frame = reader.search(where or None)
    for name in (x, y):
        if name not in frame.columns:
            raise BadRequest(f"Unknown field {name!r}. Fields: {', '.join(map(str, frame.columns))}")
    return {
        "track_id": json_values(frame[TRACK_ID]),
        "x": json_values(frame[x]),
        "y": json_values(frame[y]),
    }


def compare(reader: TableReader, track_ids: Sequence[str]) -> dict[str, Any]:
    """Fields as rows, runs as columns, and whether each field differs across them."""
    if len(track_ids) < 1:
        raise BadRequest("Pass one or more runs to compare: ?run=ID&run=ID")
    if len(track_ids) > MAX_COMPARE_RUNS:
        raise TooLarge(f"At most {MAX_COMPARE_RUNS} runs side by side, got {len(track_ids)}")
    try:
        frame = reader.compare(list(track_ids))
    except KeyError as exc:  # an unknown run: a 404 with compare()'s own message
        raise NotFoundError(str(exc.args[0]) if exc.args else f"No such run in {track_ids!r}") from None
    runs = [str(c) for c in frame.columns[1:]]
    fields = []
    for row in frame.itertuples(index=False):
        values = [json_value(v) for v in row[1:]]
        fields.append({"field": str(row[0]), "values": values, "differs": len({repr(v) for v in values}) > 1})
    return {"runs": runs, "fields": fields}


def columns_info(reader: TableReader) -> dict[str, Any]:
    """The table's columns, which are params and metrics, and which hold numbers."""
    params, metrics, types = reader.classify()
    numeric = [c for c, t in types.items() if str(t).upper() in ("INTEGER", "REAL", "NUMERIC")]
    return {"columns": reader.columns, "params": params, "metrics": metrics, "numeric": numeric}


# ------------------------------------------------------------------- one run
def run_summary(reader: TableReader, track_id: str) -> dict[str, Any]:
    """A run's summary row, its params and metrics, its error text, its trace, artifacts
    and models."""
    runs = reader.runs()
    match = runs[runs[TRACK_ID] == track_id]
    if match.empty:
        raise NotFoundError(f"No run {track_id!r} in table {reader.table_name!r}")
    row = {str(k): v for k, v in zip(match.columns, [json_value(v) for v in match.iloc[0].astype(object)])}
    params, metrics, _ = reader.classify()
    error = reader.store.run_error(reader.table_name, track_id)
    return {
        "run": row,
        "params": {p: row.get(p) for p in params if p in row},
        "metrics": {m: row.get(m) for m in metrics if m in row},
        "error": error,
        # The tracing span the run is linked to (tags span_id, trace_id), shown as text.
        "trace": {k: row[f"tags.{k}"] for k in ("trace_id", "span_id") if row.get(f"tags.{k}") is not None},
        "artifacts": _listed(lambda: reader.artifacts(track_id)),
        "models": _listed(lambda: _models_of(reader, track_id)),
    }


def _models_of(reader: TableReader, track_id: str) -> pd.DataFrame:
    models = reader.models()
    return models[models[TRACK_ID] == track_id]


def _listed(read: Any) -> dict[str, Any]:
    """``json_frame(read())``; no rows on a store whose engine keeps none of these (an
    engine that raises NotImplementedError for them), so that the rest of the run page
    still shows."""
    try:
        return json_frame(read())
    except NotImplementedError:
        return {"columns": [], "rows": []}


def run_rows(
    reader: TableReader, track_id: str, after: int | None = None, page: int = 0, size: int = 100
) -> dict[str, Any]:
    """A run's rows oldest first: page ``page`` of ``size``, or (``after``) only the rows
    whose rowid is past that cursor.

    ``cursor`` is where the next live update starts: with ``after``, the last rowid sent;
    for a page, the run's largest rowid when ``total`` was counted (the page holds no
    row past it), so that a poll from there brings exactly the rows logged since.
    """
    _ = reader.columns  # raises TableNotFoundError
    names, fetched, total, top = reader.store.run_rows(reader.table_name, track_id, after, page * size, size)
    rows = [[json_value(v) for v in r[1:]] for r in fetched]
    last = fetched[-1][0] if after is not None and fetched else top
    return {"columns": names, "rows": rows, "cursor": last, "total": total, "page": page, "size": size}


# ----------------------------------------------------------------------- curves
def default_step(columns: Sequence[str]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    for name in STEP_COLUMNS:
        if name in lowered:
            return lowered[name]
    return None


def downsample_indices(y: np.ndarray, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``limit`` points of ``y`` that keep its shape: the first and
    last point, and the minimum and the maximum of each of ``limit // 2`` equal buckets.

    >>> downsample_indices(np.array([0.0, 5, 1, -3, 2, 2, 9, 0]), limit=4).tolist()
    [0, 3, 6, 7]
    """
    n = len(y)
    if n <= limit:
        return np.arange(n)
    buckets = max(1, (limit - 2) // 2)
    width = math.ceil(n / buckets)
    rows = math.ceil(n / width)
    padded = np.full(rows * width, np.nan)
    padded[:n] = y
    grid = padded.reshape(rows, width)
    base = np.arange(rows) * width
    lows = base + np.nanargmin(grid, axis=1)
    highs = base + np.nanargmax(grid, axis=1)
    return np.unique(np.concatenate([[0, n - 1], lows, highs]))


def _as_floats(rows: list[tuple[Any, ...]], width: int) -> np.ndarray | None:
    """The first ``width`` values of each row as an (n, width) float array; None when one
    is not a number (text in a numeric column)."""
    import itertools

    try:
        if not rows or len(rows[0]) == width:
            flat = itertools.chain.from_iterable(rows)
        else:
            flat = itertools.chain.from_iterable(r[:width] for r in rows)
        return np.fromiter(flat, dtype=float, count=width * len(rows)).reshape(len(rows), width)
    except (TypeError, ValueError):
        return None


def curve(
    reader: TableReader,
    track_id: str,
    metric: str,
    x: str | None = None,
    after: int = 0,
    limit: int = MAX_POINTS,
    start: int | None = None,
) -> dict[str, Any]:
    """One run's points of ``metric`` (NULLs left out) over ``x``: a step column (default
    ``step`` or ``epoch``, else the point's index), ``_wall`` (timestamps) or ``_relative``
    (seconds since the run's first row). Only the points whose rowid is past ``after``;
    downsampled to at most ``limit`` points, extremes kept. ``n`` counts them all.
    ``start``: how many points precede the cursor (the page knows: the ``n`` it was sent),
    which numbers the new points on the index axis without counting the run again."""
    columns = reader.columns
    y_name = check_column(reader, metric, "metric")
    x_name = x or default_step(columns)
    x_column = TIMESTAMP if x_name in (WALL, RELATIVE) else x_name
    if x_column is not None:
        x_column = check_column(reader, x_column, "x column")
    engine, table = reader.store, reader.table_name
    # The index axis numbers every point: no buckets there.
    buckets = limit if x_column is not None and limit < 2**31 else None
    fetched, counted = engine.run_points(table, track_id, [y_name] + ([x_column] if x_column else []), after, buckets)
    n = len(fetched)
    cursor = fetched[-1][0] if fetched else after
    numbers = _as_floats(fetched, 3 if x_column and x_name not in (WALL, RELATIVE) else 2)
    if numbers is not None:  # the common case, ten times faster than a column at a time
        y = numbers[:, 1]
    else:
        y = pd.to_numeric(pd.Series([r[1] for r in fetched], dtype=object), errors="coerce").to_numpy(dtype=float)
    keep = ~np.isnan(y)
    if x_column is None:
        before = start or 0
        if after and start is None:
            before = engine.points_before(table, track_id, y_name, after)
        xs: Any = np.arange(before, before + n)
    elif x_name in (WALL, RELATIVE):
        stamps = pd.to_datetime(pd.Series([r[2] for r in fetched], dtype=object), errors="coerce")
        keep &= stamps.notna().to_numpy()
        if x_name == RELATIVE:
            first = engine.run_start(table, track_id)
            start = pd.Timestamp(first) if first else None
            xs = ((stamps - start).dt.total_seconds()).to_numpy(dtype=float) if start is not None else np.zeros(n)
        else:
            xs = stamps.dt.strftime("%Y-%m-%d %H:%M:%S.%f").to_numpy(dtype=object)
    elif numbers is not None:
        xs = numbers[:, 2]
        if np.all(np.mod(xs, 1) == 0) and np.all(np.abs(xs) < 2**53):
            xs = xs.astype(np.int64)  # steps stay integers
    else:
        xs = pd.Series([r[2] for r in fetched], dtype=object).to_numpy()
    xs, y = xs[keep], y[keep]
    chosen = downsample_indices(y, limit)
    return {
        "track_id": track_id,
        "metric": y_name,
        "x_name": x_name or "index",
        "x": [json_value(v) for v in xs[chosen].tolist()],
        "y": [json_value(v) for v in y[chosen].tolist()],
        "n": int(keep.sum()) if counted is None else counted,
        "cursor": cursor,
    }


def csv_points(reader: TableReader, track_ids: Sequence[str], metric: str, x: str | None) -> int:
    """How many points of ``metric`` the runs hold (the rows a CSV of them would have),
    counted through the track_id index; the names are checked first (a 400 for a bad one)."""
    y_name = check_column(reader, metric, "metric")
    x_name = x or default_step(reader.columns)
    if x_name is not None and x_name not in (WALL, RELATIVE):
        check_column(reader, x_name, "x column")
    engine, table = reader.store, reader.table_name
    return sum(engine.points_before(table, track_id, y_name, 2**63 - 1) for track_id in track_ids)


def curve_csv(reader: TableReader, track_ids: Sequence[str], metric: str, x: str | None) -> Iterator[str]:
    """Every point (not downsampled) of ``metric`` for ``track_ids``, as CSV lines."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["track_id", x or default_step(reader.columns) or "index", metric])
    yield buffer.getvalue()
    for track_id in track_ids:
        points = curve(reader, track_id, metric, x, limit=2**62)
        for start in range(0, len(points["x"]), 10_000):
            buffer.seek(0)
            buffer.truncate()
            for px, py in zip(points["x"][start : start + 10_000], points["y"][start : start + 10_000]):
                writer.writerow([track_id, px, py])
            yield buffer.getvalue()
