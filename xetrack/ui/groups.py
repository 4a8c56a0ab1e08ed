"""The runs workspace's server side: runs grouped by params (mean and std of each metric
per group), the runs of a filter as parallel-coordinates axes, and image artifacts by step.

Everything comes from the Reader's public calls (``search()``, ``classify()``,
``runs()``, ``artifacts()``) and pandas; a group's runs are named by a condition of the
search grammar (:mod:`xetrack.filters`), so the page asks for them as it asks for any
filter.

>>> condition(["model", "lr"], ["rf", 0.1])
"params.model = 'rf' and params.lr = 0.1"
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import NotFoundError
from ..run_columns import STEP_COLUMNS
from ..schema import TRACK_ID
from ..system import NETWORK_COLUMNS, READING_COLUMNS
from .data import BadRequest, json_value, json_values, sort_spec

if TYPE_CHECKING:
    from .reading import TableReader

#: The most runs the parallel-coordinates chart draws (the first ones of the filter).
MAX_PARALLEL = 5000
#: The most param axes the parallel-coordinates chart draws (the first params of the table).
MAX_AXES = 40
#: The most runs one images request covers.
MAX_IMAGE_RUNS = 50
#: The most params one grouping uses.
MAX_GROUP_BY = 8
#: Image artifacts by file extension: those the page shows inline and their content type;
#: an SVG (it can hold script) is listed but only ever downloaded.
INLINE_IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
IMAGE_EXTENSIONS = (*INLINE_IMAGES, ".svg")
#: The machine's readings (0.7.0's per-row columns; the sampler's ``system_*`` ones): not
#: the model's metrics, so neither grouped nor drawn as a run's metric.
SYSTEM_COLUMNS = frozenset((*READING_COLUMNS, *NETWORK_COLUMNS))
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_system(name: str) -> bool:
    """Whether column ``name`` holds a reading of the machine, not of the model.

    >>> is_system("cpu_percent"), is_system("system_gpu_0_utilization_percentage"), is_system("loss")
    (True, True, False)
    """
    return name in SYSTEM_COLUMNS or name.startswith("system_")


def image_type(name: str) -> str | None:
    """The content type an artifact named ``name`` is served inline with; None for any
    other (an SVG too: it is only downloaded).

    >>> image_type("plots/Loss.JPG"), image_type("x.svg")
    ('image/jpeg', None)
    """
    lowered = name.lower()
    return next((kind for ext, kind in INLINE_IMAGES.items() if lowered.endswith(ext)), None)


# ------------------------------------------------------------ filter text
def field(prefix: str, name: str) -> str:
    """``params.lr``; a name that is not a plain word is quoted (```params.`my lr` ```)."""
    if _PLAIN.match(name):
        return f"{prefix}.{name}"
    if "`" not in name:
        return f"{prefix}.`{name}`"
    return f'{prefix}."{name.replace(chr(34), chr(34) * 2)}"'


def literal(value: Any) -> str:
    """A value as the search grammar reads it back: numbers in full, text quoted."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def condition(by: Sequence[str], values: Sequence[Any], prefix: str = "params") -> str:
    """The condition that picks one group's runs: each param equal to its value (or NULL)."""
    parts = []
    for name, value in zip(by, values):
        value = json_value(value)
        if value is None:
            parts.append(f"{field(prefix, name)} IS NULL")
        else:
            parts.append(f"{field(prefix, name)} = {literal(value)}")
    return " and ".join(parts)


# ---------------------------------------------------------------- groups
def _metrics(reader: TableReader, frame: pd.DataFrame, skip: Sequence[str] = ()) -> list[str]:
    """The metrics of the runs summary that hold numbers, step columns and the machine's
    readings left out."""
    _, metrics, _ = reader.classify()
    out = []
    for name in metrics:
        if name in skip or name.lower() in STEP_COLUMNS or is_system(name) or name not in frame.columns:
            continue
        if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]):
            out.append(name)
    return out


