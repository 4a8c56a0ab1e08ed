"""A W&B run written as one xetrack run: what ``wandb.init`` returns.

- ``config`` -> the run's params (on every row, also rows logged before a key was set);
- ``log`` -> rows. W&B's step: each committed ``log`` is one row with ``step`` (W&B's
  ``_step``: 0, 1, 2... when ``step=`` is not given); ``commit=False``, or ``step=`` with
  no ``commit=True``, gathers the values of one step into one row, written when a later
  step (or ``commit=True``, or ``finish``) comes. A step lower than the current one is
  refused (W&B drops such data with a warning);
- ``summary['key'] = v`` -> the param ``summary_key``; ``define_metric`` summaries ->
  ``summary_<key>_<kind>`` params when the run ends;
- ``save``/``log_artifact`` (local files), ``run.dir``'s files at the end -> artifacts;
- ``finish``/``with``/the process's end -> the run ``finished``, or ``failed`` with the
  error (``killed`` for Ctrl-C).
"""

from __future__ import annotations

import glob
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from ..integrations.common import STEP, TrainingRun, flatten, plain
from ..store import IN_MEMORY, SKIP_INSERT, is_url, shown
from . import process
from .errors import ARTIFACTS, FUNCTIONS, MEDIA, Error, refuse, unsupported_function
from .values import Config, MetricDefinition, Metrics, Summary, params_of

#: The run's modes, as W&B names them (``dryrun`` and ``run`` are W&B's old names).
MODES = ("online", "offline", "disabled", "dryrun", "run")
POLICIES = ("live", "now", "end")


