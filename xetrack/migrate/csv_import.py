"""``import_csv(path, db, run_column)``: a CSV file's lines as rows, grouped into runs.

The mapping:

- each line is a row; the lines with the same value in ``run_column`` are one run, whose
  ``run_name`` is that value (the run column is not stored as a column of its own);
- ``step_column``, when given, is stored as ``step`` (whole numbers; an empty cell is no step);
- every other column keeps its name by the key rules (``val/loss`` -> ``val_loss``) and
  one type for the whole file: ``int`` when every filled cell is a whole number (``007``
  stays text), ``float`` when every one is a number, ``bool`` when every one is
  ``true``/``false``, else text; an empty cell is empty (NULL);
- a ``timestamp`` column whose every filled cell is a date and time
  (``2024-05-01 10:00:00.25``, ISO 8601) gives the rows their timestamps; any other
  ``timestamp`` or ``track_id`` column is kept as ``timestamp_csv``/``track_id_csv``;
  without one, the rows get the import's time, increasing in file order;
- each run is recorded ``finished``, from its first row's timestamp to its last.

A run's track_id is made from its name and its lines, so a second import of the same
file adds nothing; a changed run is imported as a new run next to the old one.

>>> import_csv("results.csv", "exp.db", run_column="run", step_column="epoch")  # doctest: +SKIP
Imported(runs=3, replaced=0, skipped=0, rows=30, warnings=[], seconds=0.01)
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..schema import TIMESTAMP
from .run_rows import PATH_TAG, SOURCE_TAG, Imported, SourceRow, SourceRun, write_runs

_INTEGER = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_NUMBER = re.compile(r"[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.I)
_BOOLS = {"true": True, "false": False}


def _stamp(text: str) -> float:
    """A date and time (ISO 8601, ``T`` or space, ``Z`` or an offset allowed) as seconds
    since the epoch; a naive one is local time, as xetrack's timestamps are."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text).timestamp()


def column_type(cells: list[str]) -> Callable[[str], Any]:
    """How a column's filled cells are read: int, float, bool, a timestamp or text.

    >>> [column_type(c)(c[0]) for c in (["3", "-2"], ["0.5", "1"], ["True", "false"], ["007", "1"])]
    [3, 0.5, True, '007']
    """
    filled = [c.strip() for c in cells if c.strip()]
    if all(_INTEGER.fullmatch(c) for c in filled):
        return lambda c: int(c.strip())
    if all(_NUMBER.fullmatch(c) for c in filled):
        return lambda c: float(c.strip())
    if filled and all(c.lower() in _BOOLS for c in filled):
        return lambda c: _BOOLS[c.strip().lower()]
    return str


def _is_stamp(text: str) -> bool:
    try:
        _stamp(text)
    except (ValueError, OverflowError, OSError):
        return False
    return True


def _step(column: str, text: str, line: int) -> int | None:
    text = text.strip()
    if not text:
        return None
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        value = float(text)
        if math.isfinite(value) and value.is_integer():
            return int(value)
    raise ValueError(f"line {line}: the step column {column!r} holds {text!r}: steps are whole numbers")


def _read(path: str, delimiter: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the lines (with their line numbers) of a CSV file, checked."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r} (the CSV file to import)")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a folder: pass a CSV file")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path!r} is empty: a CSV file starts with a line of column names")
        lines = [(reader.line_num, cells) for cells in reader if cells]
    names = [h.strip() for h in header]
    for i, name in enumerate(names, 1):
        if not name:
            raise ValueError(
                f"{path!r}: column {i} has no name (an index pandas wrote? write it with index=False, or name it)"
            )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{path!r}: the column name(s) {', '.join(map(repr, twice))} appear more than once")
    for number, cells in lines:
        if len(cells) != len(names):
            raise ValueError(f"{path!r} line {number}: {len(cells)} cells, but the header names {len(names)} columns")
    return names, lines


def import_csv(
    path: str | os.PathLike[str],
    db: str | os.PathLike[str],
    run_column: str,
    step_column: str | None = None,
    table: str = "default",
    delimiter: str = ",",
) -> Imported:
    """Import a CSV file into ``table`` of ``db``: one row per line, the lines grouped into
    runs by ``run_column`` (its value is the run's name), ``step_column`` as ``step`` (see
    the module's docstring for the rest). A second import of the same file adds nothing.

    >>> from xetrack import import_csv
    >>> import_csv("results.csv", "exp.db", run_column="run").runs  # doctest: +SKIP
    3
    """
    started = time.perf_counter()
    where = os.fspath(path)
    names, lines = _read(where, delimiter)
    for what, column in (("run", run_column), ("step", step_column)):
        if column is not None and column not in names:
            raise ValueError(f"{where!r} has no column {column!r} (the {what} column); its columns: {', '.join(names)}")
    if step_column == run_column:
        raise ValueError(f"the run column and the step column are both {run_column!r}")
    at = {name: i for i, name in enumerate(names)}
    runs: dict[str, list[tuple[int, list[str]]]] = {}
    for number, cells in lines:
        value = cells[at[run_column]].strip()
        if not value:
            raise ValueError(f"{where!r} line {number}: the run column {run_column!r} is empty")
        runs.setdefault(value, []).append((number, cells))
    data = [n for n in names if n not in (run_column, step_column)]
    types = {n: column_type([cells[at[n]] for _, cells in lines]) for n in data}
    stamps = None
    if TIMESTAMP in types:
        filled = [cells[at[TIMESTAMP]] for _, cells in lines if cells[at[TIMESTAMP]].strip()]
        if filled and all(_is_stamp(c) for c in filled):
            stamps, data = TIMESTAMP, [n for n in data if n != TIMESTAMP]
    built = []
    for name, run_lines in runs.items():
        rows = []
        for number, cells in run_lines:
            values = {n: types[n](cells[at[n]]) for n in data if cells[at[n]].strip()}
            step = _step(step_column, cells[at[step_column]], number) if step_column else None
            when = cells[at[stamps]].strip() if stamps else ""
            rows.append(SourceRow(step, _stamp(when) if when else None, values))
        digest = hashlib.sha1("\x1e".join(["\x1f".join(names), name] + ["\x1f".join(c) for _, c in run_lines]).encode())
        built.append(
            SourceRun(
                track_id="csv-" + digest.hexdigest()[:16],
                name=name,
                rows=rows,
                tags={SOURCE_TAG: "csv", PATH_TAG: os.path.abspath(where)},
                fingerprint=digest.hexdigest(),
                kind="csv",
            )
        )
    return write_runs(db, table, built, Imported(), started)  # the whole file read and checked


__all__ = ["import_csv", "column_type"]
