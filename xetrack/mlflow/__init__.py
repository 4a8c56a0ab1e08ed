"""MLflow's tracking calls, written to a xetrack database: ``import xetrack.mlflow as
mlflow`` runs a typical MLflow tracking script unchanged (docs/integrations.md).

- ``set_tracking_uri(db)``: a database path, ``sqlite:///path.db`` or a ``postgresql://``
  URL (else ``MLFLOW_TRACKING_URI`` when it names one, else ``mlruns.db``);
- ``set_experiment(name)``: the experiment is a table (``'My Exp'`` -> ``My_Exp``);
- ``start_run()`` is a run (``run_id`` is its ``track_id``), ended ``finished``, or
  ``failed`` with the error; ``log_param(s)`` go on every row of the run,
  ``log_metric(s)`` write one row per call (with ``step``), tags are xetrack tags and
  artifacts are stored in the database;
- ``search_runs``, ``get_run``, ``MlflowClient().get_metric_history`` read them back in
  MLflow's shapes.

A call MLflow has and this module does not raises an AttributeError that says what to
use instead: nothing is accepted and dropped. Inside xetrack, ``import mlflow`` is still
MLflow itself.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Mapping
from typing import Any

from . import _read, _run, _state, client, entities, exceptions, tracking
from .client import MlflowClient, check_image_call, tables_of
from .client import create_experiment as _create_experiment
from .client import end as _end
from .entities import Experiment, Metric, Param, Run, RunData, RunInfo, RunStatus, RunTag, ViewType, to_mlflow_status
from .exceptions import MlflowException

_STATE = _state.STATE


class ActiveRun:
    """The run ``start_run`` returns; ``with`` ends it FINISHED, or FAILED (KILLED for
    Ctrl-C) with the error when the block raises. ``info`` and ``data`` are read live."""

    def __init__(self, handle: _run.RunHandle) -> None:
        self._handle = handle

    @property
    def info(self) -> RunInfo:
        h = self._handle
        return RunInfo(
            run_id=h.run_id,
            experiment_id=h.table,
            run_name=h.run_name,
            status="RUNNING" if h.status is None else to_mlflow_status(h.status),
            start_time=h.start_ms,
            end_time=h.end_ms,
            lifecycle_stage="active",
            user_id=None,
            artifact_uri=None,
        )

    @property
    def data(self) -> RunData:
        h = self._handle
        if h.status is not None:
            return _read.get_run(h.db, h.table, h.run_id).data
        return RunData(metrics=dict(h.metrics), params=dict(h.params), tags=h.tags())

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> None:
        if exc_type is None:
            _end(self._handle, "finished")
        else:
            status = "killed" if issubclass(exc_type, KeyboardInterrupt) else "failed"
            _end(self._handle, status, f"{exc_type.__name__}: {exc}")

    def __repr__(self) -> str:
        return f"<ActiveRun: run_id={self._handle.run_id!r}, experiment_id={self._handle.table!r}>"


# -- where runs go ------------------------------------------------------------------
def set_tracking_uri(uri: Any) -> None:
    """The database runs go to: a path (``'mlruns.db'``), ``'sqlite:///path.db'`` or a
    ``postgresql://`` URL. A server (``http://``), Databricks or ``file:`` store raises."""
    _state.set_uri(uri)


def get_tracking_uri() -> str:
    return _state.tracking_uri()


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Runs from now on go to this experiment's table (created if missing)."""
    if (experiment_name is None) == (experiment_id is None):
        raise ValueError("set_experiment takes experiment_name or experiment_id (one of them)")
    if experiment_name is not None:
        table = _state.table_for(experiment_name)
    else:
        table = _state.table_of_id(experiment_id)
    db = _state.tracking_db()
    _run.ensure_experiment(db, table, experiment_name)
    with _STATE.lock:
        _STATE.experiment, _STATE.table = experiment_name or table, table
    found = _read.experiment(db, table)
    assert found is not None
    return found


def create_experiment(name: str, artifact_location: Any = None, tags: Any = None) -> str:
    return _create_experiment(_state.tracking_db(), name, artifact_location, tags)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _read.experiment(_state.tracking_db(), _state.table_for(name))


def get_experiment(experiment_id: str) -> Experiment:
    return MlflowClient().get_experiment(experiment_id)


