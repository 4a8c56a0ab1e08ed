"""Run metadata beside the wide tables: tags, run names, recorded kinds, descriptions.

Four side tables (``xetrack_*`` names are reserved); their SQL is in
:mod:`xetrack.store.sqlite.meta` and :mod:`xetrack.store.postgres.meta`, chosen by
:func:`xetrack.store.features`:

- ``xetrack_tags``: (table, track_id, key) -> value. Labels that can change after the run;
- ``xetrack_run_names``: (table, track_id) -> run_name, a display name next to the id;
- ``xetrack_kinds``: (table, column) -> ``param`` or ``metric``, recorded when written,
  so ``runs()`` does not have to guess from the values;
- ``xetrack_descriptions``: table -> description.

On SQLite, any change to the first three through these functions bumps the run summary's ``gen``
(as a change of ``xetrack_runs`` does), so cached ``runs()``/``search()`` frames go stale.

>>> from xetrack import Tracker, Reader
>>> t = Tracker(Tracker.IN_MEMORY)
>>> t.set_tag("team", "vision")
>>> get_tags(t._engine, "default", t.track_id)
{'team': 'vision'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .store import features
from .store.meta_sql import COPY_COLUMNS, RUN_NAME, TAG_PREFIX
from .store.meta_sql import DDL as _DDL
from .store.tables import DESCRIPTIONS, KINDS, RUN_NAMES, TAGS

KIND_VALUES = ("param", "metric")


def copy_between(src: Any, dst: Any, table: str) -> int:
    """Carry ``table``'s rows of :data:`COPY_COLUMNS` from engine ``src`` to ``dst``, on
    any engines (a copy with a PostgreSQL side); rows ``dst`` already holds are kept.
    Returns how many side tables had rows to carry."""
    carried = 0
    for name in COPY_COLUMNS:
        rows = features(src).meta.copy_rows(src, name, table)
        if rows:
            features(dst).meta.put_copied(dst, name, rows)
            carried += 1
    return carried


def _read(engine: Any, name: str, sql: str, binds: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of one read of side table ``name`` (none when it was never created);
    ``sql`` is the caller's own statement (names quoted, values bound, ``?`` marks)."""
    return features(engine).meta.read(engine, name, sql, binds)


def _text(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty str, got {value!r}")
    return value


# ---------------------------------------------------------------------- tags
def set_tags(engine: Any, table: str, track_id: str, tags: Mapping[Any, Any]) -> None:
    """Set (or overwrite) tags of one run; values are kept as text, as MLflow keeps them."""
    if not isinstance(tags, Mapping):
        raise TypeError(f"tags must be a dict, got {type(tags).__name__}")
    rows = []
    for key, value in tags.items():
        _text("A tag key", key)
        if value is None or not isinstance(value, (str, int, float, bool)):
            raise TypeError(f"Tag {key!r}: the value must be a str, int, float or bool, got {value!r}")
        rows.append((table, track_id, key, str(value)))
    features(engine).meta.set_tags(engine, rows)


def delete_tag(engine: Any, table: str, track_id: str, key: str) -> bool:
    """Remove one tag; True when it existed."""
    return features(engine).meta.delete_tag(engine, table, track_id, key)


def get_tags(engine: Any, table: str, track_id: str) -> dict[str, str]:
    """The tags of one run, by key."""
    return dict(features(engine).meta.tags_of(engine, table, track_id))


def tag_keys(engine: Any, table: str) -> list[str]:
    """Every tag key used in ``table``, sorted."""
    return features(engine).meta.tag_keys(engine, table)


# ------------------------------------------------------------------ run names
def set_run_name(engine: Any, table: str, track_id: str, run_name: str) -> None:
    """Give a run its display name (MLflow's ``run_name``)."""
    _text("run_name", run_name)
    features(engine).meta.set_run_name(engine, table, track_id, run_name)


def run_names(engine: Any, table: str) -> dict[str, str]:
    """track_id -> run_name of ``table``."""
    return dict(features(engine).meta.run_names(engine, table))


def has_run_names(engine: Any, table: str) -> bool:
    return features(engine).meta.has_run_names(engine, table)


# ---------------------------------------------------------------------- kinds
def record_kinds(
    engine: Any,
    table: str,
    params: Iterable[str] = (),
    metrics: Iterable[str] = (),
    keys: Mapping[str, str] | None = None,
) -> None:
    """Record columns as params or metrics. A param is always recorded (it came through
    ``params=``/``set_params``); a metric only where nothing is recorded yet. ``keys``:
    column -> the key another tool named it by (an MLflow import keeps ``train/loss``)."""
    keys = keys or {}
    # Read first: a file's later runs log the keys its first runs recorded, and a read
    # takes no write lock (the writes below change nothing then).
    params, metrics = list(params), list(metrics)
    known = recorded_keys(engine, table, [*params, *metrics])
    p = [
        (table, c, "param", keys.get(c))
        for c in params
        if known.get(c, ("",))[0] != "param" or keys.get(c) not in (None, known[c][1])
    ]
    m = [(table, c, "metric", keys.get(c)) for c in metrics if c not in known]
    if p:
        features(engine).meta.put_kinds(engine, p, replace=True)
    if m:
        features(engine).meta.put_kinds(engine, m, replace=False)


def kinds(engine: Any, table: str) -> dict[str, str]:
    """column -> ``param``/``metric`` as recorded; empty for files written before 0.8."""
    return {c: k for c, (k, _) in recorded_keys(engine, table).items()}


def recorded_keys(engine: Any, table: str, columns: Iterable[str] | None = None) -> dict[str, tuple[str, str | None]]:
    """column -> (kind, the original key or None); of ``columns`` only, when given."""
    wanted = None if columns is None else list(columns)
    rows = features(engine).meta.recorded_keys(engine, table, wanted)
    return {c: (k, key) for c, k, key in rows}


# --------------------------------------------------------------- descriptions
def describe_table(engine: Any, table: str, text: str | None) -> None:
    """Keep ``text`` as the table's description (None removes it)."""
    if text is not None and not isinstance(text, str):
        raise TypeError(f"description must be a str, got {type(text).__name__}")
    features(engine).meta.describe(engine, table, text)


def descriptions(engine: Any) -> dict[str, str]:
    """table -> description."""
    return dict(features(engine).meta.descriptions(engine))


# ------------------------------------------------------------ runs() columns
def summary_columns(engine: Any, table: str) -> tuple[bool, list[str]]:
    """(whether the table has run names, its tag keys): the extra runs() columns."""
    return has_run_names(engine, table), tag_keys(engine, table)


__all__ = [
    "TAGS",
    "RUN_NAMES",
    "KINDS",
    "DESCRIPTIONS",
    "KIND_VALUES",
    "TAG_PREFIX",
    "RUN_NAME",
    "COPY_COLUMNS",
    "_DDL",
    "set_tags",
    "delete_tag",
    "get_tags",
    "tag_keys",
    "set_run_name",
    "run_names",
    "has_run_names",
    "record_kinds",
    "kinds",
    "recorded_keys",
    "describe_table",
    "descriptions",
    "summary_columns",
    "copy_between",
]
