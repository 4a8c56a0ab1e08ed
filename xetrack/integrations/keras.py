"""Keras 3: ``model.fit(x, y, callbacks=[XetrackCallback("exp.db")])`` writes one run per fit.

Any backend (JAX, TensorFlow, PyTorch): the callback uses Keras' own API only.

- params, at ``on_train_begin``: the optimizer's config as ``optimizer_<key>``
  (``optimizer_name``, its class's name in lower case such as ``adam``;
  ``optimizer_learning_rate``...) and what ``fit`` hands its callbacks
  in ``self.params`` (``epochs``; ``steps``, the batches of an epoch), ``verbose`` aside;
- one row per epoch: ``epoch`` (0-based, as ``History.epoch``) and every value of the
  epoch's logs (``loss``, ``val_loss``, ``accuracy``...), as ``History.history`` holds them;
- with ``log_batches=True``, one row per training batch as well: ``step`` (the batch's
  0-based index in this fit), ``epoch``, and the batch's logs as ``batch_<name>``; the
  epoch rows then get the ``step`` of their epoch's last batch;
- with ``log_model=True``, the trained model (``model.save``) as the artifact
  ``model.keras``;
- the run ``finished`` at ``on_train_end``, ``failed`` (``killed`` on Ctrl-C) with the
  error when ``fit`` raises.

Keras calls no callback when ``fit`` raises. So, while ``fit`` runs, the model's step
functions (``model.train_function``, ``model.test_function``) are wrapped: an error raised
in a step (the model, the loss, the optimizer) marks the run at once, and goes on
unchanged. An error raised elsewhere in ``fit`` (the data pipeline, another callback)
is marked by ``with XetrackCallback(db) as cb:`` around ``fit``; without it, by the next
``fit`` with the same callback, or when the process ends (with the uncaught error).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from importlib.util import find_spec
from typing import Any

from .common import EPOCH, RunSettings, TrainingOwner, TrainingRun, flatten, present, require
from .watch import watch_unfinished

WHAT = "xetrack.integrations.keras"
#: The prefix of the batch rows' values (``batch_loss``), apart from the epoch rows' ``loss``.
BATCH_PREFIX = "batch_"
#: The name of the model artifact ``log_model=True`` stores.
MODEL_ARTIFACT = "model.keras"


def _import_keras() -> Any:
    if find_spec("keras") is not None:
        try:
            import keras
        except ImportError as exc:  # keras is there, its backend is not
            backend = os.environ.get("KERAS_BACKEND", "tensorflow (the default)")
            raise ImportError(
                f"{WHAT}: keras is installed but could not load its backend {backend}: install it, or set "
                f"KERAS_BACKEND to an installed one (jax, tensorflow, torch) before importing keras ({exc})"
            ) from exc
        return keras
    return require("keras", "keras", WHAT)


keras = _import_keras()
_Callback: Any = keras.callbacks.Callback

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _Run(TrainingRun):
    """A fit's run: a failed one keeps its error's text without the terminal colours
    Keras puts in the messages of errors raised inside a layer."""

    def error_text(self, error: BaseException) -> str:
        return _ANSI.sub("", super().error_text(error))


class XetrackCallback(_Callback, TrainingOwner):
    """Log a Keras ``fit`` as one xetrack run: ``model.fit(..., callbacks=[XetrackCallback(db)])``.

    Args:
        db: the database, as for :class:`~xetrack.Tracker` (a path or a ``postgresql://`` URL).
        table: the experiment table.
        params: more params for the run (``{"batch_size": 32}``: Keras does not hand its
            callbacks the batch size).
        track_id: the run's id; by default each fit gets a new one. With an id, a second
            fit continues the same run.
        run_name: the run's display name.
        tags: tags of the run.
        engine: ``'sqlite'`` or ``'duckdb'``, as for a Tracker.
        log_batches: also one row per training batch (``step``, ``epoch``, ``batch_<name>``).
        log_model: store the trained model (``model.save``) as the artifact ``model.keras``.
        log_system_metrics: the run also samples the machine (see the Tracker).
        system_interval: seconds between those samples.

    Used as a context manager around ``fit``, it also marks the run failed when ``fit``
    raises outside the model's steps (its data, another callback).
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
        log_batches: bool = False,
        log_model: bool = False,
        log_system_metrics: bool = False,
        system_interval: float = 10.0,
    ) -> None:
        super().__init__()
        log_model = bool(log_model)
        self.settings = RunSettings.of(WHAT, locals())
        self.log_batches = bool(log_batches)
        self.run: TrainingRun | None = None  # the run of the current (or last) fit
        self._release: Any = None  # stops watching for the process's exit during a fit
        self._epoch = 0
        self._batches = 0
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # step function name -> (original, wrapper)

    # -- the run of one fit (active, _guarded, with: TrainingOwner's) --------------------
    def _fail(self, error: BaseException | str) -> None:
        """Mark the open run failed (killed on Ctrl-C) and let the model's steps go."""
        self._unwrap()
        super()._fail(error)

    def _end(self) -> None:
        run = self.run
        self._unwrap()
        self._stop_watching()
        if run is not None:
            run.end("finished")

    # -- the model's steps ---------------------------------------------------------------
    def _wrap(self, name: str) -> None:
        step = getattr(self.model, name, None)
        if step is None or name in self._wrapped:
            return

        def watched(*args: Any, **kwargs: Any) -> Any:
            try:
                return step(*args, **kwargs)
            except BaseException as exc:
                self._fail(exc)
                raise

        setattr(self.model, name, watched)
        self._wrapped[name] = (step, watched)

    def _unwrap(self) -> None:
        model = getattr(self, "model", None)
        for name, (step, watched) in list(self._wrapped.items()):
            if model is not None and getattr(model, name, None) is watched:
                setattr(model, name, step)
        self._wrapped.clear()

    # -- Keras' hooks --------------------------------------------------------------------
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.active:  # the last fit raised outside the steps: Keras never said
            self._fail("fit ended without on_train_end (an error outside the model's steps)")
        self.run = self.settings.run(run_class=_Run)
        self._epoch, self._batches = 0, 0
        self._guarded(self._begin)

    def _begin(self) -> None:
        assert self.run is not None
        found: dict[str, Any] = {}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            config = dict(optimizer.get_config())
            # The class's name: the config's is the instance's, "adam_1" for a process's second Adam.
            config["name"] = type(optimizer).__name__.lower()
            found.update(flatten({"optimizer": config}))
        found.update((k, v) for k, v in (self.params or {}).items() if k != "verbose")
        clash = sorted(k for k in found if k in self.run.params)
        if clash:
            raise ValueError(f"{WHAT}: params {clash} are set by Keras; name yours otherwise")
        self.run.set_params(dict(present(found)))
        self.run.tracker  # noqa: B018 - opened now: the run is running from the fit's start
        # Failed when the process ends with the fit open (with the uncaught error, if any).
        self._release = watch_unfinished(self.run, None, lambda: "the process ended while fit was running")
        self._wrap("train_function")

    def on_test_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.active:  # validation inside fit: its steps are watched too
            self._wrap("test_function")

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._epoch = int(epoch)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.log_batches and self.active:
            self._guarded(self._log_batch, logs)
        self._batches += 1

    def _log_batch(self, logs: Mapping[str, Any] | None) -> None:
        assert self.run is not None
        values = {f"{BATCH_PREFIX}{k}": v for k, v in (logs or {}).items()}
        self.run.log(values, step=self._batches, **{EPOCH: self._epoch})

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.active:
            self._guarded(self._log_epoch, epoch, logs)

    def _log_epoch(self, epoch: int, logs: Mapping[str, Any] | None) -> None:
        assert self.run is not None
        values = dict(logs or {})
        if EPOCH in values:
            raise ValueError(f"{WHAT}: Keras logged a metric named {EPOCH!r}, the column this callback writes")
        # With batch rows, the epoch's row is at the step of its last batch: one step axis.
        step = self._batches - 1 if self.log_batches and self._batches else None
        self.run.log({EPOCH: int(epoch), **values}, step=step)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.run is None or not self.active:
            return
        self._guarded(self._finish)

    def _finish(self) -> None:
        assert self.run is not None
        if self.log_model:
            with tempfile.TemporaryDirectory(prefix="xetrack-keras-") as folder:
                path = os.path.join(folder, MODEL_ARTIFACT)
                self.model.save(path)
                self.run.log_artifact(path, name=MODEL_ARTIFACT, type="model")
        self._end()


__all__ = ["XetrackCallback", "BATCH_PREFIX", "MODEL_ARTIFACT"]
