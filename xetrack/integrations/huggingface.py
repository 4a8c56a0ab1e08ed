"""Hugging Face ``transformers``: ``Trainer(..., callbacks=[XetrackCallback("exp.db")])``.

Each ``trainer.train()`` writes one run (docs/integrations.md):

- params: the training arguments that shape a run (``lr``, epochs, batch sizes, seed,
  warmup, weight decay, max steps, gradient accumulation...) and the model's class, type,
  name and size, and the ``params`` given here (one the Trainer sets to another value is
  refused: :class:`ParamClash`);
- a row for every dict the Trainer logs (``on_log``: the training loss, ``eval_*``,
  ``train_runtime``...), with ``step`` (the global step) and ``epoch``; the metrics of an
  evaluation reach ``on_log`` and ``on_evaluate``: they are one row, not two;
- the run marked ``finished`` at ``on_train_end``; ``failed`` (``killed`` for Ctrl-C) with
  the error when ``train()`` raises, recorded by a wrapper of the trainer's ``train``
  (transformers calls no callback on an exception; see :meth:`XetrackCallback.watch`);
- with ``log_model=True``, the final model (``save_pretrained``) as artifacts ``model/...``.

Only the process of rank zero (``state.is_world_process_zero``) writes.
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
import tempfile
import time
import warnings
import weakref
from collections.abc import Mapping
from types import FrameType
from typing import Any

from .common import EPOCH, STEP, RunSettings, TrainingRun, WithRunSettings, flatten, plain, require

WHAT = "xetrack.integrations.huggingface"
transformers = require("transformers", "huggingface", WHAT)
_TrainerCallback: Any = transformers.TrainerCallback

#: TrainingArguments kept as params under their own name (those a version lacks are skipped).
ARGUMENTS = (
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "seed",
    "warmup_steps",
    "warmup_ratio",
    "weight_decay",
    "lr_scheduler_type",
    "optim",
    "max_grad_norm",
    "fp16",
    "bf16",
)
#: ``TrainingArguments.learning_rate`` is the param ``lr``: the rows' ``learning_rate`` is
#: the scheduler's value at each step, which the Trainer logs under that name.
LR = "lr"
#: The artifacts of ``log_model=True`` are named ``model/<file>``.
MODEL_ARTIFACT = "model"
#: Columns the Trainer logs at every step (and the step and epoch): not a param's name.
LOGGED = (STEP, EPOCH, "loss", "grad_norm", "learning_rate")
_PLAIN = frozenset((float, int, str, bool))
#: The default of ``XetrackCallback.flush_seconds``.
FLUSH_SECONDS = 0.1
_NOT_ENDED = "train() stopped before on_train_end: it raised or was interrupted, and the error did not reach xetrack"


def training_params(args: Any, state: Any = None, model: Any = None) -> dict[str, Any]:
    """The params of a run: ``args`` (TrainingArguments), the values the Trainer worked out
    for this training (``state``: max steps, epochs, batch size) and the model's identity."""
    out: dict[str, Any] = {}
    if getattr(args, "learning_rate", None) is not None:
        out[LR] = args.learning_rate
    for name in ARGUMENTS:
        value = getattr(args, name, None)
        if value is not None:
            out[name] = _param(value)
    if state is not None:
        if getattr(state, "max_steps", 0):
            out["max_steps"] = state.max_steps  # computed from the epochs when max_steps is -1
        if getattr(state, "num_train_epochs", 0):
            out["num_train_epochs"] = state.num_train_epochs
        if getattr(state, "train_batch_size", None):
            out["train_batch_size"] = state.train_batch_size
    world_size = getattr(args, "world_size", None)
    if world_size is not None:
        out["world_size"] = world_size
    if model is not None:
        out.update(_model_params(model))
    return out