def _check_by(reader: TableReader, frame: pd.DataFrame, by: Sequence[str]) -> list[str]:
    if not by:
        raise BadRequest("Pass one or more params to group by: ?group=model&group=lr")
    if len(by) > MAX_GROUP_BY:
        raise BadRequest(f"Group by at most {MAX_GROUP_BY} params, got {len(by)}")
    params, _, _ = reader.classify()
    known = [p for p in params if p in frame.columns]
    lowered = {p.lower(): p for p in known}
    out = []
    for name in by:
        found = lowered.get(name.lower())
        if found is None:
            raise BadRequest(
                f"Cannot group by {name!r}: not a param of table {reader.table_name!r}. "
                f"Params: {', '.join(known) or 'none'}"
            )
        if found in out:
            raise BadRequest(f"{found!r} is given twice in group")
        out.append(found)
    return out


def groups(
    reader: TableReader, where: str | None, by: Sequence[str], sort: str | None, page: int = 0, size: int = 100
) -> dict[str, Any]:
    """The runs matching ``where``, one row per group of values of the params ``by``:
    the values, the number of runs, and each metric's mean and std (pandas' sample std,
    None for a group of one) over the group's runs, each run counted once with its last
    value. Sorted by ``sort`` (a group param, ``count``, or a metric: by its mean), else
    by the group's values; one page of ``size`` groups.

    >>> groups(Reader("exp.db"), None, ["model"], "-acc")["groups"][0]["stats"]["acc"]  # doctest: +SKIP
    {'mean': 0.91, 'std': 0.02}
    """
    frame = reader.search(where or None)
    by = _check_by(reader, frame, by)
    metrics = _metrics(reader, frame, skip=by)
    runs = len(frame)
    if runs:
        numbers = frame[metrics].apply(pd.to_numeric, errors="coerce").astype(float)
        keys = frame[by].astype(object).where(frame[by].notna(), None)
        grouped = numbers.groupby([keys[b] for b in by], dropna=False, sort=False)
        means, stds, counts = grouped.mean(), grouped.std(), grouped.size()
        table = pd.DataFrame(index=counts.index)
        table["count"] = counts
        for m in metrics:
            table[f"mean:{m}"] = means[m]
            table[f"std:{m}"] = stds[m]
        table = table.reset_index()
        table.columns = [*by, *table.columns[len(by) :]]
    else:
        table = pd.DataFrame(columns=[*by, "count"])
    table = _sorted(table, by, metrics, sort)
    total = len(table)
    shown = table.iloc[page * size : (page + 1) * size]
    out = []
    for row in shown.to_dict("records"):
        values = [json_value(row[b]) for b in by]
        out.append(
            {
                "values": values,
                "count": int(row["count"]),
                "filter": condition(by, values),
                "stats": {
                    m: {"mean": json_value(row[f"mean:{m}"]), "std": json_value(row[f"std:{m}"])} for m in metrics
                },
            }
        )
    return {"by": by, "metrics": metrics, "groups": out, "total": total, "runs": runs, "page": page, "size": size}


