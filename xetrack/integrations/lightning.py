"""PyTorch Lightning: ``Trainer(logger=XetrackLogger("exp.db"))`` writes the training as one run.

- ``log_hyperparams`` (``self.save_hyperparameters()``): the run's params, nested dicts and
  Namespaces flattened with ``_``; rows logged before them get them too.
- ``log_metrics``: one row per call, with ``step`` (Lightning's global step) and the
  metrics Lightning hands over (``epoch`` among them during training).
- ``finalize``: the run ``finished``; ``failed`` with the error's text when training raised,
  ``killed`` on a KeyboardInterrupt.
- ``log_model=True``: the best and the last checkpoint of each ``ModelCheckpoint`` stored as
  artifacts when training ends; ``log_model="all"``: every checkpoint as it is saved.

Only the process of rank zero logs, as with Lightning's own loggers. Lightning is imported
with this module (``lightning.pytorch``, or ``pytorch_lightning`` when only that is
installed); a missing one raises an ImportError naming ``pip install 'xetrack[lightning]'``.
"""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .common import RunSettings, flatten, loggable, require

WHAT = "xetrack.integrations.lightning"


def _framework(module: str) -> ModuleType:
    """``lightning.pytorch.<module>``, else ``pytorch_lightning.<module>`` (the same API)."""
    try:
        return require(f"lightning.pytorch.{module}", "lightning", WHAT)
    except ImportError as missing:
        try:
            return require(f"pytorch_lightning.{module}", "lightning", WHAT)
        except ImportError:
            raise missing from None


_loggers = _framework("loggers.logger")
_Logger: Any = _loggers.Logger  # Any: mypy reads no Lightning types through require()
rank_zero_only = _framework("utilities.rank_zero").rank_zero_only
rank_zero_experiment = _loggers.rank_zero_experiment

#: The artifact type checkpoints are stored with, under ``checkpoints/<file name>``.
CHECKPOINT = "checkpoint"
#: The tag naming the artifact of the best checkpoint (``log_model``), when the
#: ``ModelCheckpoint`` has a ``monitor``.
BEST_CHECKPOINT_TAG = "best_checkpoint"
# Lightning's finalize statuses; anything else (an "aborted", an "interrupted") is "killed".
_FINISHED = ("success", "finished")
_FAILED = ("failed",)


def _as_dict(params: Any) -> dict[Any, Any]:
    """Lightning's hyperparameters (a dict, an AttributeDict, a Namespace, nested ones) as
    nested plain dicts."""
    if isinstance(params, Namespace):
        params = vars(params)
    if not isinstance(params, Mapping):
        raise TypeError(f"log_hyperparams takes a dict or an argparse.Namespace, got {type(params).__name__}")
    return {key: _as_dict(value) if isinstance(value, (Mapping, Namespace)) else value for key, value in params.items()}