def status_of(error: BaseException) -> tuple[str, str | None]:
    """How an exception ends a run: ``killed`` for Ctrl-C, ``finished`` for
    ``sys.exit(0)``, else ``failed``; with the error's text."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if isinstance(error, KeyboardInterrupt):
        return "killed", text
    if isinstance(error, SystemExit) and error.code in (None, 0):
        return "finished", None
    return "failed", text


def labels(tags: tuple[str, ...], **named: str | None) -> dict[str, str]:
    """W&B's tags and named fields as xetrack tags: each tag ``t`` -> ``t = 'true'``;
    ``group``, ``notes``, ``job_type``, ``entity`` -> tags of those names."""
    out = dict.fromkeys(tags, "true")
    for key, value in named.items():
        if value is None:
            continue
        if key in out:
            raise ValueError(f"tag {key!r} is also the name of the run's {key}: rename the tag")
        out[key] = value
    return out


def tag_tuple(tags: Any) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
        raise TypeError(f"tags must be a list of non-empty str, got {tags!r}")
    return tuple(dict.fromkeys(tags))


class Run:
    """One W&B run; made by :func:`xetrack.wandb.init`."""

    def __init__(
        self,
        *,
        db: str,
        table: str,
        track_id: str | None,
        name: str | None,
        tags: tuple[str, ...],
        fields: Mapping[str, str | None],
        config: Config,
        mode: str,
        start_step: int = 0,
        start_rows: int = 0,
        dir: str | None = None,
    ) -> None:
        self._db, self._table, self._mode = db, table, mode
        self._name, self._tags, self._fields = name, tags, dict(fields)
        self.config = config
        self._metrics = Metrics()
        self.summary = Summary(self._metrics, self._set_params)
        self._training = TrainingRun(
            db,
            table=table,
            params=params_of(config),
            track_id=track_id,
            run_name=name,
            tags=labels(tags, **self._fields),
        )
        self._training.tracker  # noqa: B018 - opened now: the run is `running` from init, as in W&B
        config._listen(self._set_params)
        self._pid = os.getpid()
        self._step, self._rows = start_step, start_rows
        self._pending: dict[str, Any] = {}
        self._lock = threading.RLock()  # W&B's log may be called from several threads
        self._finished = False
        self._saves: list[tuple[str, str | None]] = []
        self._saved: dict[str, tuple[int, int]] = {}
        self._dir_parent, self._dir = dir, ""

    # -- who the run is -------------------------------------------------------------
    @property
    def id(self) -> str:
        """The run's ``track_id``."""
        return str(self._training.track_id)

    @property
    def name(self) -> str:
        """The run's name (``run_name``), or its id when it has none."""
        return self._name or self.id

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise TypeError(f"run.name must be a non-empty str, got {value!r}")
        self._check_open("run.name = ...")
        if not self.disabled:
            from ..tracker import Tracker

            Tracker(self._db, table=self._table, track_id=self.id, run_name=value).close()
        self._name = value

    @property
    def project(self) -> str:
        """The table the run is in (the project's name made a table name)."""
        return self._table

    @property
    def tags(self) -> tuple[str, ...]:
        return self._tags

    @tags.setter
    def tags(self, value: Any) -> None:
        new = tag_tuple(value)
        self._check_open("run.tags = ...")
        if not self.disabled:
            gone = [t for t in self._tags if t not in new and t not in self._fields]
            self._training.tracker.set_tags(labels(new, **self._fields))
            if gone:
                from ..reader import Reader

                reader = Reader(self._db, table=self._table)
                try:
                    for tag in gone:
                        reader.delete_tag(self.id, tag)
                finally:
                    reader.close()
        self._tags = new

    @property
    def group(self) -> str | None:
        """The run's group (the tag ``group``)."""
        return self._fields.get("group")

    @property
    def job_type(self) -> str | None:
        """The run's job type (the tag ``job_type``)."""
        return self._fields.get("job_type")

    @property
    def notes(self) -> str | None:
        """The run's notes (the tag ``notes``)."""
        return self._fields.get("notes")

    @property
    def entity(self) -> str | None:
        """W&B's entity, when given (the tag ``entity``)."""
        return self._fields.get("entity")

    @property
    def url(self) -> str | None:
        """Where the run is: the database file's absolute path (a PostgreSQL URL without
        its password); None when the run stores nothing (disabled)."""
        return self.where(self._db)

    @staticmethod
    def where(db: str) -> str | None:
        """A database as ``url`` shows it."""
        if db in (IN_MEMORY, SKIP_INSERT):
            return None
        return str(shown(db)) if is_url(db) else os.path.abspath(db)

    def get_url(self) -> str | None:
        return self.url

    @property
    def step(self) -> int:
        """The current step: the one the next committed ``log`` writes."""
        return self._step

    @property
    def disabled(self) -> bool:
        return self._mode == "disabled"

    @property
    def offline(self) -> bool:
        return self._mode in ("offline", "dryrun")

    @property
    def dir(self) -> str:
        """A folder of this run: files written there are kept as artifacts when the run ends."""
        if not self._dir:
            self._dir = tempfile.mkdtemp(prefix=f"xetrack-wandb-{self.id}-", dir=self._dir_parent)
        return self._dir

    @property
    def tracker(self) -> Any:
        """The run's :class:`xetrack.Tracker` (for what W&B has no call for)."""
        self._check_open("run.tracker")
        return self._training.tracker

    def _check_open(self, call: str) -> None:
        if self._finished:
            raise Error(f"{call}: run {self.id!r} is finished")

    def _set_params(self, params: dict[str, Any]) -> None:
        self._check_open("setting config or summary")
        self._training.set_params(params)

    # -- rows -----------------------------------------------------------------------
    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None, sync: Any = None
    ) -> None:
        """Log ``data`` at the current step (see the module's docstring for W&B's steps)."""
        with self._lock:
            self._log(data, step, commit)

    def _log(self, data: Mapping[str, Any], step: Any, commit: bool | None) -> None:
        self._check_open("wandb.log")
        if not isinstance(data, Mapping):
            raise TypeError(f"wandb.log takes a dict, got {type(data).__name__}")
        row = _row(data)
        if step is not None:
            step = _step_of(step)
            if step < self._step:
                raise ValueError(
                    f"wandb.log(step={step}): the run is at step {self._step}; steps only go up "
                    "(W&B would drop this data with a warning)"
                )
            if step > self._step:
                self._commit()
                self._step = step
            self._pending.update(row)
            if commit:
                self._commit()
            return
        self._pending.update(row)
        if commit is None or commit:
            self._commit()

    def _commit(self) -> None:
        row, self._pending = self._pending, {}
        if row:
            self._metrics.sync(row, self.summary.last)
            self._training.log({**row, STEP: row.get(STEP, self._step)})
            self.summary.observe(row)
            self._rows += 1
        self._step += 1

    def define_metric(
        self,
        name: str,
        step_metric: str | None = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: str | None = None,
        goal: str | None = None,
        overwrite: bool | None = None,
    ) -> MetricDefinition:
        """W&B's ``define_metric``: ``step_metric`` (with ``step_sync``), ``summary`` and
        ``goal``; ``hidden=True`` is refused."""
        self._check_open("define_metric")
        return self._metrics.define(name, step_metric, step_sync, hidden, summary, goal, overwrite)

    # -- files ----------------------------------------------------------------------
    def save(self, glob_str: str | os.PathLike[str], base_path: str | None = None, policy: str = "live") -> list[str]:
        """Keep local files matching ``glob_str`` as artifacts: ``now``; ``live``: now and
        again at the end if they changed or appeared; ``end``: at the end. Returns the
        names stored now (relative to ``base_path``, else the files' names)."""
        self._check_open("wandb.save")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if not isinstance(glob_str, (str, os.PathLike)):
            raise TypeError(f"wandb.save takes a path or a glob, got {type(glob_str).__name__}")
        pattern = os.fspath(glob_str)
        if "://" in pattern:
            refuse(f"wandb.save({pattern!r})", "only local files are kept")
        base = None if base_path is None else os.fspath(base_path)
        if base is not None and not os.path.isabs(pattern):
            pattern = os.path.join(base, pattern)
        stored = [] if policy == "end" else self._store(pattern, base)
        if policy == "now" and not stored:
            raise FileNotFoundError(f"wandb.save({os.fspath(glob_str)!r}): no file matches {pattern!r}")
        if policy != "now":
            self._saves.append((pattern, base))
        return stored

    def _store(self, pattern: str, base: str | None) -> list[str]:
        names = []
        for path in sorted(glob.glob(pattern, recursive=True)):
            if not os.path.isfile(path):
                continue
            name = (os.path.relpath(path, base) if base else os.path.basename(path)).replace(os.sep, "/")
            stat = os.stat(path)
            mark, key = (stat.st_mtime_ns, stat.st_size), os.path.abspath(path)
            if self._saved.get(key) != mark:
                self._training.log_artifact(path, name=name)
                self._saved[key] = mark
            names.append(name)
        return names

    def log_artifact(
        self,
        artifact_or_path: Any,
        name: str | None = None,
        type: str | None = None,
        aliases: Any = None,
        tags: Any = None,
    ) -> str:
        """Keep a local file or folder as an artifact (``name``, ``type`` as given); a
        ``wandb.Artifact``, ``aliases`` and ``tags`` are refused. Returns the content hash."""
        self._check_open("wandb.log_artifact")
        if aliases or tags:
            refuse("wandb.log_artifact(aliases=..., tags=...)", ARTIFACTS)
        if not isinstance(artifact_or_path, (str, os.PathLike)):
            refuse(f"wandb.log_artifact of a {type_name(artifact_or_path)}", ARTIFACTS)
        path = os.fspath(artifact_or_path)
        if "://" in path:
            refuse(f"wandb.log_artifact({path!r})", "only local files are kept")
        if not os.path.exists(path):
            raise FileNotFoundError(f"wandb.log_artifact: no file or folder {path!r}")
        return self._training.log_artifact(path, name=name, type=type)

    def _store_at_end(self) -> None:
        for pattern, base in self._saves:
            if not self._store(pattern, base):
                message = f"wandb.save: no file matched {pattern!r} when the run ended; nothing was stored"
                warnings.warn(message, stacklevel=3)
        if self._dir and os.path.isdir(self._dir):
            self._store(os.path.join(self._dir, "**", "*"), self._dir)

    def save_code(self) -> None:
        """Keep the main script (``sys.argv[0]``) as the artifact of type ``code``."""
        script = sys.argv[0] if sys.argv else ""
        if not script or not os.path.isfile(script):
            warnings.warn("save_code=True: no script file to keep (an interactive session)", stacklevel=3)
            return
        self._training.log_artifact(script, name=os.path.basename(script), type="code")

    # -- the end --------------------------------------------------------------------
    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Write the pending step, keep the saved files, and mark the run ``finished``
        (``failed`` for a non-zero ``exit_code``). A second call does nothing."""
        if exit_code is not None and (not isinstance(exit_code, int) or isinstance(exit_code, bool)):
            raise TypeError(f"exit_code must be an int, got {exit_code!r}")
        self._end(*(("finished", None) if not exit_code else ("failed", f"exit code {exit_code}")))

    def _end(self, status: str, error: str | None) -> None:
        with self._lock:
            self._end_once(status, error)

    def _end_once(self, status: str, error: str | None) -> None:
        if self._finished:
            return
        problem: BaseException | None = None
        try:
            if self._pending:
                self._commit()
            self._store_at_end()
            defined = self.summary.defined()
            if defined:
                self._training.set_params(defined)
            if self._rows == 0:
                self._training.tracker.log({})  # a run that logged nothing still has a row: its config
        except Exception as exc:  # noqa: BLE001 - the run is ended all the same, then the error raised
            problem = exc
            if status == "finished":
                status, error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self._finished = True
            process.ended(self)
            self._training.end(status, error)
        if problem is not None:
            raise problem

    def end_at_exit(self, error: BaseException | None) -> None:
        """Called when the process ends with this run unfinished (see ``process``)."""
        if self._finished or os.getpid() != self._pid:
            return
        self._end(*(status_of(error) if error is not None else ("finished", None)))

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        if error is None:
            self.finish()
            return
        try:
            self._end(*status_of(error))
        except Exception as end_error:  # noqa: BLE001 - the block's own error goes on
            warnings.warn(f"xetrack.wandb: could not end run {self.id!r}: {end_error}", stacklevel=2)

    def __getattr__(self, name: str) -> Any:
        if name in FUNCTIONS:
            return unsupported_function(name, FUNCTIONS[name], owner="run")
        raise AttributeError(f"'Run' object has no attribute {name!r} ({type(self).__module__})")

    def __repr__(self) -> str:
        return f"<xetrack.wandb Run {self.id!r} in {self._table!r} of {self.url!r}>"


def type_name(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _row(data: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"wandb.log keys must be non-empty str, got {key!r}")
        if type(value).__module__.split(".")[0] == "wandb":
            refuse(f"wandb.log of a {type_name(value)} ({key!r})", MEDIA)
        if isinstance(value, Mapping):
            _row(value)
    return flatten(data)


def _step_of(step: Any) -> int:
    value = plain(step)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"step must be an int >= 0, got {step!r}")
    return value


__all__ = ["Run", "MODES", "status_of", "labels", "tag_tuple"]
