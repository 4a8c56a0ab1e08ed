"""Optuna: ``study.optimize(objective, callbacks=[XetrackCallback("exp.db")])`` writes one
run per trial.

Optuna calls its callbacks after each trial, with the trial as it ended (a
``FrozenTrial``). The run of trial ``n`` of study ``s`` has the id ``s-trial-n`` and the name
``trial-n``:

- params, on every row: ``trial.params``, ``study_name``, ``trial_number`` and the
  callback's own ``params``;
- one row per intermediate value (``trial.report(value, step)``): ``step`` and the value
  under the (first) metric name;
- a last row: the trial's value(s) under ``metric_name`` (a list of names for a
  multi-objective study; a single name ``m`` there gives ``m_0``, ``m_1``...) and its
  ``trial_duration`` in seconds;
- the status: ``COMPLETE``, ``PRUNED``, ``FAIL`` become ``finished``, ``pruned``,
  ``failed`` (with the trial's error, as Optuna logged it), the start and the end those
  of the trial (``datetime_start``, ``datetime_complete``).

Calling the callback again for a trial already recorded writes nothing, so that
``for t in study.trials: callback(study, t)`` records the trials it missed, once each.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .common import STEP, RunSettings, TrainingRun, WithRunSettings, present, require

WHAT = "xetrack.integrations.optuna"
optuna = require("optuna", "optuna", WHAT)

#: An ended trial's state -> the run's status.
STATUS = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed"}
#: The columns the callback writes besides the trial's params and values.
STUDY_NAME, TRIAL_NUMBER, DURATION = "study_name", "trial_number", "trial_duration"
RESERVED = (STEP, STUDY_NAME, TRIAL_NUMBER, DURATION)
#: The error of a failed trial whose error Optuna did not log.
NO_ERROR_TEXT = "the trial failed (Optuna logged no error for it)"


class _FailedTrials(logging.Handler):
    """Optuna keeps no error with a failed trial: it logs it, as the warning "Trial N failed
    with parameters: ... because of the following error: ...", with the exception, right
    after the trial ended. This handler, on Optuna's logger, keeps the last ones by thread
    and trial number until the callback, which runs next in the same thread, takes its
    trial's: one logged within ``WINDOW`` seconds of the trial's end."""

    PATTERN = re.compile(r"Trial (\d+) failed with parameters: .* because of the following error: (.*)\.\Z", re.S)
    KEEP = 1000
    WINDOW = 60.0

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: collections.OrderedDict[tuple[int, int], tuple[str, float]] = collections.OrderedDict()
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            found = self.PATTERN.match(record.getMessage())
        except Exception:  # noqa: BLE001 - a record of another shape: not ours to judge
            return
        if found is None:
            return
        error = record.exc_info[1] if record.exc_info else None
        text = f"{type(error).__name__}: {error}" if error is not None else found.group(2)
        with self.guard:
            self.errors[(threading.get_ident(), int(found.group(1)))] = (text, record.created)
            while len(self.errors) > self.KEEP:
                self.errors.popitem(last=False)

    def take(self, number: int, ended: datetime | None) -> str | None:
        with self.guard:
            found = self.errors.pop((threading.get_ident(), number), None)
        if found is None:
            return None
        text, created = found
        if ended is not None and abs(created - ended.timestamp()) > self.WINDOW:
            return None  # another trial of that number, of another study
        return text


_FAILURES = _FailedTrials()
_WATCHING = False


def _watch_failures() -> None:
    global _WATCHING
    if not _WATCHING:
        logging.getLogger("optuna").addHandler(_FAILURES)
        _WATCHING = True


def _stamp(moment: datetime | None) -> str | None:
    """A trial's time in the runs table's format (local time, as Optuna records it)."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


