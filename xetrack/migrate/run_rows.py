"""What the TensorBoard and CSV imports share: a run read from another tool's files
(:class:`SourceRun`), written whole into a table (:class:`RunTable`), and what an import
added (:class:`Imported`).

A run's track_id is made from where it came from, so that a second import finds it. A
run is written completely or not at all as far as a later import can tell: its rows,
tags and name first, its lifecycle row last. On the next import, a run found with its
lifecycle row and the same ``import.fingerprint`` tag is skipped; one whose fingerprint
differs (its files grew since) is replaced; one with rows but no lifecycle row (a
stopped import) is written again.

>>> table = RunTable("exp.db", "default")  # doctest: +SKIP
>>> table.write(SourceRun("tb-1f2e", "run_a", rows=[SourceRow(0, 1.7e9, {"loss": 0.5})]), Imported())  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..schema import TIMESTAMP, TRACK_ID, column_name

STEP = "step"
#: Columns an imported key never lands in: a key named so gets its kind added (``step_metric``).
RESERVED = frozenset({STEP, TIMESTAMP, TRACK_ID})
#: The tags every imported run carries: which importer, from where, and its source's fingerprint.
SOURCE_TAG = "import.source"
PATH_TAG = "import.path"
FINGERPRINT_TAG = "import.fingerprint"
#: Rows per insert transaction: bounds the memory held for one write.
CHUNK_ROWS = 5000


@dataclass
class SourceRow:
    """One row of a run: its step (or None), its time in seconds since the epoch (None:
    the time of the import) and its values by the source's own keys."""

    step: int | None
    time: float | None
    values: dict[str, Any]


@dataclass
class SourceRun:
    """A run as read from the source, before it is written."""

    track_id: str
    name: str
    rows: list[SourceRow] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # on every row, by the source's keys
    tags: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    status: str = "finished"
    error: str | None = None
    start: float | None = None  # seconds; None: the first row's time
    end: float | None = None  # seconds; None: the last row's time
    kind: str = "metric"  # what the rows' keys are, for a column name taken by another key


@dataclass
class Imported:
    """What an import added (a second import of the same source adds nothing)."""

    runs: int = 0  # runs written, new or replaced
    replaced: int = 0  # of those, runs imported before whose source changed since
    skipped: int = 0  # runs imported before, unchanged
    rows: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def warn(self, text: str) -> None:
        """Keep a warning and write it to stderr."""
        self.warnings.append(text)
        sys.stderr.write(f"warning: {text}\n")


