"""``MlflowClient``: MLflow's lower-level calls, by run id, on the same database as the
module's calls (or the one ``tracking_uri`` names).

>>> client = MlflowClient("runs.db")  # doctest: +SKIP
>>> [m.value for m in client.get_metric_history(run_id, "loss")]  # doctest: +SKIP
[0.9, 0.5, 0.3]
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from . import _read, _run, _state
from .entities import Experiment, FileInfo, Metric, PagedList, Run, ViewType, to_xetrack_status
from .exceptions import MlflowException

#: MLflow client calls xetrack.mlflow does not offer, and what to use instead.
CLIENT_HINTS = {
    "delete_run": "xetrack.Reader(db, table=experiment_id).delete_run(run_id) (deletes for good)",
    "restore_run": "nothing: xetrack deletes runs for good",
    "create_registered_model": "Tracker.register_model(name, model) (docs/models.md)",
    "create_model_version": "Tracker.register_model(name, model) (docs/models.md)",
    "get_registered_model": "xetrack.Reader(db).models() (docs/models.md)",
    "get_latest_versions": "xetrack.Reader(db).models() (docs/models.md)",
    "set_registered_model_alias": "xetrack.Reader(db).set_model_alias(name, version, alias)",
    "get_model_version_by_alias": "xetrack.Reader(db).load_model('name@alias')",
    "search_registered_models": "xetrack.Reader(db).models()",
    "search_model_versions": "xetrack.Reader(db).models()",
    "transition_model_version_stage": "aliases: xetrack.Reader(db).set_model_alias(name, version, 'production')",
    "delete_experiment": "xetrack.Reader(db).store.tables() lists tables; a table is dropped with SQL",
    "log_inputs": "nothing: xetrack keeps no datasets; log their names as params",
    "log_table": "log_dict, or Tracker.log_artifact(dataframe) (stored as Parquet)",
}


class MlflowClient:
    """MLflow's client on a xetrack database: runs by id, metric histories, searches.

    ``tracking_uri``: a database path, ``sqlite:///path`` or ``postgresql://`` URL; None
    follows the module's ``set_tracking_uri``. Experiment ids are table names.
    """

    def __init__(self, tracking_uri: Any = None, registry_uri: Any = None) -> None:
        self._db = None if tracking_uri is None else _state.db_from_uri(tracking_uri)
        self._uri = None if tracking_uri is None else str(os.fspath(tracking_uri))
        if registry_uri is not None and registry_uri != tracking_uri:
            raise NotImplementedError(
                "MlflowClient(registry_uri=...): the model registry lives in the tracking database; "
                "see xetrack.Reader(db).models() (docs/models.md)"
            )

    @property
    def _db_path(self) -> str:
        return self._db if self._db is not None else _state.tracking_db()

    @property
    def tracking_uri(self) -> str:
        return self._uri if self._uri is not None else _state.tracking_uri()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        hint = CLIENT_HINTS.get(name, "xetrack.Tracker and xetrack.Reader (docs/migrating-from-mlflow.md)")
        raise AttributeError(f"MlflowClient.{name} is not offered by xetrack.mlflow: use {hint}")

    # -- finding runs ------------------------------------------------------------
    def _table(self, run_id: str) -> str:
        table = _read.find_table(self._db_path, run_id, first=_state.active_table())
        if table is None:
            raise MlflowException(f"Run {run_id!r} not found in {self._db_path!r}", "RESOURCE_DOES_NOT_EXIST")
        return table

    def _handle(self, run_id: str) -> _run.RunHandle:
        """The run's writer: the module's active run of that id, else one kept for writes by
        id (every client of the process shares it, so that its params are known once)."""
        db = self._db_path
        with _state.STATE.lock:
            for handle in _state.STATE.stack:
                if handle.run_id == run_id and handle.db == db:
                    return handle
            handle = _state.STATE.by_id.get((db, run_id))
            if handle is None or handle.status is not None:
                handle = _run.RunHandle(db, self._table(run_id), run_id, start=False, existing=True)
                _state.STATE.by_id[(db, run_id)] = handle
            return handle

    def get_run(self, run_id: str) -> Run:
        return _read.get_run(self._db_path, self._table(run_id), run_id)

    def get_parent_run(self, run_id: str) -> Run | None:
        parent = self.get_run(run_id).data.tags.get("mlflow.parentRunId")
        return None if parent is None else self.get_run(parent)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of ``key`` in the run, oldest first: ``.value``, ``.step`` (0 when
        logged without one), ``.timestamp`` (ms since the epoch)."""
        return _read.metric_history(self._db_path, self._table(run_id), run_id, key)

    def search_runs(
        self,
        experiment_ids: Any,
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Runs of the experiments (tables) as :class:`Run` objects, in one page."""
        if page_token is not None:
            raise ValueError("search_runs returns every result in one page: page_token is always None")
        tables = tables_of(self._db_path, experiment_ids, None, False)
        if run_view_type == ViewType.DELETED_ONLY:
            return PagedList([])
        frame = _read.search_frame(self._db_path, tables, filter_string, order_by, max_results)
        return PagedList(_read.frame_runs(frame))

    # -- experiments -------------------------------------------------------------
    def create_experiment(self, name: str, artifact_location: Any = None, tags: Any = None) -> str:
        return create_experiment(self._db_path, name, artifact_location, tags)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return _read.experiment(self._db_path, _state.table_for(name))

    def get_experiment(self, experiment_id: str) -> Experiment:
        found = _read.experiment(self._db_path, _state.table_of_id(experiment_id))
        if found is None:
            raise MlflowException(f"No experiment {experiment_id!r} in {self._db_path!r}", "RESOURCE_DOES_NOT_EXIST")
        return found

    # -- writing by run id -------------------------------------------------------
    def create_run(
        self, experiment_id: str, start_time: Any = None, tags: Mapping[str, Any] | None = None, run_name: Any = None
    ) -> Run:
        """A new run, marked running; end it with :meth:`set_terminated`."""
        _refuse("start_time", start_time, "xetrack records the run's start itself")
        table = _state.table_of_id(experiment_id)
        _run.ensure_experiment(self._db_path, table, None)
        handle = _run.RunHandle(self._db_path, table, run_name=run_name, tags=tags)
        with _state.STATE.lock:
            _state.STATE.by_id[(handle.db, handle.run_id)] = handle
        return _read.get_run(handle.db, table, handle.run_id)

    def set_terminated(self, run_id: str, status: str | None = None, end_time: Any = None) -> None:
        _refuse("end_time", end_time, "xetrack records the run's end itself")
        handle = self._handle(run_id)
        handle.started = True  # ending marks the run's end, whoever started it
        end(handle, to_xetrack_status(status or "FINISHED"))
        with _state.STATE.lock:
            _state.STATE.by_id.pop((handle.db, run_id), None)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        if name is not None:
            self._handle(run_id).set_tags({_read.RUN_NAME_TAG: name})
        if status is not None:
            self.set_terminated(run_id, status)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: Any,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: Any = None,
        dataset_name: Any = None,
        dataset_digest: Any = None,
        model_id: Any = None,
    ) -> None:
        _refuse_extras(dataset_name=dataset_name, dataset_digest=dataset_digest, model_id=model_id)
        self._handle(run_id).log_metrics({key: value}, step=step, timestamp=timestamp)

    def log_param(self, run_id: str, key: str, value: Any, synchronous: Any = None) -> Any:
        self._handle(run_id).log_params({key: value})
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: Any = None) -> None:
        self._handle(run_id).set_tags({key: value})

    def delete_tag(self, run_id: str, key: str) -> None:
        self._handle(run_id).delete_tag(key)

    def log_batch(
        self, run_id: str, metrics: Iterable[Any] = (), params: Iterable[Any] = (), tags: Iterable[Any] = (), **_: Any
    ) -> None:
        """Params, tags, then metrics: points of one (step, timestamp) share a row."""
        handle = self._handle(run_id)
        if params:
            handle.log_params({p.key: p.value for p in params})
        if tags:
            handle.set_tags({t.key: t.value for t in tags})
        group: dict[str, Any] = {}
        at: tuple[Any, Any] | None = None
        for point in metrics:
            where = (getattr(point, "step", None), getattr(point, "timestamp", None))
            if group and (where != at or point.key in group):
                handle.log_metrics(group, step=at[0], timestamp=at[1])  # type: ignore[index]
                group = {}
            group[point.key], at = point.value, where
        if group:
            handle.log_metrics(group, step=at[0], timestamp=at[1])  # type: ignore[index]

    def log_artifact(self, run_id: str, local_path: Any, artifact_path: Any = None) -> None:
        self._handle(run_id).log_artifact(local_path, artifact_path)

    def log_artifacts(self, run_id: str, local_dir: Any, artifact_path: Any = None) -> None:
        self._handle(run_id).log_artifacts(local_dir, artifact_path)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        self._handle(run_id).log_bytes(_run.dict_bytes(dictionary, artifact_file), artifact_file)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"log_text takes a str, got {type(text).__name__}")
        self._handle(run_id).log_bytes(text.encode(), artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str, *, save_kwargs: Any = None) -> None:
        self._handle(run_id).log_bytes(_run.figure_bytes(figure, artifact_file, save_kwargs), artifact_file)

    def log_image(self, run_id: str, image: Any, artifact_file: str | None = None, **kwargs: Any) -> None:
        check_image_call(artifact_file, kwargs)
        assert artifact_file is not None
        self._handle(run_id).log_bytes(_run.image_bytes(image, artifact_file), artifact_file)

    # -- artifacts ---------------------------------------------------------------
    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and folders directly under ``path`` (the top when None)."""
        with _read.reader(self._db_path, self._table(run_id)) as r:
            listing = r.artifacts(run_id)
        prefix = (path.strip("/") + "/") if path else ""
        out: dict[str, FileInfo] = {}
        for name, size in zip(listing["name"], listing["size"]):
            if not name.startswith(prefix):
                continue
            head, slash, _ = name[len(prefix) :].partition("/")
            full = prefix + head
            out[full] = FileInfo(path=full, is_dir=bool(slash), file_size=None if slash else int(size))
        return sorted(out.values(), key=lambda f: f.path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Write the artifact ``path`` (a file, or every file under a folder) under
        ``dst_path`` (a new temporary folder when None); returns the local path."""
        dest = dst_path if dst_path is not None else tempfile.mkdtemp(prefix="xetrack-artifacts-")
        path = path.strip("/")
        with _read.reader(self._db_path, self._table(run_id)) as r:
            names = [n for n in r.artifacts(run_id)["name"] if not path or n == path or n.startswith(path + "/")]
            if not names:
                raise MlflowException(f"Run {run_id!r} has no artifact {path!r}", "RESOURCE_DOES_NOT_EXIST")
            for name in names:
                target = os.path.join(dest, *name.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(r.artifact(name, track_id=run_id))
        return os.path.join(dest, *path.split("/")) if path else dest


# -- shared with the module's calls --------------------------------------------------
def _refuse(name: str, value: Any, why: str) -> None:
    if value is not None:
        raise NotImplementedError(f"{name}= is not offered by xetrack.mlflow: {why}")


def _refuse_extras(**given: Any) -> None:
    for name, value in given.items():
        _refuse(name, value, "xetrack keeps no datasets or logged models: log their names as params")


def check_image_call(artifact_file: Any, extra: Mapping[str, Any]) -> None:
    """log_image takes ``artifact_file``; MLflow's image history (``key``, ``step``) is refused."""
    used = [k for k in ("key", "step", "timestamp") if extra.get(k) is not None]
    unknown = [k for k in extra if k not in ("key", "step", "timestamp", "synchronous")]
    if unknown:
        raise TypeError(f"log_image() got unexpected arguments {unknown}")
    if used or artifact_file is None:
        raise NotImplementedError(
            "log_image(key=, step=) (MLflow's image history) is not offered by xetrack.mlflow: "
            "pass artifact_file, one file per step: log_image(image, f'images/step_{step}.png')"
        )


def end(handle: _run.RunHandle, status: str, error: str | None = None) -> None:
    """End ``handle`` and the runs started inside it, innermost first; it becomes the last run."""
    with _state.STATE.lock:
        stack = _state.STATE.stack
        inner = [handle]
        if handle in stack:
            at = stack.index(handle)
            inner = stack[at:]
            del stack[at:]
        _state.STATE.last = (handle.db, handle.table, handle.run_id)
    for run in reversed(inner):
        run.end(status, error)


def create_experiment(db: str, name: str, artifact_location: Any = None, tags: Any = None) -> str:
    """A new experiment (a table) named ``name``; returns its id, the table's name."""
    _refuse("artifact_location", artifact_location, "artifacts are stored in the database")
    _refuse("tags", tags or None, "describe a table with Reader.describe_table")
    table = _state.table_for(name)
    if table in _read.tables(db):
        raise MlflowException(f"Experiment {name!r} already exists (table {table!r})", "RESOURCE_ALREADY_EXISTS")
    _run.ensure_experiment(db, table, name)
    return table


def tables_of(db: str, experiment_ids: Any, experiment_names: Any, every: bool) -> list[str]:
    """The tables a search looks in: those of the ids or names, or every table, or the
    active experiment's. An unknown name or id is left out with a warning, as MLflow does."""
    import warnings

    if every:
        return _read.tables(db)
    if experiment_ids is None and experiment_names is None:
        return [_state.active_table()]
    wanted: list[str] = []
    for given, to_table in ((experiment_ids, _state.table_of_id), (experiment_names, _state.table_for)):
        if given is None:
            continue
        for item in [given] if isinstance(given, (str, int)) else list(given):
            wanted.append(to_table(item))
    existing = set(_read.tables(db))
    for table in wanted:
        if table not in existing:
            warnings.warn(f"search_runs: no experiment {table!r} in {db!r}", stacklevel=3)
    return list(dict.fromkeys(wanted))


__all__ = ["MlflowClient", "CLIENT_HINTS", "end", "create_experiment", "tables_of", "check_image_call"]