def _sorted(table: pd.DataFrame, by: list[str], metrics: list[str], sort: str | None) -> pd.DataFrame:
    keys = sort_spec(sort) or []
    columns, ascending = [], []
    names = {n.lower(): n for n in [*by, *metrics, "count"]}
    for key in keys:
        name = key.lstrip("-").strip()
        for prefix in ("params.", "metrics.", "param.", "metric."):
            if name.lower().startswith(prefix):
                name = name[len(prefix) :]
        found = names.get(name.lower())
        if found is None:
            raise BadRequest(
                f"Groups sort by a group param, count or a metric (by its mean), not {name!r}. "
                f"Choices: {', '.join([*by, 'count', *metrics])}"
            )
        columns.append(found if found in by or found == "count" else f"mean:{found}")
        ascending.append(not key.startswith("-"))
    # Then by the group's values: ties (and no sort at all) in a stable order.
    columns, ascending = [*columns, *by], [*ascending, *[True] * len(by)]
    records = table.to_dict("records")
    # Stable sorts from the last key to the first; NULLs last whichever the direction.
    for column, up in reversed(list(zip(columns, ascending))):
        present = [r for r in records if not _missing(r[column])]
        present.sort(key=lambda r: _sort_key(r[column]), reverse=not up)
        records = present + [r for r in records if _missing(r[column])]
    return pd.DataFrame(records, columns=table.columns)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _sort_key(value: Any) -> Any:
    """Numbers before text, each in its own order (a column may mix them)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


# ------------------------------------------------------- parallel coordinates
def parallel(reader: TableReader, where: str | None, color: str | None, limit: int = MAX_PARALLEL) -> dict[str, Any]:
    """The runs matching ``where`` (the first ``limit``) as axes: each param (numbers, or
    text as categories; the first :data:`MAX_AXES` that have values) and the metric
    ``color`` (default: the first metric), which also colours the lines. ``total``
    counts every run of the filter."""
    frame = reader.search(where or None)
    total = len(frame)
    frame = frame.head(limit)
    params, _, _ = reader.classify()
    metrics = _metrics(reader, frame)
    if color:
        lowered = {m.lower(): m for m in metrics}
        if color.lower() not in lowered:
            raise BadRequest(
                f"Cannot colour by {color!r}: not a metric holding numbers. Metrics: {', '.join(metrics) or 'none'}"
            )
        color = lowered[color.lower()]
    else:
        color = metrics[0] if metrics else None
    dimensions = []
    drawn = [p for p in params if p in frame.columns and frame[p].notna().any()]
    for name in drawn[:MAX_AXES]:
        column = frame[name]
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        dimensions.append(
            {
                "name": name,
                "prefix": "params",
                "kind": "number" if numeric else "category",
                "values": json_values(column if numeric else column.astype(object)),
            }
        )
    if color is not None:
        dimensions.append({"name": color, "prefix": "metrics", "kind": "number", "values": json_values(frame[color])})
    return {
        "track_id": json_values(frame[TRACK_ID]) if TRACK_ID in frame.columns else [],
        "dimensions": dimensions,
        "color": color,
        "metrics": metrics,
        "total": total,
        "shown": len(frame),
        "params_left_out": drawn[MAX_AXES:],
        "limit": limit,
    }


# --------------------------------------------------------- images by step
def images(reader: TableReader, track_ids: Sequence[str]) -> dict[str, Any]:
    """The image artifacts logged with a step by each of ``track_ids`` (at most
    :data:`MAX_IMAGE_RUNS`): name, step, hash, and whether the page may show it inline
    (an SVG is listed for download only). ``runs`` names each run (its ``run_name``)."""
    if not track_ids:
        raise BadRequest("Pass one or more runs: ?run=ID&run=ID")
    if len(track_ids) > MAX_IMAGE_RUNS:
        raise BadRequest(f"Images cover at most {MAX_IMAGE_RUNS} runs at once, got {len(track_ids)}")
    summary = reader.runs()
    named = summary.set_index(TRACK_ID)["run_name"] if "run_name" in summary.columns else None
    known = set(summary[TRACK_ID])
    runs, found = [], []
    for track_id in dict.fromkeys(track_ids):
        if track_id not in known:
            raise NotFoundError(f"No run {track_id!r} in table {reader.table_name!r}")
        name = json_value(named.get(track_id)) if named is not None else None
        runs.append({"track_id": track_id, "name": name})
        try:
            listing = reader.artifacts(track_id)
        except NotImplementedError:  # an engine that keeps no artifacts
            continue
        if "step" not in listing.columns or listing.empty:
            continue
        lowered = listing["name"].astype(str).str.lower()
        picked = listing[lowered.str.endswith(IMAGE_EXTENSIONS) & listing["step"].notna()]
        for row in picked.to_dict("records"):
            found.append(
                {
                    "track_id": track_id,
                    "name": str(row["name"]),
                    "step": json_value(row["step"]),
                    "hash": str(row["hash"]),
                    "inline": image_type(str(row["name"])) is not None,
                }
            )
    found.sort(key=lambda item: (item["name"], item["track_id"], item["step"]))
    return {"runs": runs, "images": found}
