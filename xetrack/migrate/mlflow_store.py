"""Reading an MLflow tracking store without MLflow: its file store (an ``mlruns/``
folder) or its SQLite database (``sqlite:///mlflow.db``, opened read-only).

Both give the same plain records (:class:`Experiment`, :class:`Run`, :class:`Model`),
so the import does not care which store they came from; :mod:`.mlflow_pg` reads an
MLflow database on PostgreSQL, and :func:`.mlflow_open.open_store` picks the reader a
source names.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

#: MLflow's file store writes a run's status as RunStatus' number.
FILE_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
NOTE_TAG = "mlflow.note.content"
RUN_NAME_TAG = "mlflow.runName"


class NotAnMlflowStore(ValueError):
    """The source is neither an MLflow file store nor an MLflow SQLite database."""


class Cursor(Protocol):
    """The rows of one query, as :class:`SqliteStore` reads them."""

    def __iter__(self) -> Iterator[Any]: ...
    def fetchall(self) -> list[Any]: ...


class Queries(Protocol):
    """What :class:`SqliteStore` reads through: a ``sqlite3`` connection, or
    :mod:`.mlflow_pg`'s psycopg connection that takes the same queries."""

    def execute(self, query: str, params: Any = (), /) -> Cursor: ...
    def close(self) -> None: ...


@dataclass
class Experiment:
    id: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    deleted: bool = False

    @property
    def description(self) -> str | None:
        return self.tags.get(NOTE_TAG)


@dataclass
class Run:
    run_id: str
    experiment_id: str
    name: str | None
    status: str  # MLflow's name: FINISHED, FAILED, KILLED, RUNNING, SCHEDULED
    start: int | None  # ms since the epoch
    end: int | None
    deleted: bool
    artifact_uri: str | None
    where: str  # names the run in messages: its folder or its row


@dataclass
class ModelVersion:
    version: int
    source: str | None
    run_id: str | None
    stage: str | None
    description: str | None
    status: str | None
    created: int | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Model:
    name: str
    description: str | None
    versions: list[ModelVersion]
    aliases: dict[str, int]
    tags: dict[str, str] = field(default_factory=dict)


def read_yaml(path: str) -> dict[str, Any]:
    """A meta.yaml as MLflow writes it (PyYAML when installed, else the flat subset MLflow uses)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        import yaml

        data = yaml.safe_load(text)
        return data if isinstance(data, dict) else {}
    except ImportError:
        return _flat_yaml(text)


def _scalar(text: str) -> Any:
    text = text.strip()
    if text in ("", "null", "~"):
        return None
    if text[:1] == "'" and text[-1:] == "'":
        return text[1:-1].replace("''", "'")
    if text[:1] == '"' and text[-1:] == '"':
        import json

        return json.loads(text)
    try:
        return int(text)
    except ValueError:
        return text


def _flat_yaml(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    parent: dict[str, Any] | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.strip().partition(":")
        if line[:1] == " " and parent is not None:
            parent[_scalar(key)] = _scalar(value)
            continue
        if value.strip() in ("", "{}", "[]"):
            parent = out[key] = {} if value.strip() != "[]" else []  # type: ignore[assignment]
        else:
            out[key] = _scalar(value)
            parent = None
    return out


def local_path(uri: str | None) -> str | None:
    """A ``file://`` URI or a plain path as a local path; None for any other scheme."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return uri
    return None