def _param(value: Any) -> Any:
    value = getattr(value, "value", value)  # an enum (SchedulerType.LINEAR): its text
    value = plain(value)
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def _model_params(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model_class": type(model).__name__}
    config = getattr(model, "config", None)
    if config is not None:
        if getattr(config, "model_type", None):
            out["model_type"] = str(config.model_type)
        name = getattr(config, "_name_or_path", None) or getattr(config, "name_or_path", None)
        if name:
            out["model_name"] = str(name)
    count = getattr(model, "num_parameters", None)
    try:
        if callable(count):
            out["num_parameters"] = int(count())
        elif hasattr(model, "parameters"):
            out["num_parameters"] = sum(int(p.numel()) for p in model.parameters())
    except (TypeError, ValueError, RuntimeError, AttributeError):
        pass  # a model that cannot count itself: no column rather than a failed training
    return out


def _row_of(values: Mapping[str, Any], step: int, epoch: Any) -> dict[str, Any]:
    """A logged dict as a row: its values made plain (None left out), ``step`` and ``epoch``."""
    row: dict[str, Any] = {}
    for key, value in values.items():  # present(), with the plain numbers the Trainer logs let through as they are
        if type(value) not in _PLAIN:
            value = plain(value)
        if value is not None:
            row[key] = value
    row[STEP] = step
    if epoch is not None:
        row[EPOCH] = plain(epoch)
    return row


def _trainer_of(frame: FrameType, callback: Any) -> Any:
    """The ``self`` of ``frame`` when it is a Trainer whose callbacks hold ``callback``."""
    owner = frame.f_locals.get("self")
    handler = getattr(owner, "callback_handler", None)
    if handler is not None and any(cb is callback for cb in getattr(handler, "callbacks", ())):
        return owner
    return None


def _calling_trainer(callback: Any, depth: int = 12) -> Any:
    """The Trainer whose call reached ``callback``, found up the stack, else None."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(depth):
        if frame is None:
            return None
        trainer = _trainer_of(frame, callback)
        if trainer is not None:
            return trainer
        frame = frame.f_back
    return None


def _raised_in_training(error: Any, callback: Any) -> bool:
    """Whether ``error`` went up through a Trainer that ``callback`` is one of the callbacks of."""
    tb = getattr(error, "__traceback__", None)
    while tb is not None:
        if _trainer_of(tb.tb_frame, callback) is not None:
            return True
        tb = tb.tb_next
    return False


# The callbacks with a run still open: at exit, those runs are marked failed (the rows
# already written stay).
_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()
_AT_EXIT: list[bool] = []


def _end_open_runs() -> None:
    error = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)  # the uncaught exception
    for callback in list(_OPEN):
        if isinstance(error, BaseException) and _raised_in_training(error, callback):
            callback._ended_by(error)
        else:
            callback._ended_by(_NOT_ENDED + " (the process exited)")


class ParamClash(ValueError):
    """A param given to the callback that the Trainer sets to another value."""


class XetrackCallback(_TrainerCallback, WithRunSettings):
    """A ``transformers.TrainerCallback`` that writes each ``train()`` as a run of ``db``.

    >>> trainer = Trainer(model, args, train_dataset=data, callbacks=[XetrackCallback("exp.db")])  # doctest: +SKIP
    >>> trainer.train()  # doctest: +SKIP
    >>> Reader("exp.db").runs()  # doctest: +SKIP

    Args:
        db: the database, as for :class:`~xetrack.Tracker` (a path or a
            ``postgresql://`` URL).
        table, track_id, run_name, tags, engine: as for a Tracker. ``run_name`` defaults to
            ``TrainingArguments.run_name``; with ``track_id`` every ``train()`` continues
            that one run.
        params: more params for every run (nested mappings flattened with ``_``). One
            that the Trainer sets to another value (``seed``...) raises
            :class:`ParamClash` when training starts; the names of the columns logged at
            every step (``loss``, ``learning_rate``, ``step``...) are refused here.
        log_model: at the end of training, store the model (``save_pretrained``, with the
            tokenizer or processor when the Trainer has one) as artifacts ``model/...``.
        log_system_metrics, system_interval: handed to the Tracker.
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
        log_model: bool = False,
        log_system_metrics: bool = False,
        system_interval: float = 10.0,
    ) -> None:
        from ..store import ENGINES

        # Checked before the settings: the Trainer's callback also refuses a wrong db or
        # engine now, and names the value of params or tags that is not a mapping.
        if not isinstance(db, (str, os.PathLike)):
            raise TypeError(f"db must be a path or a URL, got {type(db).__name__}: {db!r}")
        if engine not in ENGINES:
            raise ValueError(f"Unknown engine {engine!r}: choose one of {', '.join(map(repr, ENGINES))}")
        for name, value in (("params", params), ("tags", tags)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{name} must be a mapping (a dict), got {type(value).__name__}: {value!r}")
        self.settings = RunSettings.of(WHAT, locals())
        self.params = flatten(self.settings.params)
        taken = [key for key in self.params if key in LOGGED]
        if taken:
            raise ValueError(
                f"params {taken} would hide the column(s) the Trainer logs at every step: give them other names"
            )
        #: The run of the current (or last) ``train()``; None before the first.
        self.run: TrainingRun | None = None
        self._last_id: str | None = None  # the run rows logged outside train() go to
        self._last_params: dict[str, Any] = {}
        self._begun = 0  # runs begun: the wrapper of train() tells whether its call began one
        self._logged: Any = None  # the dict on_log was last given, and at which step
        self._logged_step = -1
        self._rows = 0  # rows the current run logged
        self._state: Any = None  # the TrainerState of the current train()
        #: Rows wait at most this long (seconds) to be written, then go in one
        #: transaction (see docs/integrations.md); 0 writes each row as it comes.
        self.flush_seconds = FLUSH_SECONDS
        self._pending: list[dict[str, Any]] = []
        self._flushed_at = 0.0
        self._watched: weakref.WeakSet[Any] = weakref.WeakSet()

    # -- the exception hook transformers does not have ------------------------------
    def watch(self, trainer: Any) -> Any:
        """Call ``trainer.train`` through a wrapper that, when it raises, marks the run
        ``failed`` (``killed`` for a KeyboardInterrupt) with the error, then re-raises.

        Done by itself for a callback given to ``Trainer(callbacks=[...])``; a callback
        added later (``trainer.add_callback``) is watched from its first ``train()`` on.
        Returns ``trainer``.
        """
        if trainer in self._watched:
            return trainer
        train = trainer.train

        @functools.wraps(train)
        def watched_train(*args: Any, **kwargs: Any) -> Any:
            begun = self._begun
            try:
                return train(*args, **kwargs)
            except BaseException as exc:
                try:
                    self._train_raised(exc, trainer, began=self._begun != begun)
                except Exception as failed:  # noqa: BLE001 - the training's own error goes on up
                    warnings.warn(f"xetrack could not record the failed run: {failed!r}", stacklevel=2)
                raise

        trainer.train = watched_train
        self._watched.add(trainer)
        return trainer

    def _train_raised(self, exc: BaseException, trainer: Any, began: bool) -> None:
        if isinstance(exc, ParamClash):
            return  # refused before anything was written
        run = self.run
        if began and run is not None:
            if run.started:
                self._fail(run, exc)
            else:  # ended at on_train_end, and train() raised after (an Optuna prune...)
                status = "pruned" if type(exc).__name__ == "TrialPruned" else None
                self._mark(run.track_id, status, exc)
        elif not began and getattr(trainer.args, "process_index", 0) == 0:
            # Raised before on_train_begin (a wrong checkpoint path, a bad dataset...): the
            # attempt is a run of its own, failed.
            self._rows, self._state = 0, trainer.state
            self._fail(self._new_run(trainer.args, None, getattr(trainer, "model", None)), exc)

    def _fail(self, run: TrainingRun, error: BaseException | str) -> None:
        """End ``run`` failed; a run that logged no row gets one, its params and step, so
        that ``runs()`` (which lists the runs of the rows) shows it with its error."""
        _OPEN.discard(self)
        self._flush()
        if not self._rows:
            run.log({}, getattr(self._state, "global_step", 0))
        run.fail(error)

    def _mark(self, track_id: str | None, status: str | None, exc: BaseException) -> None:
        from ..tracker import Tracker

        if track_id is None:
            return
        tracker = Tracker(self.db, track_id=track_id, table=self.table, engine=self.engine)
        try:
            if status is None:
                status = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
            tracker.end(status, f"{type(exc).__name__}: {exc}")
        finally:
            tracker.close()

    def _ended_by(self, error: BaseException | str) -> None:
        """Mark a run still open failed: train() did not reach on_train_end."""
        _OPEN.discard(self)
        run = self.run
        if run is not None and run.started:
            self._fail(run, error)

    # -- the run ------------------------------------------------------------------
    def _new_run(self, args: Any, state: Any, model: Any) -> TrainingRun:
        run = self.settings.run(self.params, run_name=self.run_name or getattr(args, "run_name", None))
        found = flatten(training_params(args, state, model))
        clash = {k: (self.params[k], v) for k, v in found.items() if k in self.params and self.params[k] != v}
        if clash:
            raise ParamClash(
                "params given to XetrackCallback differ from the Trainer's "
                + ", ".join(f"{k}: yours {mine!r}, the Trainer's {theirs!r}" for k, (mine, theirs) in clash.items())
                + ": give yours another name (or the Trainer the same value)"
            )
        run.set_params({k: v for k, v in found.items() if k not in self.params})
        run.tracker  # noqa: B018 - opened now: the run is ``running`` from the start of training
        self._last_id, self._last_params = run.track_id, dict(run.params)
        return run

    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        trainer = _calling_trainer(self)
        if trainer is not None:
            self.watch(trainer)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        if self.run is not None and self.run.started:  # the last train() raised unseen
            self._ended_by(_NOT_ENDED + " (train() began again)")
        trainer = _calling_trainer(self)
        if trainer is not None:
            self.watch(trainer)  # when added late: for the next train(), this one runs already
        self.run = self._new_run(args, state, model)
        self._begun += 1
        self._logged, self._logged_step = None, -1
        self._rows, self._state = 0, state
        self._pending, self._flushed_at = [], 0.0  # the first row is written at once
        if not _AT_EXIT:
            atexit.register(_end_open_runs)
            _AT_EXIT.append(True)
        _OPEN.add(self)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        self._logged, self._logged_step = logs, state.global_step
        self._row(logs, args, state, kwargs.get("model"))

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        if metrics and state.is_world_process_zero and not self._seen(metrics, state):
            self._row(metrics, args, state, kwargs.get("model"))

    def on_predict(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        if metrics and state.is_world_process_zero and not self._seen(metrics, state):
            self._row(metrics, args, state, kwargs.get("model"))

    def _seen(self, metrics: Mapping[str, Any], state: Any) -> bool:
        """Whether on_log had these metrics already (the Trainer hands an evaluation's dict
        to on_log, then the same dict to on_evaluate)."""
        last = self._logged
        if last is None or state.global_step != self._logged_step:
            return False
        if metrics is last:
            return True
        return all(k in last and last[k] == v for k, v in metrics.items())

    def _row(self, values: Mapping[str, Any], args: Any, state: Any, model: Any) -> None:
        epoch = None if EPOCH in values else state.epoch
        run = self.run
        if run is not None and run.started:
            self._pending.append(_row_of(values, state.global_step, epoch))
            self._rows += 1
            if time.monotonic() - self._flushed_at >= self.flush_seconds:
                self._flush()
        else:
            self._row_outside(values, args, state, model, epoch)

    def _row_outside(self, values: Mapping[str, Any], args: Any, state: Any, model: Any, epoch: Any) -> None:
        """A row logged outside train() (``trainer.evaluate()``, ``.predict()``, ``.log()``):
        into the run of the last train(), its status left as it is; before any train(),
        into a run of its own, marked finished."""
        if self._last_id is None:
            run = self._new_run(args, None, model)
            run.log(values, state.global_step, epoch=epoch)
            run.end()
            return
        from ..tracker import Tracker

        tracker = Tracker(
            self.db, params=self._last_params, track_id=self._last_id, table=self.table, engine=self.engine
        )
        try:
            tracker.log(_row_of(values, state.global_step, epoch))
        finally:
            tracker.close()

    def on_train_end(
        self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None, **kwargs: Any
    ) -> None:
        run = self.run
        if not state.is_world_process_zero or run is None or not run.started:
            return
        self._flush()
        if self.log_model and model is not None:
            save_model(run, model, processing_class or kwargs.get("tokenizer"))
        _OPEN.discard(self)
        run.end("finished")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._pending and time.monotonic() - self._flushed_at >= self.flush_seconds:
            self._flush()

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush()  # a checkpoint: the rows up to it are in the database too

    def _flush(self) -> None:
        """Write the rows waiting, in one transaction."""
        run = self.run
        if self._pending and run is not None and run.started:
            rows, self._pending = self._pending, []
            run.tracker.log_batch(rows)
        self._flushed_at = time.monotonic()


def save_model(run: TrainingRun, model: Any, processing_class: Any = None) -> str:
    """Store ``model`` with ``run`` as artifacts ``model/<file>``: ``save_pretrained``'s
    files (and the tokenizer's or processor's), or for a plain ``torch.nn.Module`` its
    ``state_dict`` as ``model/pytorch_model.bin``. Returns the hashes, comma-separated."""
    with tempfile.TemporaryDirectory(prefix="xetrack-model-") as folder:
        target = os.path.join(folder, MODEL_ARTIFACT)
        inner = model if hasattr(model, "save_pretrained") else getattr(model, "module", model)
        if hasattr(inner, "save_pretrained"):
            inner.save_pretrained(target)
        else:
            import torch

            os.makedirs(target)
            torch.save(inner.state_dict(), os.path.join(target, "pytorch_model.bin"))
        if processing_class is not None and hasattr(processing_class, "save_pretrained"):
            processing_class.save_pretrained(target)
        return run.log_artifact(target, name=MODEL_ARTIFACT)


__all__ = [
    "XetrackCallback",
    "ParamClash",
    "training_params",
    "save_model",
    "ARGUMENTS",
    "LR",
    "LOGGED",
    "MODEL_ARTIFACT",
    "FLUSH_SECONDS",
]
