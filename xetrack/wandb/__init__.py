"""W&B's API, written to a xetrack database: ``import xetrack.wandb as wandb``.

A script written for Weights & Biases runs with only its import line changed; W&B itself
is not needed. ``wandb.init(project=...)`` starts one xetrack run in the table named by
the project, in the file ``db=``, else ``$XETRACK_DB``, else ``./xetrack.db``:

>>> import xetrack.wandb as wandb
>>> run = wandb.init(project="mnist", config={"lr": 0.01}, db="exp.db")
>>> wandb.log({"loss": 0.5})  # one row: step 0, loss and the param lr
>>> wandb.finish()
>>> from xetrack import Reader
>>> Reader("exp.db", table="mnist").to_df()[["step", "loss", "lr"]].values.tolist()
[[0, 0.5, 0.01]]

What lands where (docs/integrations.md): config -> params on every row; each
committed ``log`` -> one row with ``step``; ``tags``, ``group``, ``notes``, ``job_type``
-> tags; ``summary['k'] = v`` -> the param ``summary_k``; ``save``/``log_artifact`` of
local files -> artifacts; ``finish`` -> ``finished`` (``failed`` for a non-zero exit code
or an exception). What W&B offers and xetrack does not (media, Artifacts, sweeps, the
public API...) is still there by name and raises :class:`Unsupported` naming the call.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ..schema import column_name, validate_table_name
from ..store import SKIP_INSERT
from . import process
from .errors import CLASSES, FUNCTIONS, MEDIA, ConfigError, Error, PreInit, Unsupported, refuse
from .errors import unsupported_class as _unsupported_class
from .errors import unsupported_function as _unsupported_function
from .runs import MODES, Run, tag_tuple
from .values import Config, MetricDefinition, mapping_of
from .values import same as _same

#: The file when ``db=`` is not given and ``$XETRACK_DB`` is not set.
DEFAULT_DB = "xetrack.db"
#: The table when no project is given (nor ``$WANDB_PROJECT``).
DEFAULT_PROJECT = "default"
REINIT = ("default", "return_previous", "finish_previous", "create_new")
#: Settings about how W&B talks to its servers or prints: nothing to store, so ignored.
QUIET_SETTINGS = frozenset(
    {"start_method", "silent", "quiet", "console", "init_timeout", "show_info", "show_warnings", "show_errors"}
    | {"disable_git", "disable_code", "disable_job_creation", "api_key", "base_url", "anonymous", "x_disable_stats"}
    | {"x_disable_meta", "_disable_stats", "_disable_meta", "program", "root_dir", "files_dir"}
)


class Settings(dict[str, Any]):
    """``wandb.Settings(...)``: ``mode`` and ``reinit`` are honoured by ``init``; settings
    about W&B's servers and printing are ignored; any other is refused."""

    def __init__(self, **values: Any) -> None:
        super().__init__(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _env(value: Any, name: str) -> Any:
    return value if value is not None else (os.environ.get(name) or None)


def table_of(project: Any) -> str:
    """The table of a W&B project: characters other than letters, digits and ``_`` become
    ``_`` (``my-project`` -> ``my_project``), then xetrack's table rules apply."""
    if project is None:
        return DEFAULT_PROJECT
    if not isinstance(project, str) or not project.strip():
        raise TypeError(f"project must be a non-empty str, got {project!r}")
    return validate_table_name(column_name(project.strip()))


def _previous(db: str, table: str, track_id: str) -> tuple[int, int] | None:
    """(rows, next step) of a run already in ``table``, or None."""
    from ..errors import TableNotFoundError
    from ..reader import Reader

    try:
        reader = Reader(db, table=table)
    except FileNotFoundError:
        return None
    try:
        frame = reader.to_df(track_id=track_id)
    except TableNotFoundError:
        return None
    finally:
        reader.close()
    if not len(frame):
        return None
    steps = [int(v) for v in frame["step"].to_list() if v is not None and v == v] if "step" in frame.columns else []
    return len(frame), (max(steps) + 1 if steps else 0)


def _reinit_mode(reinit: Any) -> str:
    if reinit is True:
        return "finish_previous"
    if reinit in (None, False, "default"):
        notebook = "ipykernel" in sys.modules or hasattr(sys, "ps1")
        return "finish_previous" if notebook else "return_previous"
    if reinit not in REINIT:
        raise ValueError(f"reinit must be a bool or one of {', '.join(REINIT)}, got {reinit!r}")
    return str(reinit)


def _differences(run: Run, asked: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """What a new init asks (the values given) that the active run does not have."""
    have: dict[str, Any] = {"project": run.project, "name": run.name, "id": run.id, "tags": run.tags}
    have.update(group=run.group, notes=run.notes, job_type=run.job_type, db=run.url)
    out = [key for key, value in asked.items() if value is not None and value != have[key]]
    if any(key not in run.config or not _same(run.config[key], value) for key, value in config.items()):
        out.append("config")
    return out


def init(
    *,
    project: str | None = None,
    name: str | None = None,
    config: Any = None,
    tags: Any = None,
    group: str | None = None,
    notes: str | None = None,
    id: str | None = None,
    resume: bool | str | None = None,
    db: str | os.PathLike[str] | None = None,
    reinit: bool | str | None = None,
    mode: str | None = None,
    entity: str | None = None,
    job_type: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    config_exclude_keys: list[str] | None = None,
    config_include_keys: list[str] | None = None,
    allow_val_change: bool | None = None,
    save_code: bool | None = None,
    anonymous: str | None = None,
    force: bool | None = None,
    resume_from: str | None = None,
    fork_from: str | None = None,
    tensorboard: bool | None = None,
    sync_tensorboard: bool | None = None,
    monitor_gym: bool | None = None,
    settings: Any = None,
) -> Run:
    """Start a run (W&B's ``wandb.init``), the process's global one (``wandb.run``).

    ``project`` is the table; ``db`` the file (else ``$XETRACK_DB``, else ``xetrack.db``).
    Unset, ``project``, ``name``, ``notes``, ``tags`` (comma-separated), ``group``,
    ``job_type``, ``id``, ``resume`` and ``mode`` are read from W&B's environment variables
    (``WANDB_PROJECT``, ``WANDB_NAME``, ``WANDB_NOTES``, ``WANDB_TAGS``, ``WANDB_RUN_GROUP``,
    ``WANDB_JOB_TYPE``, ``WANDB_RUN_ID``, ``WANDB_RESUME``, ``WANDB_MODE``).
    ``entity``, ``anonymous``, ``force`` and ``dir`` are about W&B's account and files:
    ``entity`` is kept as a tag, ``dir`` holds ``run.dir``, the others are ignored.
    """
    options = dict(settings or {})
    for key in options:
        if key not in QUIET_SETTINGS and key not in ("mode", "reinit"):
            refuse(f"wandb.Settings({key}=...)", "only mode and reinit are read")
    mode = _env(mode if mode is not None else options.get("mode"), "WANDB_MODE")
    if mode is None and os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1", "yes"):
        mode = "disabled"
    mode = mode or "online"
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    for flag, value, why in (
        ("resume_from", resume_from, "runs are not rewound"),
        ("fork_from", fork_from, "runs are not forked"),
        ("sync_tensorboard", sync_tensorboard or tensorboard, "log the values with wandb.log"),
        ("monitor_gym", monitor_gym, "log the values with wandb.log"),
    ):
        if value:
            refuse(f"wandb.init({flag}=...)", why)
    table = table_of(_env(project, "WANDB_PROJECT"))
    name, notes = _env(name, "WANDB_NAME"), _env(notes, "WANDB_NOTES")
    group, job_type = _env(group, "WANDB_RUN_GROUP"), _env(job_type, "WANDB_JOB_TYPE")
    if tags is None and os.environ.get("WANDB_TAGS"):
        tags = [t.strip() for t in os.environ["WANDB_TAGS"].split(",") if t.strip()]
    tag_list = tag_tuple(tags)
    for what, text in (("name", name), ("notes", notes), ("group", group), ("job_type", job_type), ("entity", entity)):
        if text is not None and (not isinstance(text, str) or not text):
            raise TypeError(f"{what} must be a non-empty str, got {text!r}")
    values = dict(mapping_of(config, "wandb.init(config=...)"))
    if config_include_keys is not None and config_exclude_keys is not None:
        raise ValueError("pass config_include_keys or config_exclude_keys, not both")
    if config_include_keys is not None:
        values = {k: v for k, v in values.items() if k in config_include_keys}
    if config_exclude_keys is not None:
        values = {k: v for k, v in values.items() if k not in config_exclude_keys}
    track_id, resume = _env(id, "WANDB_RUN_ID"), _env(resume, "WANDB_RESUME")
    if track_id is not None and (not isinstance(track_id, str) or not track_id):
        raise TypeError(f"id must be a non-empty str, got {track_id!r}")
    if resume not in (None, False, True, "allow", "must", "never", "auto"):
        raise ValueError(f"resume must be a bool or one of allow, must, never, auto, got {resume!r}")
    if resume == "must" and track_id is None:
        raise ValueError("resume='must' needs the run's id: wandb.init(id=..., resume='must')")

    how = _reinit_mode(reinit if reinit is not None else options.get("reinit"))
    active = process.current()
    if active is not None and how == "return_previous":
        given = project is not None or "WANDB_PROJECT" in os.environ
        asked = {"project": table if given else None, "name": name, "id": track_id, "tags": tags and tag_list}
        asked.update(group=group, notes=notes, job_type=job_type, db=None if db is None else Run.where(os.fspath(db)))
        differ = _differences(active, asked, values)
        if differ:
            raise Error(
                f"wandb.init(): run {active.id!r} is still running and reinit='return_previous' returns it "
                f"unchanged, without the {', '.join(differ)} asked: call wandb.finish() first, "
                "or pass reinit='finish_previous' (or 'create_new')"
            )
        return active
    if active is not None and how == "finish_previous":
        active.finish()

    disabled = mode == "disabled"
    path = SKIP_INSERT if disabled else os.fspath(db) if db is not None else os.environ.get("XETRACK_DB") or DEFAULT_DB
    rows = step = 0
    if track_id is not None and not disabled:
        found = _previous(path, table, track_id)
        if found is None and resume == "must":
            raise Error(f"resume='must': no run {track_id!r} in table {table!r} of {path!r}")
        if found is not None and resume in (None, False, "never"):
            raise Error(
                f"run {track_id!r} is already in table {table!r} of {path!r}: pass resume='allow' to go on "
                "with it, or another id"
            )
        if found is not None:
            rows, step = found
    made = Config(allow_val_change=bool(allow_val_change))
    made._set(values, True)
    fields = {"group": group, "notes": notes, "job_type": job_type, "entity": entity}
    run = Run(
        db=path,
        table=table,
        track_id=track_id,
        name=name,
        tags=tag_list,
        fields=fields,
        config=made,
        mode=mode,
        start_step=step,
        start_rows=rows,
        dir=None if dir is None else os.fspath(dir),
    )
    process.started(run, make_current=how != "create_new" or process.current() is None)
    if save_code:
        run.save_code()
    return run


def _active(call: str) -> Run:
    run = process.current()
    if run is None:
        raise Error(f"Call wandb.init() before {call}")
    return run


def log(data: Any, step: int | None = None, commit: bool | None = None, sync: Any = None) -> None:
    """``run.log`` on the global run (see :meth:`Run.log`)."""
    _active("wandb.log()").log(data, step=step, commit=commit)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """Finish the global run, if any (``failed`` for a non-zero ``exit_code``)."""
    run = process.current()
    if run is not None:
        run.finish(exit_code)


def define_metric(
    name: str,
    step_metric: str | None = None,
    step_sync: bool | None = None,
    hidden: bool | None = None,
    summary: str | None = None,
    goal: str | None = None,
    overwrite: bool | None = None,
) -> MetricDefinition:
    """``run.define_metric`` on the global run."""
    run = _active("wandb.define_metric()")
    return run.define_metric(name, step_metric, step_sync, hidden, summary, goal, overwrite)


def save(glob_str: str | os.PathLike[str], base_path: str | None = None, policy: str = "live") -> list[str]:
    """``run.save`` on the global run: local files kept as artifacts."""
    return _active("wandb.save()").save(glob_str, base_path, policy)


def log_artifact(
    artifact_or_path: Any, name: str | None = None, type: str | None = None, aliases: Any = None, tags: Any = None
) -> str:
    """``run.log_artifact`` on the global run: a local file or folder kept as an artifact."""
    return _active("wandb.log_artifact()").log_artifact(artifact_or_path, name, type, aliases, tags)


def login(*args: Any, **kwargs: Any) -> bool:
    """Nothing to log in to: returns True and stores nothing (the key is not kept)."""
    return True


class _Namespace:
    """``wandb.plot``: every function raises :class:`Unsupported`."""

    def __init__(self, name: str, why: str) -> None:
        self._name, self._why = name, why

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _unsupported_function(name, self._why, owner=f"wandb.{self._name}")


plot = _Namespace("plot", MEDIA)
globals().update({name: _unsupported_class(name, why) for name, why in CLASSES.items()})
globals().update({name: _unsupported_function(name, why) for name, why in FUNCTIONS.items()})


def __getattr__(name: str) -> Any:
    # wandb.run, wandb.config and wandb.summary follow the global run.
    if name == "run":
        return process.current()
    if name in ("config", "summary"):
        run = process.current()
        return PreInit(f"wandb.{name}") if run is None else getattr(run, name)
    raise AttributeError(
        f"module 'xetrack.wandb' has no attribute {name!r}: it offers init, log, config, summary, run, "
        "finish, define_metric, save, log_artifact, login and Settings (docs/integrations.md)"
    )


__all__ = [
    "init",
    "log",
    "finish",
    "define_metric",
    "save",
    "log_artifact",
    "login",
    "Settings",
    "Run",
    "Config",
    "Error",
    "ConfigError",
    "Unsupported",
    "plot",
    *CLASSES,
    *FUNCTIONS,
]