class FileStore:
    """An MLflow file store: ``<root>/<experiment id>/<run id>/{meta.yaml,params,metrics,tags,artifacts}``."""

    def __init__(self, root: str, artifact_root: str | None = None) -> None:
        self.root = root
        self.artifact_root = artifact_root
        self.problems: list[str] = []  # what could not be read, for the import's warnings
        if not os.path.isdir(root):
            raise NotAnMlflowStore(f"{root!r} is not an MLflow store: no such folder (expected an mlruns/ folder)")
        self._experiments = {
            name: os.path.join(root, name)
            for name in sorted(os.listdir(root))
            if name not in (".trash", "models") and os.path.isfile(os.path.join(root, name, "meta.yaml"))
        }
        if not self._experiments and not os.path.isdir(os.path.join(root, "models")):
            raise NotAnMlflowStore(
                f"{root!r} is not an MLflow store: no experiment folder with a meta.yaml in it "
                "(expected an mlruns/ folder or sqlite:///mlflow.db)"
            )

    def __enter__(self) -> FileStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    @staticmethod
    def _values(folder: str) -> dict[str, str]:
        """key -> file text under ``folder``; a key with ``/`` is a nested file."""
        out: dict[str, str] = {}
        if not os.path.isdir(folder):
            return out
        for here, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(here, name)
                with open(path, encoding="utf-8") as handle:
                    out[os.path.relpath(path, folder).replace(os.sep, "/")] = handle.read()
        return out

    def experiments(self) -> list[Experiment]:
        out = []
        for folder in self._experiments.values():
            meta = read_yaml(os.path.join(folder, "meta.yaml"))
            out.append(
                Experiment(
                    str(meta.get("experiment_id")),
                    str(meta.get("name")),
                    self._values(os.path.join(folder, "tags")),
                    meta.get("lifecycle_stage") == "deleted",
                )
            )
        return out

    def runs(self, experiment: Experiment) -> Iterator[Run]:
        folder = self._experiments.get(experiment.id) or os.path.join(self.root, experiment.id)
        for name in sorted(os.listdir(folder)):
            run_dir = os.path.join(folder, name)
            meta_path = os.path.join(run_dir, "meta.yaml")
            if not os.path.isfile(meta_path):
                continue
            try:
                meta = read_yaml(meta_path)
            except Exception as exc:  # noqa: BLE001 - one damaged run must not stop the others
                self.problems.append(f"run folder {run_dir} was not imported: its meta.yaml cannot be read ({exc})")
                continue
            status = meta.get("status")
            yield Run(
                str(meta.get("run_id") or meta.get("run_uuid") or name),
                experiment.id,
                meta.get("run_name"),
                FILE_STATUS.get(status, str(status)) if isinstance(status, int) else str(status or "FINISHED"),
                meta.get("start_time"),
                meta.get("end_time"),
                meta.get("lifecycle_stage") == "deleted",
                meta.get("artifact_uri") or os.path.join(run_dir, "artifacts"),
                run_dir,
            )

    def _run_dir(self, run: Run) -> str:
        return run.where

    def params(self, run: Run) -> dict[str, str]:
        return self._values(os.path.join(self._run_dir(run), "params"))

    def tags(self, run: Run) -> dict[str, str]:
        return self._values(os.path.join(self._run_dir(run), "tags"))

    def metrics(self, run: Run) -> Iterator[tuple[str, int, int, float]]:
        """(key, timestamp ms, step, value) of every point, file by file."""
        folder = os.path.join(self._run_dir(run), "metrics")
        for key, text in self._values(folder).items():
            for number, line in enumerate(text.splitlines(), 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) not in (2, 3):
                    raise ValueError(f"metrics/{key} line {number}: expected 'timestamp value [step]', got {line!r}")
                yield key, int(parts[0]), int(parts[2]) if len(parts) == 3 else 0, float(parts[1])

    def artifact_dir(self, run: Run) -> str | None:
        return artifact_dir(run, self.artifact_root)

    def models(self) -> list[Model]:
        root = os.path.join(self.root, "models")
        out: list[Model] = []
        if not os.path.isdir(root):
            return out
        for name in sorted(os.listdir(root)):
            folder = os.path.join(root, name)
            if not os.path.isfile(os.path.join(folder, "meta.yaml")):
                continue
            meta = read_yaml(os.path.join(folder, "meta.yaml"))
            versions = []
            for sub in os.listdir(folder):
                path = os.path.join(folder, sub, "meta.yaml")
                if sub.startswith("version-") and os.path.isfile(path):
                    v = read_yaml(path)
                    versions.append(
                        ModelVersion(
                            int(v["version"]),
                            v.get("source"),
                            v.get("run_id"),
                            v.get("current_stage"),
                            v.get("description"),
                            v.get("status"),
                            v.get("creation_timestamp"),
                            self._values(os.path.join(folder, sub, "tags")),
                        )
                    )
            aliases = {str(k): int(v) for k, v in (meta.get("aliases") or {}).items()}
            out.append(
                Model(
                    str(meta.get("name", name)),
                    meta.get("description"),
                    sorted(versions, key=lambda v: v.version),
                    aliases,
                    self._values(os.path.join(folder, "tags")),
                )
            )
        return out


def artifact_dir(run: Run, artifact_root: str | None) -> str | None:
    """The local folder of a run's artifacts: its artifact URI, else under ``artifact_root``."""
    uri = run.artifact_uri or ""
    candidates = []
    if uri.startswith("mlflow-artifacts:") and artifact_root:
        candidates.append(os.path.join(artifact_root, urlparse(uri).path.lstrip("/")))
    path = local_path(uri)
    if path:
        candidates.append(path)
    if artifact_root:
        candidates.append(os.path.join(artifact_root, run.experiment_id, run.run_id, "artifacts"))
    for candidate in candidates:
        if os.path.isdir(candidate):
            return candidate
    return None


