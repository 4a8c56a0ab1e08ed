"""LightGBM: ``lgb.train(params, train_set, valid_sets=[...], callbacks=[xetrack_callback("exp.db")])``
writes one run per training; so do ``LGBMClassifier().fit(X, y, eval_set=[...], callbacks=[...])``
(any estimator of LightGBM's sklearn API) and ``lgb.cv(..., callbacks=[...])``.

- params, at the first iteration: LightGBM's params of the training (``env.params``: those
  handed to ``lgb.train`` or set on the estimator, with ``num_iterations``; ``nfold`` too
  under ``lgb.cv``);
- one row per iteration: ``step`` (the iteration's 0-based index, LightGBM's
  ``env.iteration``) and each valid set's metrics, named ``<set>-<metric>``
  (``valid_0-binary_logloss``, which the Tracker's key rules store as
  ``valid_0_binary_logloss``); under ``lgb.cv``, ``<set>-<metric>-mean`` and ``-stdv``, as
  in its result's keys;
- the run ``finished`` after the last iteration (``env.iteration + 1 == env.end_iteration``)
  or when early stopping ends the training, then with ``best_iteration`` (as
  ``booster.best_iteration`` numbers it, from 1) as a param; with ``log_model=True`` the
  booster as the artifact ``model.txt`` (LightGBM's ``save_model``: up to the best
  iteration when early stopping ended the training), one ``model_fold<i>.txt`` per fold
  under ``lgb.cv``.

LightGBM ends an early-stopped training with an exception (``EarlyStopException``) that
another callback raises and ``lgb.train`` catches, and calls no callback when training
raises. So this callback runs last in each iteration, and at the first one it wraps the
training's other callbacks (in the lists ``lgb.train``/``lgb.cv`` made for this training
alone; the callbacks you passed are left as they are): their ``EarlyStopException`` logs
that iteration's row and marks the run ``finished``; any other error of theirs marks it
``failed`` with the error, then goes on unchanged. An error raised in LightGBM itself
(``booster.update``, a custom metric) is marked ``failed`` with the error when training
runs inside ``with xetrack_callback(db) as cb:``; otherwise as soon as the failed training's
booster is garbage-collected, when the same callback starts another training, or at the
latest when the process exits (with the uncaught error's text).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping
from typing import Any

from .common import RunSettings, TrainingOwner, TrainingRun, loggable, require
from .watch import calling_frame, watch_unfinished

WHAT = "xetrack.integrations.lightgbm"
lightgbm = require("lightgbm", "lightgbm", WHAT)

#: The name of the booster's artifact (``log_model=True``).
MODEL_ARTIFACT = "model.txt"
#: This callback's place among a training's callbacks: after LightGBM's own (its
#: ``log_evaluation`` is 10, ``record_evaluation`` 20, ``early_stopping`` 30) and the
#: ones passed without an order (which LightGBM numbers below 0).
ORDER = 1_000_000
# The lists lgb.train and lgb.cv call their callbacks from, each iteration.
_CALLBACK_LISTS = ("callbacks_before_iter", "callbacks_after_iter")


class _Watched:
    """Another callback of the training, called through this wrapper so that its
    ``EarlyStopException`` and its errors reach the run before going on."""

    def __init__(self, callback: Any, owner: XetrackCallback) -> None:
        self.callback = callback
        self.owner = owner
        self.order = getattr(callback, "order", 0)
        self.before_iteration = getattr(callback, "before_iteration", False)

    def __call__(self, env: Any) -> Any:
        try:
            return self.callback(env)
        except lightgbm.callback.EarlyStopException as stop:
            self.owner._early_stopped(env, stop)
            raise
        except BaseException as exc:
            self.owner._fail(exc)
            raise


class XetrackCallback(TrainingOwner):
    """A LightGBM callback that logs each training as one xetrack run:
    ``lgb.train(..., callbacks=[xetrack_callback(db)])``.

    Args:
        db: the database, as for :class:`~xetrack.Tracker` (a path or a ``postgresql://`` URL).
        table: the experiment table.
        params: more params for the run. A key LightGBM also sets must hold the same value.
        track_id: the run's id; by default each training gets a new one.
        run_name: the run's display name.
        tags: tags of the run.
        engine: ``'sqlite'`` or ``'duckdb'``, as for a Tracker.
        log_model: store the trained booster (``save_model``) as the artifact ``model.txt``.
        log_system_metrics: the run also samples the machine (see the Tracker).
        system_interval: seconds between those samples.

    One training at a time per callback; trainings one after another each get their run.
    Used as a context manager around training, it marks the run failed with any error.
    """

    before_iteration = False  # called after each iteration, with its evaluation results

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
        self.settings = RunSettings.of(WHAT, locals())
        # In the instance's own dict: LightGBM gives a callback without one an order of its
        # place in the list (cb.__dict__.setdefault), which would put it before the others.
        self.order = ORDER
        self._reset()

    def _reset(self) -> None:
        self.run: TrainingRun | None = None  # the run of the current (or last) training
        self._model: Any = None  # the current training's booster (weakly)
        self._release: Any = None  # stops watching that booster
        self._logged = -1  # the last iteration logged
        self._begin_iteration = 0
        self._end_iteration: Any = None

    def __getstate__(self) -> dict[str, Any]:  # a copy (pickling) is the settings
        skip = {"run", "_model", "_release", "_logged", "_begin_iteration", "_end_iteration"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # -- the run of one training (active, _fail, _guarded... : TrainingOwner's) --------------
    def _current(self, model: Any) -> bool:
        return self._model is not None and self._model() is model

    def _unfinished(self) -> str:
        done = self._logged + 1 - self._begin_iteration
        total = "" if self._end_iteration is None else f" of {self._end_iteration - self._begin_iteration}"
        return (
            f"LightGBM training stopped after {done}{total} iterations without reaching its end "
            f"(an error: train inside `with xetrack_callback(...) as cb:` to record it)"
        )

    # -- LightGBM's call, after each iteration ---------------------------------------------
    def __call__(self, env: Any) -> None:
        if not self._current(env.model):
            self._begin(env)
        if not self.active:
            return
        self._guarded(self._log_iteration, env)
        if env.iteration + 1 >= env.end_iteration:
            self._guarded(self._finish, env, None)

    def _begin(self, env: Any) -> None:
        import weakref

        if self.active:  # the last training raised and its booster is still around
            self._fail(self._unfinished() + "; a new training began with the same callback")
        self.run, self._release, self._logged = None, None, env.iteration - 1
        self._model = weakref.ref(env.model)
        self._begin_iteration, self._end_iteration = env.begin_iteration, env.end_iteration
        frame = calling_frame((lightgbm.train, lightgbm.cv))
        found = {str(k): loggable(v) for k, v in (env.params or {}).items() if v is not None}
        if frame is not None and "nfold" in frame.f_locals:  # lgb.cv
            found.setdefault("nfold", frame.f_locals["nfold"])
        self.run = self.settings.run(self.settings.with_found(found, "LightGBM's"))
        self.run.tracker  # noqa: B018 - opened now
        self._release = watch_unfinished(self.run, env.model, self._unfinished)
        if not self._watch_callbacks(frame):
            warnings.warn(
                f"{WHAT}: this training's other callbacks could not be found (not lgb.train or lgb.cv, or "
                f"LightGBM {lightgbm.__version__} changed): early stopping will not mark the run finished",
                stacklevel=3,
            )

    def _watch_callbacks(self, frame: Any) -> bool:
        """Wrap the training's other callbacks in the lists ``lgb.train``/``lgb.cv`` call."""
        lists = [frame.f_locals.get(name) for name in _CALLBACK_LISTS] if frame is not None else []
        if not lists or not all(isinstance(callbacks, list) for callbacks in lists):
            return False
        for callbacks in lists:
            for i, callback in enumerate(callbacks):
                if callback is not self and not isinstance(callback, _Watched):
                    callbacks[i] = _Watched(callback, self)
        return True

    def _log_iteration(self, env: Any) -> None:
        assert self.run is not None
        if env.iteration <= self._logged:
            return
        cv = isinstance(env.model, lightgbm.CVBooster)
        values: dict[str, Any] = {}
        for result in env.evaluation_result_list or ():
            data, metric, value = result[0], result[1], result[2]
            if cv:  # the mean and standard deviation over the folds
                values[f"{data}-{metric}-mean"] = value
                values[f"{data}-{metric}-stdv"] = result[4] if len(result) > 4 else None
            else:
                values[f"{data}-{metric}"] = value
        self.run.log(values, step=env.iteration)
        self._logged = env.iteration

    def _early_stopped(self, env: Any, stop: Any) -> None:
        """Another callback (LightGBM's ``early_stopping``) ended the training."""
        if self.active and self._current(env.model):
            self._guarded(self._log_iteration, env)
            best = int(stop.best_iteration) + 1
            self._guarded(self._finish, env, best)

    def _finish(self, env: Any, best_iteration: int | None) -> None:
        assert self.run is not None
        if best_iteration is not None:
            self.run.set_params({"best_iteration": best_iteration})
        if self.log_model:
            model = env.model
            boosters = list(model.boosters) if isinstance(model, lightgbm.CVBooster) else [model]
            with tempfile.TemporaryDirectory(prefix="xetrack-lightgbm-") as folder:
                for i, booster in enumerate(boosters):
                    name = MODEL_ARTIFACT if len(boosters) == 1 else f"model_fold{i}.txt"
                    path = os.path.join(folder, name)
                    booster.save_model(path, num_iteration=best_iteration)
                    self.run.log_artifact(path, name=name, type="model")
        self._stop_watching()
        self.run.end("finished")


#: The one line: ``lgb.train(..., callbacks=[xetrack_callback(db)])`` (the callback's class
#: under the name LightGBM's own callbacks go by, ``lgb.early_stopping(...)``).
xetrack_callback = XetrackCallback


__all__ = ["xetrack_callback", "XetrackCallback", "MODEL_ARTIFACT", "ORDER"]