class XetrackLogger(_Logger):
    """A Lightning logger writing one xetrack run: ``Trainer(logger=XetrackLogger(db))``.

    Args:
        db: the database, as :class:`~xetrack.Tracker` takes it (a path, or a
            ``postgresql://`` URL).
        table: the experiment table (Lightning's ``name`` of the logger).
        params: params of the run, besides the hyperparameters Lightning logs.
        track_id: the run's id (Lightning's ``version``); a new one when None, chosen
            now, so that every process of a training knows it.
        run_name, tags, engine: as for :class:`~xetrack.Tracker`.
        log_model: ``True``: store the best and the last checkpoint of each
            ``ModelCheckpoint`` as artifacts when training ends (finished or failed);
            ``"all"``: every checkpoint file as soon as it is saved; ``False``: none.
        log_system_metrics, system_interval: handed to the Tracker.
    """

    def __init__(
        self,
        db: str | os.PathLike[str],
        *,
        table: str = "default",
        params: Mapping[Any, Any] | None = None,
        track_id: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        engine: str = "sqlite",
        log_model: bool | str = False,
        log_system_metrics: bool = False,
        system_interval: float = 10.0,
    ) -> None:
        super().__init__()
        if not (isinstance(log_model, bool) or log_model == "all"):
            raise ValueError(f"{WHAT}: log_model must be True, False or 'all', got {log_model!r}")
        settings = RunSettings.of(WHAT, locals(), without=("log_model",))  # True, False or "all": ours
        if track_id is None:
            from ..tracker import Tracker

            track_id = Tracker.generate_track_id()
        self._run = settings.run(track_id=track_id)
        self.log_model = log_model
        # path -> mtime (ns) of the checkpoint files stored, so a file is stored once a version.
        self._stored: dict[str, int] = {}
        # Each ModelCheckpoint that saved: [best path, last path, whether it monitors].
        self._checkpoints: dict[int, list[Any]] = {}
        self._ended_in: int | None = None  # the process that ended the run last

    # -- what Lightning asks of a logger ------------------------------------------
    @property
    def name(self) -> str:
        """The experiment: the run's table."""
        return self._run.table

    @property
    def version(self) -> str:
        """The run's ``track_id``."""
        assert self._run.track_id is not None
        return self._run.track_id

    @property
    def save_dir(self) -> str | None:
        """None: the run is in the database, not in a folder of logs (checkpoints go to
        ``default_root_dir/<table>/<track_id>/checkpoints``)."""
        return None

    @property
    def db(self) -> str:
        """Where the run is written."""
        return str(self._run.db)

    @property
    def track_id(self) -> str:
        """The run's id, the same as ``version``."""
        return self.version

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The run's :class:`~xetrack.Tracker` (opened, and the run marked ``running``, on
        first use); on other ranks than zero, an object that does nothing."""
        return self._run.tracker

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, metrics: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """The hyperparameters as the run's params, flattened with ``_``; ``metrics`` (as
        TensorBoardLogger takes them), one row."""
        if args or kwargs:
            given = ", ".join([*(repr(a) for a in args), *kwargs])
            raise TypeError(f"XetrackLogger.log_hyperparams takes params and metrics=, not {given}")
        if params is not None:
            flat = flatten(_as_dict(params))
            self._run.set_params({key: loggable(value) for key, value in flat.items()})
        if metrics is not None:
            self.log_metrics(metrics)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """One row: the metrics and ``step``."""
        if not isinstance(metrics, Mapping):
            raise TypeError(f"log_metrics takes a dict of metrics, got {type(metrics).__name__}")
        self._run.log(metrics, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Note the callback's best and last checkpoints (``log_model="all"``: store them now)."""
        if not self.log_model:
            return
        best = getattr(checkpoint_callback, "best_model_path", "") or ""
        last = getattr(checkpoint_callback, "last_model_path", "") or ""
        monitors = getattr(checkpoint_callback, "monitor", None) is not None
        self._checkpoints[id(checkpoint_callback)] = [best, last, monitors]
        if self.log_model == "all":
            paths = [*getattr(checkpoint_callback, "best_k_models", {}), best, last]
            self._store_checkpoints([p for p in paths if p])

    def save(self) -> None:
        """Nothing to do: each row is in the database once ``log_metrics`` returns."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the run: ``success`` -> ``finished``; ``failed`` -> ``failed`` with the
        error Lightning is handling (``killed`` for a KeyboardInterrupt); anything else ->
        ``killed``.

        A process that never opened the run (the launcher of ``ddp_spawn``) leaves a
        successful run to its worker, and marks a failed one ``failed`` by its id. A run
        ended here is left as it is until it is used again: a ``trainer.test`` after the
        fit logs to the same run, opens it again and ends it again.
        """
        opened_here = self._run.started
        if not opened_here and (status in _FINISHED or self._ended_in == os.getpid()):
            return
        try:
            if opened_here and self.log_model:
                self._store_final_checkpoints()
        finally:
            if status in _FINISHED:
                self._run.end("finished")
            elif status in _FAILED:
                error = sys.exc_info()[1]
                if error is not None:
                    self._run.fail(error)
                else:
                    self._run.end("failed", f"Lightning ended the training with status {status!r}")
            else:
                self._run.end("killed", f"Lightning ended the training with status {status!r}")
            self._ended_in = os.getpid()
            self._run = self._run.fresh()  # a later stage (a test after the fit) continues this run

    # -- checkpoints ----------------------------------------------------------------
    def _store_final_checkpoints(self) -> None:
        for best, last, monitors in self._checkpoints.values():
            self._store_checkpoints([p for p in dict.fromkeys((best, last)) if p])
            if best and monitors and best in self._stored:
                self._run.tracker.set_tags({BEST_CHECKPOINT_TAG: self._artifact_name(best)})

    @staticmethod
    def _artifact_name(path: str) -> str:
        return f"checkpoints/{os.path.basename(path)}"

    def _store_checkpoints(self, paths: list[str]) -> None:
        for path in paths:
            try:
                mtime = os.stat(path).st_mtime_ns
            except FileNotFoundError:  # removed by the callback (no longer in its top k)
                continue
            if self._stored.get(path) != mtime:
                self._run.log_artifact(path, name=self._artifact_name(path), type=CHECKPOINT)
                self._stored[path] = mtime

    # -- processes ------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """A copy sent to another process (``ddp_spawn``'s workers) opens the run there."""
        state = dict(self.__dict__)
        state["_run"] = self._run.fresh()  # the same id, params and settings, not opened
        return state


__all__ = ["XetrackLogger", "CHECKPOINT", "BEST_CHECKPOINT_TAG"]
