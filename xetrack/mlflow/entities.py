"""The objects MLflow's tracking calls return, as :mod:`xetrack.mlflow` fills them: a
:class:`Run` (its :class:`RunInfo` and :class:`RunData`), a :class:`Metric` point, an
:class:`Experiment`, a :class:`FileInfo`; and the translations between MLflow's words and
xetrack's: statuses (``FINISHED`` and ``finished``) and times (milliseconds since the
epoch and the wide table's local ``YYYY-MM-DD HH:MM:SS.ffffff``).

Plain objects with MLflow's attribute names: code that reads ``run.info.run_id`` or
``metric.step`` reads them unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

#: MLflow's run status names -> xetrack's (what ``end_run(status=...)`` takes).
TO_XETRACK = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
#: xetrack's statuses as MLflow names them. ``dead`` (the writing process ended without
#: ending the run) reads as FAILED, ``pruned`` (an Optuna trial stopped early) as KILLED.
TO_MLFLOW = {
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "killed": "KILLED",
    "pruned": "KILLED",
    "dead": "FAILED",
}


def to_xetrack_status(status: Any) -> str:
    """``'FINISHED'`` (or MLflow's RunStatus number) -> ``'finished'``; anything else raises."""
    if isinstance(status, int) and not isinstance(status, bool):
        status = RunStatus.to_string(status)
    if not isinstance(status, str) or status.upper() not in TO_XETRACK:
        raise ValueError(f"A run ends FINISHED, FAILED or KILLED, got {status!r}")
    return TO_XETRACK[status.upper()]


def to_mlflow_status(status: Any) -> str:
    """xetrack's ``'finished'`` -> ``'FINISHED'`` (``dead`` -> FAILED, ``pruned`` -> KILLED)."""
    return TO_MLFLOW.get(str(status).lower(), str(status).upper())


def stamp_to_ms(stamp: Any) -> int | None:
    """The wide table's local ``YYYY-MM-DD HH:MM:SS.ffffff`` -> milliseconds since the epoch."""
    if stamp is None or stamp != stamp:  # None, NaN, NaT
        return None
    if not isinstance(stamp, str):
        timestamp = getattr(stamp, "timestamp", None)
        return round(timestamp() * 1000) if callable(timestamp) else None
    base, _, fraction = stamp.partition(".")
    seconds = time.mktime(time.strptime(base[:19], "%Y-%m-%d %H:%M:%S"))
    return int(seconds) * 1000 + int((fraction + "000000")[:6]) // 1000


def ms_to_stamp(ms: int) -> str:
    """Milliseconds since the epoch -> the wide table's local ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    seconds, milli = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S.", time.localtime(seconds)) + f"{milli * 1000:06d}"


class _Plain:
    """Attributes set from keywords, shown by a repr as MLflow's entities are."""

    _fields: tuple[str, ...] = ()

    def __init__(self, **values: Any) -> None:
        for name in self._fields:
            setattr(self, name, values.pop(name, None))
        if values:
            raise TypeError(f"{type(self).__name__} takes no {', '.join(values)}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"<{type(self).__name__}: {shown}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, n) == getattr(other, n) for n in self._fields)

    __hash__ = None  # type: ignore[assignment]

    def to_dictionary(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in self._fields}


class Metric(_Plain):
    """One point of a metric: ``key``, ``value``, ``timestamp`` (ms), ``step``."""

    _fields = ("key", "value", "timestamp", "step", "run_id")
    key: str
    value: float
    timestamp: int
    step: int
    run_id: str | None

    def __init__(self, key: str, value: float, timestamp: int, step: int, run_id: str | None = None) -> None:
        super().__init__(key=key, value=value, timestamp=timestamp, step=step, run_id=run_id)


class _KeyValue(_Plain):
    """A ``key`` and its ``value``: a :class:`Param` or a :class:`RunTag` (never equal
    to one another)."""

    _fields = ("key", "value")
    key: str
    value: str

    def __init__(self, key: str, value: Any) -> None:
        super().__init__(key=key, value=value)


class Param(_KeyValue):
    """One param of a run."""


class RunTag(_KeyValue):
    """One tag of a run."""


class RunInfo(_Plain):
    """``run_id`` (the xetrack ``track_id``), ``experiment_id`` (the table), ``run_name``,
    ``status`` (MLflow's upper case), ``start_time``/``end_time`` (ms or None)."""

    _fields = (
        "run_id",
        "experiment_id",
        "run_name",
        "status",
        "start_time",
        "end_time",
        "lifecycle_stage",
        "user_id",
        "artifact_uri",
    )
    run_id: str
    experiment_id: str
    run_name: str
    status: str
    start_time: int | None
    end_time: int | None
    lifecycle_stage: str
    user_id: str | None
    artifact_uri: str | None

    @property
    def run_uuid(self) -> str:
        return self.run_id


class RunData(_Plain):
    """``params`` (values as text, as MLflow keeps them), ``metrics`` (each key's last
    value) and ``tags`` (``mlflow.runName`` included)."""

    _fields = ("metrics", "params", "tags")
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]


class Run(_Plain):
    _fields = ("info", "data")
    info: RunInfo
    data: RunData

    def __init__(self, info: RunInfo, data: RunData) -> None:
        super().__init__(info=info, data=data)


class Experiment(_Plain):
    """An experiment is a table: ``experiment_id`` is the table's name, ``name`` the name
    it was set with (kept in the table's description when the two differ)."""

    _fields = ("experiment_id", "name", "artifact_location", "lifecycle_stage", "tags")
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    tags: dict[str, str]


class FileInfo(_Plain):
    _fields = ("path", "is_dir", "file_size")
    path: str
    is_dir: bool
    file_size: int | None


class RunStatus:
    """MLflow's run status numbers and names."""

    RUNNING, SCHEDULED, FINISHED, FAILED, KILLED = 1, 2, 3, 4, 5
    _NAMES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}

    @staticmethod
    def to_string(status: int) -> str:
        if status not in RunStatus._NAMES:
            raise ValueError(f"Unknown run status {status!r}")
        return RunStatus._NAMES[status]

    @staticmethod
    def from_string(name: str) -> int:
        for number, text in RunStatus._NAMES.items():
            if text == str(name).upper():
                return number
        raise ValueError(f"Unknown run status {name!r}")

    @staticmethod
    def is_terminated(status: int) -> bool:
        return status in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class ViewType:
    """Which runs a search sees: xetrack deletes runs for good, so DELETED_ONLY finds none."""

    ACTIVE_ONLY, DELETED_ONLY, ALL = 1, 2, 3


class PagedList(list):
    """A list of results with MLflow's ``token`` for the next page (always None: one page)."""

    def __init__(self, items: Iterable[Any] = (), token: str | None = None) -> None:
        super().__init__(items)
        self.token = token


__all__ = [
    "Metric",
    "Param",
    "RunTag",
    "RunInfo",
    "RunData",
    "Run",
    "Experiment",
    "FileInfo",
    "RunStatus",
    "ViewType",
    "PagedList",
    "TO_XETRACK",
    "TO_MLFLOW",
    "to_xetrack_status",
    "to_mlflow_status",
    "stamp_to_ms",
    "ms_to_stamp",
]