def stamp(micros: int) -> str:
    """Microseconds since the epoch as the wide table's local ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    seconds, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S.", time.localtime(seconds)) + f"{fraction:06d}"


def _stamps(times: list[float | None]) -> list[int]:
    """The rows' times in microseconds, strictly increasing in row order (a time equal to
    or before the last one is moved 1 µs past it; None is the time of the import)."""
    out: list[int] = []
    last = -1
    for seconds in times:
        micros = time.time_ns() // 1000 if seconds is None else round(seconds * 1_000_000)
        if micros <= last:
            micros = last + 1
        out.append(micros)
        last = micros
    return out


class RunTable:
    """The table an import writes, opened once: its engine, and the source key -> column map.

    A key's column is its sanitized name (``train/loss`` -> ``train_loss``), as
    ``Tracker.log`` names it; when that is ``step``, ``timestamp`` or ``track_id``, or a
    key of another kind in this import took it, the kind is added (``lr_metric``).
    """

    def __init__(self, db: str | os.PathLike[str], table: str) -> None:
        from ..tracker import Tracker

        self.tracker = Tracker(os.fspath(db), table=table, warnings=False)
        self.engine = self.tracker._engine
        self.name = self.tracker.table_name
        self.columns: dict[tuple[str, str], str] = {}
        self.taken: dict[str, tuple[str, str]] = {}
        self._records: dict[str, Any] | None = None

    def column(self, kind: str, key: str) -> str:
        found = self.columns.get((kind, key))
        if found is not None:
            return found
        base = column_name(key)
        out, n = base, 2
        if out in RESERVED or out in self.taken:
            out = f"{base}_{kind}"
        while out in RESERVED or out in self.taken:
            out, n = f"{base}_{kind}{n}", n + 1
        self.columns[(kind, key)] = out
        self.taken[out] = (kind, key)
        return out

    def state(self, run: SourceRun) -> str:
        """``new``, ``done`` (imported, unchanged), ``changed`` or ``partial`` (rows of a stopped import)."""
        from .. import meta
        from ..runs import run_records

        if self._records is None:
            self._records = run_records(self.engine, self.name)
        if run.track_id in self._records:
            tags = meta.get_tags(self.engine, self.name, run.track_id)
            return "done" if tags.get(FINGERPRINT_TAG) == run.fingerprint else "changed"
        if self.name in self.engine.tables() and self.engine.count(self.name, {TRACK_ID: run.track_id}):
            return "partial"
        return "new"

    def write(self, run: SourceRun, result: Imported) -> None:
        """Write ``run`` whole, unless it is there already as it is now."""
        from .. import meta
        from ..runs import record_run

        state = self.state(run)
        if state == "done":
            result.skipped += 1
            return
        if state != "new":
            self.drop(run.track_id)
        try:
            rows, first, last = self._insert(run)
            meta.set_tags(self.engine, self.name, run.track_id, {**run.tags, FINGERPRINT_TAG: run.fingerprint})
            meta.set_run_name(self.engine, self.name, run.track_id, run.name)
            start = round(run.start * 1_000_000) if run.start is not None else first
            end = round(run.end * 1_000_000) if run.end is not None else last
            record_run(self.engine, self.name, run.track_id, run.status, stamp(start), stamp(end), run.error)
        except BaseException:
            self.drop(run.track_id)
            raise
        assert self._records is not None
        self._records[run.track_id] = run.status
        result.runs += 1
        result.replaced += state == "changed"
        result.rows += rows

    def drop(self, track_id: str) -> None:
        """Delete a run's rows and side rows (its bytes stay until gc)."""
        from ..garbage import delete_run

        if self.name in self.engine.tables():
            self.engine.delete(self.name, {TRACK_ID: track_id})
        delete_run(self.engine, self.name, track_id)
        if self._records is not None:
            self._records.pop(track_id, None)

    def _insert(self, run: SourceRun) -> tuple[int, int, int]:
        """Insert the run's rows, params on each (one row of params alone when it has no
        rows); returns (rows, first and last time in microseconds)."""
        from .. import meta
        from ..tracker import _first_value_finder

        params = {self.column("param", k): v for k, v in run.params.items() if v is not None}
        columns = {k: self.column(run.kind, k) for row in run.rows for k in row.values}
        has_step = any(row.step is not None for row in run.rows)
        names = list(dict.fromkeys(columns.values()))
        keys = (*params, *((STEP,) if has_step else ()), *names, TIMESTAMP, TRACK_ID)
        where_named = set(names)
        numbers = [
            c
            for k, c in columns.items()
            if all(type(r.values.get(k)) in (int, float, type(None)) for r in run.rows)
            and any(r.values.get(k) is not None for r in run.rows)
        ]
        original = {c: k for (_, k), c in self.columns.items() if c in params or c in where_named}
        meta.record_kinds(self.engine, self.name, list(params), numbers, keys=original)
        head = tuple(params.values())
        where = {c: i for i, c in enumerate(names)}
        slots = {k: where[c] for k, c in columns.items()}
        source = run.rows or [SourceRow(None, run.start, {})]
        micros = _stamps([row.time for row in source])

        def rows() -> Iterator[tuple[Any, ...]]:
            for row, at in zip(source, micros):
                values: list[Any] = [None] * len(names)
                for key, value in row.values.items():
                    values[slots[key]] = value
                lead = head + ((row.step,) if has_step else ())
                yield (*lead, *values, stamp(at), run.track_id)

        count = 0
        batch: list[tuple[Any, ...]] = []
        for row in rows():
            batch.append(row)
            if len(batch) >= CHUNK_ROWS:
                self.engine.insert_many(self.name, keys, batch, _first_value_finder(batch), None)
                count, batch = count + len(batch), []
        if batch:
            self.engine.insert_many(self.name, keys, batch, _first_value_finder(batch), None)
            count += len(batch)
        return count, micros[0], micros[-1]

    def close(self) -> None:
        self.tracker.close()


def write_runs(
    db: str | os.PathLike[str], table: str, runs: list[SourceRun], result: Imported, started: float
) -> Imported:
    """Write ``runs`` into ``table`` of ``db`` (opened now, once everything is read and
    checked, and closed after) and return ``result``, its ``seconds`` counted from
    ``started`` (a ``time.perf_counter()``)."""
    writer = RunTable(db, table)
    try:
        for run in runs:
            writer.write(run, result)
    finally:
        writer.close()
    result.seconds = time.perf_counter() - started
    return result


__all__ = [
    "SourceRow",
    "SourceRun",
    "Imported",
    "RunTable",
    "write_runs",
    "stamp",
    "FINGERPRINT_TAG",
    "SOURCE_TAG",
    "PATH_TAG",
]
