"""One MLflow run as xetrack writes it (:class:`RunHandle`): a :class:`~xetrack.Tracker`
on the run's ``track_id`` in the experiment's table.

- a param goes on every row of the run, those logged before included (``set_params``
  and ``set_value``), as a typed value (``0.1`` stays a number); logging it again with
  another value is refused, as MLflow refuses it;
- ``log_metric``/``log_metrics`` write one row per call, with ``step`` when given;
- tags are xetrack tags; artifacts are stored in the database.

A key becomes its column by the usual rule (``train/loss`` -> ``train_loss``); the key
as logged is recorded beside the column, so that search_runs shows it.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Mapping
from typing import Any

from .. import meta
from ..integrations.common import plain
from ..schema import INT64_MAX, INT64_MIN, TIMESTAMP, TRACK_ID, column_name
from . import _read
from .entities import ms_to_stamp
from .exceptions import MlflowException

STEP = "step"
#: Columns xetrack fills itself: no param or metric may take them.
RESERVED = {TIMESTAMP: "every row's time", TRACK_ID: "the run id"}


def _key(key: Any, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"A {what} key is a non-empty str, got {key!r}")
    column = column_name(key)
    if column.lower() in RESERVED:
        raise ValueError(
            f"{what.capitalize()} {key!r} would be the column {column!r}, which xetrack fills with "
            f"{RESERVED[column.lower()]}: give it another name"
        )
    return key


def _int(value: Any, what: str) -> int:
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")
    return value


def number(value: Any, key: str) -> int | float:
    """A metric value: an int or float (NumPy and torch scalars too); anything else raises."""
    value = plain(value)
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else float(value)
    if isinstance(value, float):
        return value
    if not isinstance(value, (str, bytes)) and hasattr(value, "__float__"):
        return float(value)  # Decimal, Fraction
    raise TypeError(f"Metric {key!r} must be a number, got {type(value).__name__}: {value!r:.60}")


def param_value(value: Any) -> tuple[Any, str]:
    """(the value kept, MLflow's text of it): str, int, float and bool stay typed; anything
    else is kept as its text, as MLflow keeps every param."""
    value = plain(value)
    if isinstance(value, (str, bool)) or (isinstance(value, float) and value == value):
        return value, str(value)
    if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX:
        return value, str(value)
    return str(value), str(value)


def _folder(artifact_path: Any) -> str | None:
    if artifact_path is None:
        return None
    if not isinstance(artifact_path, str):
        raise TypeError(f"artifact_path must be a str, got {artifact_path!r}")
    return artifact_path.strip("/") or None


def _under(folder: str | None, name: str) -> str:
    return f"{folder}/{name}" if folder else name


class RunHandle:
    """A run this process writes. ``start``: the fluent API's run, marked ``running`` now
    and ended with a status; else a write by run id (the client's), which leaves the
    run's status as it is."""

    def __init__(
        self,
        db: str,
        table: str,
        run_id: str | None = None,
        *,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        start: bool = True,
        existing: bool = False,
        system: bool = False,
    ) -> None:
        from ..tracker import Tracker

        self.db, self.table = db, table
        new = run_id if run_id is not None else Tracker.generate_track_id()
        name = run_name if run_name is not None or existing else new
        extra: dict[str, Any] = {"log_system_params": True} if system else {}
        self.tracker = Tracker(db, table=table, track_id=new, run_name=name, warnings=False, **extra)
        self.run_id: str = self.tracker.track_id
        self.run_name: str = name or new
        self.params: dict[str, str] = {}  # key -> MLflow's text
        self.metrics: dict[str, float] = {}  # key -> the last value this process logged
        self._param_columns: dict[str, str] = {}  # column (lower case) -> key
        self._metric_columns: dict[str, str] = {}
        self.rows = 0
        self.status: str | None = None  # xetrack's status, once ended
        self.start_ms: int = int(time.time() * 1000)
        self.end_ms: int | None = None
        self.started = start
        self._reader: Any = None
        if existing:
            self._load(run_name is None)
        if tags:
            self.set_tags(tags)
        if start:
            self.tracker.start()

    def _load(self, keep_name: bool) -> None:
        """Take over an existing run: its params go on the rows logged from now on."""
        run = _read.get_run(self.db, self.table, self.run_id)
        if keep_name:
            self.run_name = run.info.run_name
        last = {k.lower(): v for k, v in (self.tracker.latest or {}).items()}
        typed = {}
        for key, text in run.data.params.items():
            column = column_name(key).lower()
            self.params[key], self._param_columns[column] = text, key
            if last.get(column) is not None:
                typed[key] = last[column]
        for key, value in run.data.metrics.items():
            self._metric_columns[column_name(key).lower()] = key
            self.metrics[key] = value
        self.tracker.set_params(typed)
        self.rows = len(self.tracker)

    def store(self) -> Any:
        """The engine of the run's file (for its recorded keys, run name and tags)."""
        if self._reader is None:
            from ..reader import Reader

            self._reader = Reader(self.db, table=self.table)
        return self._reader.store

    # -- params and metrics ----------------------------------------------------
    def log_params(self, params: Mapping[Any, Any]) -> None:
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict, got {type(params).__name__}")
        new: dict[str, Any] = {}
        texts: dict[str, str] = {}
        columns = dict(self._param_columns)
        for key, value in params.items():
            key = _key(key, "param")
            kept, text = param_value(value)
            column = column_name(key).lower()
            if column == STEP:
                raise ValueError(f"Param {key!r} would be the column 'step', which holds the metrics' steps")
            if column in self._metric_columns:
                raise MlflowException(
                    f"Param {key!r} would share the column {column!r} with metric "
                    f"{self._metric_columns[column]!r} of run {self.run_id!r}: give one of them another name"
                )
            if columns.get(column, key) != key:
                raise MlflowException(f"Params {columns[column]!r} and {key!r} would share the column {column!r}")
            if key in self.params:
                if self.params[key] != text:
                    raise MlflowException(
                        f"Changing param values is not allowed. Param with key={key!r} was already logged with "
                        f"value={self.params[key]!r} for run ID={self.run_id!r}. Attempted logging new value {text!r}."
                    )
                continue
            columns[column] = key
            new[key], texts[key] = kept, text
        if not new:
            return
        renamed = {column_name(k): k for k in new if column_name(k) != k}
        meta.record_kinds(self.store(), self.table, [column_name(k) for k in new], keys=renamed)
        self.tracker.set_params(new)
        if self.rows or len(self.tracker):
            for key, value in new.items():
                self.tracker.set_value(key, value)
        self.params.update(texts)
        self._param_columns = columns

    def log_metrics(self, metrics: Mapping[Any, Any], step: Any = None, timestamp: Any = None) -> None:
        """One row: the metrics, and ``step`` when given; ``timestamp`` (ms) sets the row's time."""
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a dict, got {type(metrics).__name__}")
        row: dict[str, Any] = {}
        seen: dict[str, str] = {}
        for key, value in metrics.items():
            key = _key(key, "metric")
            column = column_name(key).lower()
            if column in self._param_columns:
                raise MlflowException(
                    f"Metric {key!r} would share the column {column!r} with param "
                    f"{self._param_columns[column]!r} of run {self.run_id!r}: give one of them another name"
                )
            other = seen.get(column) or self._metric_columns.get(column, key)
            if other != key:
                raise MlflowException(f"Metrics {other!r} and {key!r} would share the column {column!r}")
            seen[column] = key
            row[key] = number(value, key)
        if step is not None:
            step = _int(step, "step")
            if STEP in seen:
                raise ValueError(f"Metric {seen[STEP]!r} is the step column: pass it as step=, not as a metric too")
            row[STEP] = step
        if timestamp is not None:
            timestamp = _int(timestamp, "timestamp")
        if not seen:
            return
        renamed = {column_name(k): k for c, k in seen.items() if c not in self._metric_columns and column_name(k) != k}
        if renamed:
            meta.record_kinds(self.store(), self.table, metrics=list(renamed), keys=renamed)
        logged = self.tracker.log(row)
        self.rows += 1
        if timestamp is not None:
            self.tracker.set_where(TIMESTAMP, ms_to_stamp(timestamp), TIMESTAMP, logged[TIMESTAMP])
        self._metric_columns.update(seen)
        self.metrics.update(
            (k, float(v)) for k, v in row.items() if k in seen.values() and column_name(k).lower() != STEP
        )

    # -- tags ------------------------------------------------------------------
    def set_tags(self, tags: Mapping[Any, Any]) -> None:
        if not isinstance(tags, Mapping):
            raise TypeError(f"tags must be a dict, got {type(tags).__name__}")
        kept: dict[str, Any] = {}
        for key, value in tags.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"A tag key is a non-empty str, got {key!r}")
            value = plain(value)
            kept[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        name = kept.pop(_read.RUN_NAME_TAG, None)
        if name is not None:
            meta.set_run_name(self.store(), self.table, self.run_id, str(name))
            self.run_name = str(name)
        if kept:
            self.tracker.set_tags(kept)

    def delete_tag(self, key: str) -> None:
        if not meta.delete_tag(self.store(), self.table, self.run_id, key):
            raise MlflowException(f"No tag with name: {key!r} in run with id {self.run_id!r}")

    def tags(self) -> dict[str, str]:
        return {**self.tracker.tags, _read.RUN_NAME_TAG: self.run_name}

    # -- artifacts ---------------------------------------------------------------
    def log_artifact(self, local_path: Any, artifact_path: Any = None) -> None:
        path = os.fspath(local_path)
        folder = _folder(artifact_path)
        if os.path.isdir(path):
            self.tracker.log_artifacts(path, prefix=_under(folder, os.path.basename(path.rstrip("/\\"))))
        elif os.path.isfile(path):
            self.tracker.log_artifact(path, name=_under(folder, os.path.basename(path)))
        else:
            raise FileNotFoundError(f"log_artifact: no file or folder {path!r}")

    def log_artifacts(self, local_dir: Any, artifact_path: Any = None) -> None:
        path = os.fspath(local_dir)
        if not os.path.isdir(path):
            raise NotADirectoryError(f"log_artifacts takes a folder, got {path!r}: log a file with log_artifact")
        self.tracker.log_artifacts(path, prefix=_folder(artifact_path))

    def log_bytes(self, data: bytes, artifact_file: Any) -> None:
        if not isinstance(artifact_file, str) or not artifact_file.strip("/"):
            raise TypeError(f"artifact_file is a file name such as 'config.json', got {artifact_file!r}")
        self.tracker.log_artifact(data, name=artifact_file.strip("/"))

    # -- the end -----------------------------------------------------------------
    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Mark the run ``status`` and close it (once). A run that logged no row gets one
        (its params), so that runs() and search_runs show it."""
        if self.status is not None:
            return
        try:
            if not self.rows and not len(self.tracker):
                self.tracker.log({})
                self.rows = 1
            if self.started:
                self.tracker.end(status, error)
            self.status, self.end_ms = status, int(time.time() * 1000)
        finally:
            self.close()

    def close(self) -> None:
        self.tracker.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def ensure_experiment(db: str, table: str, name: str | None) -> None:
    """Create ``table`` in ``db`` (and the file) when missing; an experiment name other
    than the table's is kept as its description, as ``xt import mlflow`` keeps it."""
    from ..migrate.mlflow_import import DESCRIPTION_HEAD
    from ..tracker import Tracker

    Tracker(db, table=table, warnings=False).close()
    if name is None or name in (table, "Default"):
        return
    with _read.reader(db, table) as r:
        if table not in meta.descriptions(r.store):
            meta.describe_table(r.store, table, DESCRIPTION_HEAD + name)


def dict_bytes(dictionary: Any, artifact_file: str) -> bytes:
    """``log_dict``'s file: YAML for ``.yaml``/``.yml``, else JSON (indented)."""
    if os.path.splitext(str(artifact_file))[1].lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise ImportError(f"log_dict to {artifact_file!r} needs PyYAML: pip install pyyaml ({exc})") from exc
        return str(yaml.safe_dump(dictionary, default_flow_style=False)).encode()
    return json.dumps(dictionary, indent=2).encode()


def figure_bytes(figure: Any, artifact_file: str, save_kwargs: Mapping[str, Any] | None = None) -> bytes:
    """A matplotlib figure saved in the format of ``artifact_file``'s extension (PNG by
    default); a plotly figure as HTML (``.html``) or an image (plotly's ``to_image``)."""
    extension = os.path.splitext(str(artifact_file))[1].lower().lstrip(".")
    if callable(getattr(figure, "savefig", None)):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=extension or "png", **dict(save_kwargs or {}))
        return buffer.getvalue()
    if callable(getattr(figure, "to_html", None)) and extension in ("html", "htm"):
        return str(figure.to_html(**dict(save_kwargs or {}))).encode()
    if callable(getattr(figure, "to_image", None)):
        return bytes(figure.to_image(format=extension or "png", **dict(save_kwargs or {})))
    raise TypeError(f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}")


def image_bytes(image: Any, artifact_file: str) -> bytes:
    """A PIL image, or a NumPy array (H x W [x C], floats in [0, 1] or ints 0-255), as an image file."""
    extension = os.path.splitext(str(artifact_file))[1].lower().lstrip(".") or "png"
    if not callable(getattr(image, "save", None)):
        try:
            from PIL import Image
        except ImportError as exc:
            raise ImportError(f"log_image of an array needs Pillow: pip install pillow ({exc})") from exc
        import numpy as np

        array = np.asarray(image)
        if array.dtype.kind == "f":
            array = (array.clip(0, 1) * 255).round()
        image = Image.fromarray(array.astype("uint8"))
    buffer = io.BytesIO()
    image.save(buffer, format={"jpg": "jpeg"}.get(extension, extension))
    return buffer.getvalue()


__all__ = ["RunHandle", "ensure_experiment", "number", "param_value", "dict_bytes", "figure_bytes", "image_bytes"]