# -- runs ------------------------------------------------------------------------
def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a run (or continue run ``run_id``) and make it the active one.

    Inside an active run, ``nested=True`` starts a child run (tag ``mlflow.parentRunId``);
    without it a second run is refused, as MLflow refuses it. ``log_system_metrics=True``
    adds the machine's readings to every row (``log_system_params``).
    """
    db = _state.tracking_db()
    with _STATE.lock:
        parent = _STATE.stack[-1] if _STATE.stack else None
        if parent is not None and not nested and parent_run_id is None:
            raise MlflowException(
                f"Run with UUID {parent.run_id} is already active. To start a new run, first end the "
                "current run with mlflow.end_run(). To start a nested run, call start_run with nested=True"
            )
        if run_id is not None and any(h.run_id == run_id for h in _STATE.stack):
            raise MlflowException(f"Run {run_id!r} is already active")
        extra = dict(tags or {})
        parent_id = parent_run_id or (parent.run_id if parent is not None else None)
        if parent_id is not None:
            extra["mlflow.parentRunId"] = parent_id
        if description is not None:
            extra["mlflow.note.content"] = description
        if run_id is not None:
            written = _STATE.by_id.pop((db, run_id), None)  # written by id until now: this run takes over
            if written is not None:
                written.close()
            table = _read.find_table(db, run_id, first=_state.active_table())
            if table is None:
                raise MlflowException(f"Run {run_id!r} not found in {db!r}", "RESOURCE_DOES_NOT_EXIST")
        else:
            table = _state.table_of_id(experiment_id) if experiment_id is not None else _state.active_table()
            _run.ensure_experiment(db, table, _STATE.experiment if table == _STATE.table else None)
        handle = _run.RunHandle(
            db,
            table,
            run_id,
            run_name=run_name,
            tags=extra,
            existing=run_id is not None,
            system=bool(log_system_metrics),
        )
        _STATE.stack.append(handle)
        _STATE.last = (db, table, handle.run_id)
        _install_hooks()
    return ActiveRun(handle)


def end_run(status: str = "FINISHED") -> None:
    """End the active run: ``FINISHED`` (``finished``), ``FAILED`` or ``KILLED``. None active: nothing."""
    ours = entities.to_xetrack_status(status)
    with _STATE.lock:
        handle = _STATE.stack[-1] if _STATE.stack else None
    if handle is not None:
        _end(handle, ours)


def active_run() -> ActiveRun | None:
    with _STATE.lock:
        return ActiveRun(_STATE.stack[-1]) if _STATE.stack else None


def last_active_run() -> Run | None:
    """The active run, else the last one this process started or ended, read back."""
    with _STATE.lock:
        last = _STATE.last
    return None if last is None else _read.get_run(*last)


def get_run(run_id: str) -> Run:
    return MlflowClient().get_run(run_id)


def _active(run_id: str | None = None) -> _run.RunHandle:
    """The run a call writes to: ``run_id``'s, else the active one (started when none is, as MLflow does)."""
    if run_id is not None:
        return MlflowClient()._handle(run_id)
    with _STATE.lock:
        if _STATE.stack:
            handle: _run.RunHandle = _STATE.stack[-1]
            return handle
    return start_run()._handle


def _refuse(**given: Any) -> None:
    for name, value in given.items():
        if value is not None:
            raise NotImplementedError(
                f"{name}= is not offered by xetrack.mlflow: xetrack keeps no datasets or logged models "
                "(log their names as params)"
            )


def log_param(key: str, value: Any, synchronous: Any = None) -> Any:
    """A param of the active run, on every one of its rows; returns ``value``."""
    _active().log_params({key: value})
    return value


def log_params(params: Mapping[str, Any], synchronous: Any = None, run_id: str | None = None) -> None:
    _active(run_id).log_params(params)


def log_metric(
    key: str,
    value: Any,
    step: int | None = None,
    synchronous: Any = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    model_id: Any = None,
    dataset: Any = None,
) -> None:
    """One row of the active run: ``{key: value}``, with ``step`` when given; ``timestamp``
    (ms since the epoch) sets the row's time."""
    _refuse(model_id=model_id, dataset=dataset)
    _active(run_id).log_metrics({key: value}, step=step, timestamp=timestamp)


