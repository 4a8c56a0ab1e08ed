"""What :mod:`xetrack.mlflow` keeps per process, as MLflow does: the database runs go to
(from ``set_tracking_uri``, else ``MLFLOW_TRACKING_URI`` when it names a database, else
``mlruns.db``), the active experiment (a table), the stack of active runs and the last
run; and the rules that turn MLflow's URIs and experiment names into xetrack's.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..schema import is_internal_table, validate_table_name
from ..store import hide_passwords, is_url

#: The database when nothing names one: MLflow's ./mlruns, as one file.
DEFAULT_DB = "mlruns.db"
#: The table of MLflow's "Default" experiment (id "0").
DEFAULT_TABLE = "default"
ENV_URI = "MLFLOW_TRACKING_URI"
ENV_EXPERIMENT_NAME = "MLFLOW_EXPERIMENT_NAME"
ENV_EXPERIMENT_ID = "MLFLOW_EXPERIMENT_ID"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
_DRIVER = re.compile(r"(postgres(?:ql)?)\+[A-Za-z0-9_]+://", re.IGNORECASE)


@dataclass
class State:
    uri: str | None = None  # as set_tracking_uri got it
    db: str | None = None  # the database it names
    experiment: str | None = None  # as set_experiment got it
    table: str | None = None  # its table
    stack: list[Any] = field(default_factory=list)  # the active runs (RunHandle), innermost last
    last: tuple[str, str, str] | None = None  # (db, table, run_id) of the last run started
    # runs written by id (MlflowClient, run_id=), not active here: (db, run_id) -> RunHandle
    by_id: dict[tuple[str, str], Any] = field(default_factory=dict)
    hooks: bool = False  # the exit hooks are installed
    warned_env: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)


STATE = State()


def reset() -> None:
    """Forget the tracking URI, the experiment and the runs (for tests: active runs are
    not ended)."""
    with STATE.lock:
        STATE.uri = STATE.db = STATE.experiment = STATE.table = STATE.last = None
        STATE.stack.clear()
        for handle in STATE.by_id.values():
            handle.close()
        STATE.by_id.clear()


def db_from_uri(uri: Any) -> str:
    """The database a tracking URI names: a path (``mlruns.db``), ``sqlite:///path.db``
    (that path) or a ``postgresql://`` URL. A server, Databricks or an MLflow file store
    is refused with what to pass instead.

    >>> db_from_uri("sqlite:///runs/exp.db"), db_from_uri("sqlite:////tmp/exp.db")
    ('runs/exp.db', '/tmp/exp.db')
    """
    if isinstance(uri, os.PathLike):
        uri = os.fspath(uri)
    if not isinstance(uri, str):
        raise TypeError(f"The tracking URI is a database path or URL (str), got {type(uri).__name__}: {uri!r}")
    text = uri.strip()
    if not text:
        raise ValueError("Empty tracking URI: pass a database path such as 'mlruns.db'")
    lowered = text.lower()
    if lowered.startswith("sqlite:"):
        rest = text[len("sqlite:") :]
        path = rest[3:].split("?", 1)[0] if rest.startswith("///") else ""
        if not path:
            raise ValueError(
                f"Tracking URI {text!r} names no file: use 'sqlite:///relative/path.db' or "
                "'sqlite:////absolute/path.db' (an in-memory database would keep nothing to read)"
            )
        return path
    driver = _DRIVER.match(text)
    if driver:  # MLflow's SQLAlchemy spelling, postgresql+psycopg://: xetrack reads it with psycopg 3
        return "postgresql://" + text[driver.end() :]
    if is_url(text):
        return text
    scheme = _SCHEME.match(text)
    if scheme or lowered.startswith("databricks"):
        shown = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", hide_passwords(text))  # no password in messages
        raise ValueError(
            f"xetrack.mlflow keeps runs in a database, not at {shown!r}: pass a database path to "
            "set_tracking_uri(), e.g. 'mlruns.db', 'sqlite:///mlruns.db' or a 'postgresql://' URL. "
            "Runs already on an MLflow server or store come over with 'xt import mlflow'."
        )
    if os.path.isdir(text):
        raise ValueError(
            f"Tracking URI {text!r} is a folder (an MLflow file store?): pass a database file path, "
            f"e.g. {os.path.join(text, 'runs.db')!r}; 'xt import mlflow {text} runs.db' imports an MLflow store"
        )
    return text


def tracking_uri() -> str:
    """The URI as set (else the environment's, when it names a database, else ``mlruns.db``)."""
    with STATE.lock:
        if STATE.uri is not None:
            return STATE.uri
    env = _env_uri()
    return env if env is not None else DEFAULT_DB


def tracking_db() -> str:
    """The database runs go to."""
    with STATE.lock:
        if STATE.db is not None:
            return STATE.db
    env = _env_uri()
    return db_from_uri(env) if env is not None else DEFAULT_DB


def _env_uri() -> str | None:
    value = os.environ.get(ENV_URI, "").strip()
    if not value:
        return None
    try:
        db_from_uri(value)
    except ValueError as exc:
        if STATE.warned_env != value:
            STATE.warned_env = value
            warnings.warn(f"{ENV_URI} is not used: {exc} Runs go to {DEFAULT_DB!r}.", stacklevel=3)
        return None
    return value


def set_uri(uri: Any) -> None:
    db = db_from_uri(uri)
    with STATE.lock:
        STATE.uri, STATE.db = (os.fspath(uri) if isinstance(uri, os.PathLike) else str(uri)), db


def table_for(name: Any) -> str:
    """The table of an experiment name: characters other than letters, digits and ``_``
    become ``_`` (``'MLflow Quickstart'`` -> ``MLflow_Quickstart``); MLflow's
    ``Default`` is the table ``default``. A name xetrack keeps for itself is refused.

    >>> table_for("MLflow Quickstart"), table_for("Default")
    ('MLflow_Quickstart', 'default')
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"An experiment name is a non-empty str, got {name!r}")
    if name == "Default":
        return DEFAULT_TABLE
    table = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if is_internal_table(table):
        raise ValueError(
            f"Experiment {name!r} would be the table {table!r}, a name xetrack keeps for itself "
            "('assets', 'sqlite_*', 'xetrack_*'): choose another experiment name"
        )
    return validate_table_name(table)


def table_of_id(experiment_id: Any) -> str:
    """The table of an experiment id: the id is the table's name (MLflow's ``"0"``: ``default``)."""
    if isinstance(experiment_id, int) and not isinstance(experiment_id, bool):
        experiment_id = str(experiment_id)
    if experiment_id == "0":
        return DEFAULT_TABLE
    return validate_table_name(experiment_id)


def active_table() -> str:
    """The table of the active experiment: set_experiment's, else the environment's
    (``MLFLOW_EXPERIMENT_NAME``, ``MLFLOW_EXPERIMENT_ID``), else ``default``."""
    with STATE.lock:
        if STATE.table is not None:
            return STATE.table
    name = os.environ.get(ENV_EXPERIMENT_NAME, "").strip()
    if name:
        return table_for(name)
    experiment_id = os.environ.get(ENV_EXPERIMENT_ID, "").strip()
    return table_of_id(experiment_id) if experiment_id else DEFAULT_TABLE


__all__ = [
    "DEFAULT_DB",
    "DEFAULT_TABLE",
    "STATE",
    "State",
    "reset",
    "db_from_uri",
    "tracking_uri",
    "tracking_db",
    "set_uri",
    "table_for",
    "table_of_id",
    "active_table",
]