class XetrackCallback(WithRunSettings):
    """Record each trial of ``study.optimize(objective, callbacks=[XetrackCallback(db)])``
    as one run.

    Args:
        db: the database, as for :class:`~xetrack.Tracker` (a path or a ``postgresql://`` URL).
        metric_name: the column of the trial's value; for a multi-objective study, a list
            with a name for each objective (a single name ``m`` gives ``m_0``, ``m_1``...).
        table: the experiment table.
        params: more params for every trial's run.
        tags: tags of every trial's run.
        engine: ``'sqlite'`` or ``'duckdb'``, as for a Tracker.
        log_system_metrics: the runs also sample the machine. The callback runs after the
            trial: the samples describe the machine while the run is written, not the trial.
        system_interval: seconds between those samples.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] = "xetrack.db",
        *,
        metric_name: str | Sequence[str] = "value",
        table: str = "default",
        params: Mapping[Any, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        engine: str = "sqlite",
        log_system_metrics: bool = False,
        system_interval: float = 10.0,
    ) -> None:
        names = [metric_name] if isinstance(metric_name, str) else list(metric_name)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise TypeError(f"metric_name must be a non-empty str or a list of them, got {metric_name!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"metric_name has a name twice: {names}")
        taken = sorted(set(names) & set(RESERVED))
        if taken:
            raise ValueError(f"metric_name {taken} is a column the callback writes; choose another name")
        self.settings = RunSettings.of(WHAT, locals())
        self.params = self.settings.params  # every trial's, besides the trial's own
        self.metric_name = metric_name
        self.names = names
        _watch_failures()

    # -- what a trial lands -----------------------------------------------------------
    def value_names(self, objectives: int) -> list[str]:
        """The columns of a study's values: the names given, or ``name_i`` for one name."""
        if len(self.names) == objectives:
            return list(self.names)
        if isinstance(self.metric_name, str):
            return [f"{self.metric_name}_{i}" for i in range(objectives)]
        raise ValueError(
            f"metric_name has {len(self.names)} names for a study with {objectives} objectives: "
            f"give one name for each, or a single name"
        )

    def _params(self, study: Any, trial: Any, names: list[str]) -> dict[str, Any]:
        params = {**self.params}
        own = {STUDY_NAME: study.study_name, TRIAL_NUMBER: trial.number}
        for source in (trial.params, own):
            clash = sorted({str(k) for k in source} & ({*params} | {*names, STEP, DURATION}))
            if clash:
                raise ValueError(
                    f"{WHAT}: trial {trial.number}'s param {clash} is also a column of the run "
                    f"(params={sorted(self.params)}, metric_name={names}); rename one"
                )
            params.update(source)
        return params

    def __call__(self, study: Any, trial: Any) -> None:
        state = getattr(trial.state, "name", str(trial.state))
        status = STATUS.get(state)
        if status is None:
            raise ValueError(f"{WHAT}: trial {trial.number} is {state}; the callback records ended trials")
        names = self.value_names(len(study.directions))
        params = self._params(study, trial, names)
        start, end = _stamp(trial.datetime_start), _stamp(trial.datetime_complete)
        track_id = self._place(f"{study.study_name}-trial-{trial.number}", start)
        error = (_FAILURES.take(trial.number, trial.datetime_complete) or NO_ERROR_TEXT) if status == "failed" else None
        if track_id is None:
            return  # recorded already
        run = self.settings.run(params, track_id=track_id, run_name=f"trial-{trial.number}")
        self._write(run, trial, names, status, start, end, error)

    def _write(
        self, run: TrainingRun, trial: Any, names: list[str], status: str, start: Any, end: Any, error: Any
    ) -> None:
        from ..runs import record_run

        tracker = run.tracker  # opened: running
        engine = tracker._engine
        try:
            # The trial's start first: a run that stops half written is known by it, and rewritten.
            record_run(engine, self.table, tracker.track_id, "running", start, None)
            steps = sorted(trial.intermediate_values.items())
            if steps:
                tracker.log_batch([{STEP: int(step), **dict(present({names[0]: value}))} for step, value in steps])
            last = dict(present(dict(zip(names, trial.values or []))))
            if trial.duration is not None:
                last[DURATION] = trial.duration.total_seconds()
            tracker.log(last)
            run.end(status, error)
            record_run(engine, self.table, tracker.track_id, status, start, end, error)  # the trial's times
        finally:
            tracker.close()

    # -- one run per trial, whatever calls the callback again ----------------------------
    def _place(self, base: str, start: str | None) -> str | None:
        """The track_id of the trial's run: ``base``; None when that trial is recorded
        already; ``base-2``, ``base-3``... when another trial (of a study of the same name,
        in another storage) holds it. A run left half written is deleted, to be written again."""
        from ..reader import Reader
        from ..store import IN_MEMORY, SKIP_INSERT, is_url

        if self.db in (IN_MEMORY, SKIP_INSERT) or (not is_url(self.db) and not os.path.exists(self.db)):
            return base
        reader = Reader(self.db, engine=self.engine, table=self.table)
        try:
            from ..runs import run_records

            records = run_records(reader.store, self.table)
            candidate, number = base, 1
            while candidate in records:
                status, begun, _ = records[candidate]
                if (None if begun is None else str(begun)) == start:
                    if status == "running":  # a write that stopped half way
                        reader.delete_run(candidate)
                        return candidate
                    return None
                number += 1
                candidate = f"{base}-{number}"
            return candidate
        finally:
            reader.close()


__all__ = ["XetrackCallback", "STATUS", "NO_ERROR_TEXT"]