class SqliteStore:
    """An MLflow SQLite database, read with the standard library (never written)."""

    def __init__(self, uri: str, artifact_root: str | None = None) -> None:
        if not uri.startswith("sqlite:///"):
            raise NotAnMlflowStore(
                f"{uri!r}: an MLflow SQLite URI looks like sqlite:///mlflow.db or sqlite:////abs/mlflow.db"
            )
        self.path = uri[len("sqlite:///") :]
        self.artifact_root = artifact_root
        self.problems: list[str] = []
        if not os.path.isfile(self.path):
            raise NotAnMlflowStore(f"{uri!r} is not an MLflow store: no file {self.path!r}")
        self.conn: Queries = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            names = {n for (n,) in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise NotAnMlflowStore(f"{uri!r} is not an MLflow store: {exc}") from None
        missing = {"experiments", "runs", "params", "metrics", "tags"} - names
        if missing:
            self.conn.close()
            raise NotAnMlflowStore(f"{uri!r} is not an MLflow store: it has no {', '.join(sorted(missing))} table")
        self.tables = names

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.close()

    def experiments(self) -> list[Experiment]:
        out = []
        for eid, name, stage in self.conn.execute(
            "SELECT experiment_id, name, lifecycle_stage FROM experiments ORDER BY experiment_id"
        ):
            tags = {}
            if "experiment_tags" in self.tables:
                tags = dict(
                    self.conn.execute('SELECT "key", value FROM experiment_tags WHERE experiment_id = ?', (eid,))
                )
            out.append(Experiment(str(eid), name, tags, stage == "deleted"))
        return out

    def runs(self, experiment: Experiment) -> Iterator[Run]:
        rows = self.conn.execute(
            "SELECT run_uuid, name, status, start_time, end_time, lifecycle_stage, artifact_uri FROM runs "
            "WHERE experiment_id = ? ORDER BY start_time, run_uuid",
            (int(experiment.id),),
        ).fetchall()
        for rid, name, status, start, end, stage, uri in rows:
            yield Run(
                rid,
                experiment.id,
                name,
                status or "FINISHED",
                start,
                end,
                stage == "deleted",
                uri,
                f"run {rid} of {self.path}",
            )

    def params(self, run: Run) -> dict[str, str]:
        return dict(self.conn.execute('SELECT "key", value FROM params WHERE run_uuid = ?', (run.run_id,)))

    def tags(self, run: Run) -> dict[str, str]:
        return dict(self.conn.execute('SELECT "key", value FROM tags WHERE run_uuid = ?', (run.run_id,)))

    def metrics(self, run: Run) -> Iterator[tuple[str, int, int, float]]:
        cursor = self.conn.execute(
            'SELECT "key", timestamp, step, value, is_nan FROM metrics WHERE run_uuid = ? '
            'ORDER BY "key", timestamp, step',
            (run.run_id,),
        )
        for key, ts, step, value, is_nan in cursor:
            yield key, int(ts), int(step), math.nan if is_nan else float(value)

    def artifact_dir(self, run: Run) -> str | None:
        return artifact_dir(run, self.artifact_root)

    def models(self) -> list[Model]:
        if "registered_models" not in self.tables:
            return []
        out = []
        for name, description in self.conn.execute(
            "SELECT name, description FROM registered_models ORDER BY name"
        ).fetchall():
            version_tags: dict[int, dict[str, str]] = {}
            if "model_version_tags" in self.tables:
                for v, key, value in self.conn.execute(
                    'SELECT version, "key", value FROM model_version_tags WHERE name = ? ORDER BY version, "key"',
                    (name,),
                ):
                    version_tags.setdefault(int(v), {})[key] = value if value is not None else ""
            versions = [
                ModelVersion(int(v), source, run_id, stage, desc, status, created, version_tags.get(int(v), {}))
                for v, source, run_id, stage, desc, status, created in self.conn.execute(
                    "SELECT version, source, run_id, current_stage, description, status, creation_time "
                    "FROM model_versions WHERE name = ? ORDER BY version",
                    (name,),
                )
            ]
            aliases = {}
            if "registered_model_aliases" in self.tables:
                aliases = {
                    a: int(v)
                    for a, v in self.conn.execute(
                        "SELECT alias, version FROM registered_model_aliases WHERE name = ?", (name,)
                    )
                }
            tags: dict[str, str] = {}
            if "registered_model_tags" in self.tables:
                tags = {
                    k: v if v is not None else ""
                    for k, v in self.conn.execute(
                        'SELECT "key", value FROM registered_model_tags WHERE name = ? ORDER BY "key"', (name,)
                    )
                }
            out.append(Model(name, description, versions, aliases, tags))
        return out
