"""How the run queries (:mod:`xetrack.run_queries`) sort a table's columns into params
and metrics, and name them in a run summary."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

#: Columns that number a run's steps: metrics, whatever their values.
STEP_COLUMNS = ("step", "epoch")
#: Summary columns before the params and metrics.
BASE = ("track_id", "status", "start", "end", "duration", "events")
_NUMERIC = ("INTEGER", "REAL", "NUMERIC", "FLOAT", "DOUBLE", "INT", "BIGINT")


def same_value_key(value: Any) -> Any:
    """``value`` as compare() tells values apart: every missing value (None, NaN, NA) is None."""
    try:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return None
    except TypeError:
        pass
    return value


def split_kinds(
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


def summary_names(params: list[str], metrics: list[str], reserved: Sequence[str] = ()) -> dict[str, str]:
    """User column -> summary column; one that clashes with a summary column gets ``_``."""
    out: dict[str, str] = {}
    taken = set(BASE) | {r.lower() for r in reserved}
    for c in [*params, *metrics]:
        name = c
        while name.lower() in taken:
            name += "_"
        out[c] = name
        taken.add(name.lower())
    return out