def log_metrics(
    metrics: Mapping[str, Any],
    step: int | None = None,
    synchronous: Any = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    model_id: Any = None,
    dataset: Any = None,
) -> None:
    """One row of the active run with every metric of ``metrics`` (and ``step``)."""
    _refuse(model_id=model_id, dataset=dataset)
    _active(run_id).log_metrics(metrics, step=step, timestamp=timestamp)


def set_tag(key: str, value: Any, synchronous: Any = None) -> None:
    _active().set_tags({key: value})


def set_tags(tags: Mapping[str, Any], synchronous: Any = None) -> None:
    _active().set_tags(tags)


def delete_tag(key: str) -> None:
    _active().delete_tag(key)


def log_artifact(local_path: Any, artifact_path: str | None = None, run_id: str | None = None) -> None:
    """Store a file (or a folder's files) with the run, as ``artifact_path/<file name>``."""
    _active(run_id).log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: Any, artifact_path: str | None = None, run_id: str | None = None) -> None:
    """Store every file under ``local_dir`` with the run, as ``artifact_path/<relative path>``."""
    _active(run_id).log_artifacts(local_dir, artifact_path)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Store ``dictionary`` as JSON (YAML for ``.yaml``/``.yml``) under the name ``artifact_file``."""
    _active(run_id).log_bytes(_run.dict_bytes(dictionary, artifact_file), artifact_file)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    if not isinstance(text, str):
        raise TypeError(f"log_text takes a str, got {type(text).__name__}")
    _active(run_id).log_bytes(text.encode(), artifact_file)


def log_figure(figure: Any, artifact_file: str, *, save_kwargs: Mapping[str, Any] | None = None) -> None:
    """Store a matplotlib figure (saved in the format of the file's extension) under ``artifact_file``."""
    _active().log_bytes(_run.figure_bytes(figure, artifact_file, save_kwargs), artifact_file)


def log_image(image: Any, artifact_file: str | None = None, **kwargs: Any) -> None:
    """Store a PIL image or a NumPy array as the image file ``artifact_file``."""
    check_image_call(artifact_file, kwargs)
    assert artifact_file is not None
    _active().log_bytes(_run.image_bytes(image, artifact_file), artifact_file)


def search_runs(
    experiment_ids: Any = None,
    filter_string: str = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = 100000,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> Any:
    """Runs as a DataFrame with MLflow's columns: ``run_id``, ``experiment_id``, ``status``
    (``FINISHED``...), ``start_time``, ``end_time`` (UTC datetimes), ``metrics.<key>`` (the
    last value), ``params.<key>`` (text), ``tags.<key>`` and ``tags.mlflow.runName``;
    newest first unless ``order_by`` says otherwise. ``output_format='list'``: Run objects."""
    if output_format not in ("pandas", "list"):
        raise ValueError(f"output_format is 'pandas' or 'list', got {output_format!r}")
    db = _state.tracking_db()
    tables = tables_of(db, experiment_ids, experiment_names, search_all_experiments)
    if run_view_type == ViewType.DELETED_ONLY:  # xetrack deletes runs for good: none are "deleted"
        tables = []
    frame = _read.search_frame(db, tables, filter_string, order_by, max_results)
    return _read.frame_runs(frame) if output_format == "list" else frame


def autolog(*args: Any, **kwargs: Any) -> None:
    """Refused: xetrack's integrations log a training in one line instead."""
    raise NotImplementedError(
        "mlflow.autolog() is not offered by xetrack.mlflow: log a training with xetrack.integrations "
        "(huggingface, lightning, keras, xgboost, lightgbm, optuna: one callback each, docs/integrations.md)"
    )


# -- process exit -------------------------------------------------------------------
def _install_hooks() -> None:
    """At exit, end the runs still active FINISHED, as MLflow does; an uncaught exception
    ends them FAILED (KILLED for Ctrl-C) with its text first."""
    if _STATE.hooks:
        return
    _STATE.hooks = True
    atexit.register(_end_all, "finished", None)
    previous = sys.excepthook

    def hook(kind: Any, value: Any, tb: Any) -> None:
        try:
            status = "killed" if issubclass(kind, KeyboardInterrupt) else "failed"
            _end_all(status, f"{kind.__name__}: {value}")
        finally:
            previous(kind, value, tb)

    sys.excepthook = hook


def _end_all(status: str, error: str | None) -> None:
    while True:
        with _STATE.lock:
            if not _STATE.stack:
                return
            handle = _STATE.stack[0]
        try:
            _end(handle, status, error)
        except Exception as exc:  # noqa: BLE001 - at exit, one run's failure must not stop the others
            sys.stderr.write(f"xetrack.mlflow: could not end run {handle.run_id!r}: {exc}\n")


# -- what MLflow has and this module does not ------------------------------------------
_INTEGRATIONS = {
    "pytorch": "xetrack.integrations.lightning (or log from your loop)",
    "lightning": "xetrack.integrations.lightning",
    "keras": "xetrack.integrations.keras",
    "tensorflow": "xetrack.integrations.keras",
    "transformers": "xetrack.integrations.huggingface",
    "xgboost": "xetrack.integrations.xgboost",
    "lightgbm": "xetrack.integrations.lightgbm",
}
#: MLflow's model flavors without a xetrack integration.
_FLAVORS = frozenset(
    (
        *("sklearn", "catboost", "statsmodels", "onnx", "spark", "h2o", "fastai", "spacy", "prophet", "pmdarima"),
        *("paddle", "sentence_transformers", "langchain", "openai", "llama_index", "dspy", "anthropic", "gemini"),
        *("bedrock", "litellm", "diviner", "mleap", "johnsnowlabs", "promptflow"),
    )
)
_HINTS = {
    "register_model": "Tracker(db).register_model(name, model) (docs/models.md)",
    "log_model": "Tracker(db).register_model(name, model) or log_artifact(path) (docs/models.md)",
    "log_table": "log_dict, or Tracker.log_artifact(dataframe), kept as Parquet",
    "log_input": "log the dataset's name and digest as params: xetrack keeps no datasets",
    "log_inputs": "log the datasets' names and digests as params: xetrack keeps no datasets",
    "evaluate": "your own metrics with log_metrics",
    "get_artifact_uri": "artifacts are in the database: xetrack.Reader(db).artifact(name, track_id=run_id)",
    "artifacts": "MlflowClient().download_artifacts(run_id, path) or xetrack.Reader(db).download_artifacts",
    "set_registry_uri": "the model registry is in the tracking database (docs/models.md)",
    "search_experiments": "xetrack.Reader(db).tables()",
    "delete_run": "xetrack.Reader(db, table=experiment_id).delete_run(run_id) (deletes for good)",
    "set_experiment_tag": "xetrack.Reader(db).describe_table(table, text)",
    "set_experiment_tags": "xetrack.Reader(db).describe_table(table, text)",
    "flush_async_logging": "nothing: every call is written when it returns",
    "models": "Tracker.register_model and Reader.load_model (docs/models.md)",
    "pyfunc": "Reader(db).load_model('name@alias') (docs/models.md)",
}


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in _INTEGRATIONS:
        hint = f"log training with {_INTEGRATIONS[name]}; keep a model with Tracker.register_model (docs/models.md)"
    elif name in _FLAVORS:
        hint = "Tracker(db).register_model(name, model) to keep a model (docs/models.md); log params and metrics here"
    elif name in _HINTS:
        hint = _HINTS[name]
    else:
        hint = "xetrack.Tracker and xetrack.Reader (docs/migrating-from-mlflow.md)"
    raise AttributeError(f"mlflow.{name} is not offered by xetrack.mlflow: use {hint}")


__all__ = [
    "ActiveRun",
    "MlflowClient",
    "MlflowException",
    "Experiment",
    "Metric",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "ViewType",
    "client",
    "entities",
    "exceptions",
    "tracking",
    "set_tracking_uri",
    "get_tracking_uri",
    "set_experiment",
    "create_experiment",
    "get_experiment",
    "get_experiment_by_name",
    "start_run",
    "end_run",
    "active_run",
    "last_active_run",
    "get_run",
    "log_param",
    "log_params",
    "log_metric",
    "log_metrics",
    "set_tag",
    "set_tags",
    "delete_tag",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_text",
    "log_figure",
    "log_image",
    "search_runs",
    "autolog",
]
