"""What every integration shares: the run one training writes (:class:`TrainingRun`), the
framework imported on use with a message naming the extra when it is missing
(:func:`require`), and the values frameworks hand over made plain (:func:`plain`,
:func:`flatten`).

A framework's callback is made before training starts, often in a process other than the
one that trains (a launcher, a notebook cell), and sometimes never used. So a
:class:`TrainingRun` opens nothing when made: its Tracker is opened, and the run marked
``running``, on the first thing it records, in the process that records it.

>>> run = TrainingRun(Tracker.IN_MEMORY, params={"model": "mlp"})  # doctest: +SKIP
>>> run.log({"loss": 0.5}, step=1)  # doctest: +SKIP
>>> run.end()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..tracker import Tracker

#: The column every integration writes a step (a global step, a boosting round) to.
STEP = "step"
#: The column an epoch goes to.
EPOCH = "epoch"
#: Nested params (``{"optimizer": {"lr": 0.1}}``) become ``optimizer_lr``.
SEPARATOR = "_"


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` (the framework); missing, an ImportError that names the pip extra.

    >>> require("json", "none", "xetrack.integrations.example").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs {module.split('.')[0]}, which is not installed: pip install 'xetrack[{extra}]' ({exc})"
        ) from exc


def plain(value: Any) -> Any:
    """A framework's number as a plain Python value: a NumPy scalar, a one-element array or
    tensor becomes its int/float/bool; anything else is returned as it is (a Tracker then
    stores it by the usual rules).

    >>> import numpy as np
    >>> plain(np.float32(0.5)), plain(np.array([3])), plain("adam")
    (0.5, 3, 'adam')
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        size = getattr(value, "size", None)
        numel = getattr(value, "numel", None)
        count = numel() if callable(numel) else size() if callable(size) else size
        if count in (None, 1):
            try:
                return item()
            except (TypeError, ValueError, RuntimeError):
                return value
    return value


def flatten(values: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level, keys joined with ``_``; values made :func:`plain`.

    >>> flatten({"optimizer": {"lr": 0.1, "name": "adam"}, "epochs": 3})
    {'optimizer_lr': 0.1, 'optimizer_name': 'adam', 'epochs': 3}
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{SEPARATOR}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        else:
            out[name] = plain(value)
    return out


def present(values: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The items made :func:`plain`, those whose value is None (a framework's "no value
    yet") left out."""
    for key, value in values.items():
        value = plain(value)
        if value is not None:
            yield key, value


class TrainingRun:
    """One run that a training writes, opened on first use.

    Takes the database the way :class:`~xetrack.Tracker` does: ``db`` (a path, or a
    ``postgresql://`` URL), then keyword-only ``table``, ``params``, ``track_id``,
    ``run_name``, ``tags`` and ``engine``; ``log_system_metrics`` and ``system_interval``
    are handed to the Tracker.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] = "xetrack.db",
        *,
        table: str = "default",
        params: Mapping[Any, Any] | None = None,
        track_id: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        engine: str = "sqlite",
        log_system_metrics: bool = False,
        system_interval: float = 10.0,
    ) -> None:
        self.db = os.fspath(db) if isinstance(db, os.PathLike) else db
        self.table = table
        self.params: dict[str, Any] = flatten(params or {})
        self.track_id = track_id  # the first run's when given; each later run gets a new one
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.engine = engine
        self.log_system_metrics = log_system_metrics
        self.system_interval = system_interval
        self._tracker: Tracker | None = None
        self._ended = False
        self._pid: int | None = None

    # -- the run ---------------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether the run was opened (in this process) and is not ended."""
        return self._tracker is not None and not self._ended and self._pid == os.getpid()

    @property
    def tracker(self) -> Tracker:
        """The run's Tracker: opened and marked ``running`` on first use."""
        if self._tracker is None or self._pid != os.getpid() or self._ended:
            self._open()
        assert self._tracker is not None
        return self._tracker

    def _open(self) -> None:
        from ..tracker import Tracker

        if self._tracker is not None and self._ended:  # a later run of this object (a new fit)
            self.track_id = None
        system: dict[str, Any] = {}
        if self.log_system_metrics:
            system = {"log_system_metrics": True, "system_interval": self.system_interval}
        tracker = Tracker(
            self.db,
            params=self.params,
            track_id=self.track_id,
            engine=self.engine,
            table=self.table,
            run_name=self.run_name,
            **system,
        )
        if self.tags:
            tracker.set_tags({str(k): v for k, v in self.tags.items()})
        tracker.start()
        self._tracker, self._pid, self._ended = tracker, os.getpid(), False
        self.track_id = tracker.track_id

    def set_params(self, params: Mapping[Any, Any]) -> None:
        """Params of this run, flattened: on every row logged from now on (and, when the
        run already logged rows, set on those too)."""
        flat = flatten(params)
        self.params.update(flat)
        if self._tracker is not None and not self._ended:
            self._tracker.set_params(flat)
            for key, value in flat.items():
                self._tracker.set_value(key, value)

    def log(self, metrics: Mapping[str, Any], step: int | None = None, **columns: Any) -> None:
        """One row: ``metrics`` (values made plain, None left out), ``step`` and ``columns``."""
        row = dict(present(metrics))
        if step is not None:
            row[STEP] = int(step)
        row.update((k, plain(v)) for k, v in columns.items() if v is not None)
        if row:
            self.tracker.log(row)

    def log_artifact(
        self, path_or_bytes: Any, name: str | None = None, type: str | None = None, step: int | None = None
    ) -> str:
        """Store a file, a folder's files or bytes with the run, at ``step`` (see Tracker.log_artifact)."""
        if isinstance(path_or_bytes, (str, os.PathLike)) and os.path.isdir(path_or_bytes):
            return ",".join(self.tracker.log_artifacts(path_or_bytes, prefix=name, step=step).values())
        return self.tracker.log_artifact(path_or_bytes, name=name, type=type, step=step)

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Mark the run ``status`` (``finished``, ``failed``, ``killed``, ``pruned``) and close
        it. A second call does nothing; a run never opened is opened first, so that a
        training that logged nothing still leaves its run."""
        if self._ended and self._pid == os.getpid():
            return
        tracker = self.tracker
        try:
            tracker.end(status, error)
        finally:
            self._ended = True
            tracker.close()

    def fail(self, error: BaseException | str) -> None:
        """Mark the run ``failed`` (``killed`` for a KeyboardInterrupt) with the error's text."""
        if isinstance(error, BaseException):
            status = "killed" if isinstance(error, KeyboardInterrupt) else "failed"
            self.end(status, self.error_text(error))
        else:
            self.end("failed", error)

    def error_text(self, error: BaseException) -> str:
        """The text a failed run keeps of ``error``: its type's name and its message."""
        return f"{type(error).__name__}: {error}"

    def fresh(self) -> TrainingRun:
        """A run of the same class, not opened, with this one's id, params and settings."""
        return _run_like(self, run_class=type(self))


def _run_like(
    source: RunSettings | TrainingRun,
    params: Mapping[Any, Any] | None = None,
    *,
    track_id: str | None = None,
    run_name: str | None = None,
    run_class: type[TrainingRun] = TrainingRun,
) -> TrainingRun:
    """A ``run_class`` run, not opened, with the settings of ``source`` (a
    :class:`RunSettings`, or another run); ``params`` (by default its own), ``track_id``
    and ``run_name`` in place of its when given. ``RunSettings.run``."""
    return run_class(
        source.db,
        table=source.table,
        params=source.params if params is None else params,
        track_id=track_id or source.track_id,
        run_name=run_name or source.run_name,
        tags=source.tags,
        engine=source.engine,
        log_system_metrics=source.log_system_metrics,
        system_interval=source.system_interval,
    )


#: The keyword arguments of :class:`RunSettings` (after ``what`` and ``db``).
_SETTINGS = (
    "table",
    "params",
    "track_id",
    "run_name",
    "tags",
    "engine",
    "log_model",
    "log_system_metrics",
    "system_interval",
)


class RunSettings:
    """The arguments every integration takes for its runs (those of :class:`TrainingRun`
    and ``log_model``), checked once when the integration is made; errors name ``what``,
    the integration's module. :meth:`run` makes a :class:`TrainingRun` of them.

    >>> RunSettings("xetrack.integrations.example", "exp.db", params={"lr": 0.1}).params
    {'lr': 0.1}
    """

    def __init__(
        self,
        what: str,
        db: str | os.PathLike[str] = "xetrack.db",
        *,
        table: str = "default",
        params: Mapping[Any, Any] | None = None,
        track_id: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        engine: str = "sqlite",
        log_model: bool = False,
        log_system_metrics: bool = False,
        system_interval: float = 10.0,
    ) -> None:
        from ..schema import validate_table_name

        for name, value in (("params", params), ("tags", tags)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{what}: {name} must be a dict, got {type(value).__name__}")
        if track_id is not None and (not isinstance(track_id, str) or not track_id):
            raise TypeError(f"{what}: track_id must be a non-empty str, got {track_id!r}")
        if not isinstance(log_model, bool):
            raise TypeError(f"{what}: log_model must be True or False, got {log_model!r}")
        self.what = what
        self.db = os.fspath(db) if isinstance(db, os.PathLike) else db
        self.table = validate_table_name(table)
        self.params: dict[Any, Any] = dict(params or {})  # as given: TrainingRun flattens them
        self.track_id = track_id
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.engine = engine
        self.log_model = log_model
        self.log_system_metrics = bool(log_system_metrics)
        self.system_interval = system_interval

    def with_found(self, found: Mapping[str, Any], whose: str) -> dict[str, Any]:
        """The params a framework hands over (``found``) and the ones given here, which may
        repeat a key of ``found`` only with the same value (else a ValueError naming
        ``whose`` values they differ from)."""
        clash = sorted(k for k, v in found.items() if k in self.params and self.params[k] != v)
        if clash:
            raise ValueError(f"{self.what}: params {clash} differ from {whose}; name yours otherwise")
        return {**found, **self.params}

    run = _run_like  # settings.run(params=None, *, track_id=None, run_name=None, run_class=TrainingRun)

    @classmethod
    def of(cls, what: str, arguments: Mapping[str, Any], without: tuple[str, ...] = ()) -> RunSettings:
        """The settings among an integration's ``arguments`` (its ``__init__``'s
        ``locals()``), but those named in ``without``: each integration keeps its own typed
        signature, documented for its users, and hands the common ones over by name."""
        names = [n for n in _SETTINGS if n in arguments and n not in without]
        return cls(what, arguments.get("db", "xetrack.db"), **{n: arguments[n] for n in names})


class _Setting:
    """An attribute of an integration that is its :class:`RunSettings`' attribute ``name``."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj.settings, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj.settings, self.name, value)


class WithRunSettings:
    """For an integration that keeps its :class:`RunSettings` as ``self.settings``: their
    values as its own attributes (``cb.db``, ``cb.table``...; ``extra_params`` for the
    params given, apart from the params a framework hands its callbacks)."""

    settings: RunSettings
    db = _Setting()
    table = _Setting()
    extra_params = _Setting("params")
    track_id = _Setting()
    run_name = _Setting()
    tags = _Setting()
    engine = _Setting()
    log_model = _Setting()
    log_system_metrics = _Setting()
    system_interval = _Setting()


_Owner = TypeVar("_Owner", bound="TrainingOwner")


class TrainingOwner(WithRunSettings):
    """What the callbacks that write one run per training share (XGBoost, LightGBM,
    Keras): ``run``, the run of the current (or last) training, marked failed by an error
    of the callback's own steps, or by any error when the training runs inside ``with
    callback:``; ``_release`` stops watching the training (see :func:`.watch.watch_unfinished`)."""

    run: TrainingRun | None
    _release: Any

    @property
    def active(self) -> bool:
        """Whether a training is running with this callback (its run open, not ended)."""
        return self.run is not None and self.run.started

    def _stop_watching(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None

    def _fail(self, error: BaseException | str) -> None:
        """Mark the open run failed (``killed`` on Ctrl-C)."""
        self._stop_watching()
        if self.run is not None and self.run.started:
            self.run.fail(error)

    def _guarded(self, hook: Any, *args: Any) -> None:
        """Run one of this callback's own steps; its error marks the run, then goes on."""
        try:
            hook(*args)
        except BaseException as exc:
            self._fail(exc)
            raise

    def __enter__(self: _Owner) -> _Owner:
        return self

    def __exit__(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> None:
        if exc is not None and self.active:
            self._fail(exc)


# -- for frameworks that hand their callbacks little (XGBoost, LightGBM) ------------------
def loggable(value: Any) -> Any:
    """A framework's param as a value a run stores: plain values, and lists and dicts of
    them, as they are; a function or a callable object (a custom objective, a metric) by
    its qualified name; anything else by its ``str``.

    >>> loggable(("a", 1)), loggable(len)
    (['a', 1], 'builtins.len')
    """
    value = plain(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): loggable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [loggable(v) for v in value]
    if callable(value):
        name = getattr(value, "__qualname__", None) or type(value).__qualname__
        return f"{getattr(value, '__module__', None) or type(value).__module__}.{name}"
    return str(value)


__all__ = [
    "STEP",
    "EPOCH",
    "SEPARATOR",
    "TrainingRun",
    "RunSettings",
    "WithRunSettings",
    "TrainingOwner",
    "require",
    "plain",
    "flatten",
    "present",
    "loggable",
]
