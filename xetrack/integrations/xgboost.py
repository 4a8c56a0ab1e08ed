"""XGBoost: ``xgb.train(params, dtrain, evals=[...], callbacks=[XetrackCallback("exp.db")])``
writes one run per training; so do ``XGBClassifier(callbacks=[...]).fit(X, y, eval_set=[...])``
(any estimator of XGBoost's sklearn API) and ``xgb.cv(..., callbacks=[...])``.

- params, at ``before_training``: the params handed to ``xgb.train`` (the sklearn API hands
  it the estimator's own: those set, None ones left out), ``num_boost_round`` (``nfold``
  too under ``xgb.cv``), and, after the first round, from the booster's config
  (``save_config()``) those left to XGBoost's defaults: ``objective``, ``booster``,
  ``eta``, ``max_depth`` and ``eval_metric``;
- one row per boosting round: ``step`` (the round's 0-based index, XGBoost's ``epoch``) and
  each eval set's metrics, named ``<set>-<metric>`` as in XGBoost's ``evals_result``
  (the Tracker's key rules store ``validation_0-logloss`` as ``validation_0_logloss``);
  under ``xgb.cv``, ``<set>-<metric>-mean`` and ``-std``, as in its result's columns;
- at ``after_training``: ``best_iteration`` and ``best_score`` as params when early
  stopping set them, the booster as the artifact ``model.json`` with ``log_model=True``
  (one ``model_fold<i>.json`` per fold under ``xgb.cv``), and the run ``finished``.

XGBoost calls no callback when training raises: ``after_training`` is simply never
reached, so the run is never marked finished. It is marked ``failed``: at once, with the
error, when the error comes from this callback or when training runs inside
``with XetrackCallback(db) as cb:``; otherwise as soon as the failed training's booster is
garbage-collected (in CPython, when the error is handled: the booster lives on only in the
error's traceback), when the same callback starts another training, or at the latest when
the process exits (with the uncaught error's text).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from .common import RunSettings, TrainingOwner, TrainingRun, loggable, require
from .watch import calling_frame, watch_unfinished

WHAT = "xetrack.integrations.xgboost"
xgboost = require("xgboost", "xgboost", WHAT)
_TrainingCallback: Any = xgboost.callback.TrainingCallback

#: The name of the booster's artifact (``log_model=True``).
MODEL_ARTIFACT = "model.json"
#: What the booster's config adds when the params handed to XGBoost did not set it:
#: name -> (where in ``save_config()``'s JSON, the aliases a user may have set it by).
CONFIG_PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "objective": (("learner", "learner_train_param", "objective"), ()),
    "booster": (("learner", "learner_train_param", "booster"), ()),
    "eta": (("learner", "gradient_booster", "tree_train_param", "eta"), ("learning_rate",)),
    "max_depth": (("learner", "gradient_booster", "tree_train_param", "max_depth"), ()),
    "eval_metric": (("learner", "metrics"), ()),
}


def _number(text: str, digits: int | None = None) -> Any:
    """XGBoost's text of a number as the number (``digits`` significant ones for a
    float32 such as ``"0.300000012"``); other text as it is."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return float(f"{value:.{digits}g}") if digits else value


def _config_value(node: Any) -> Any:
    """A value of XGBoost's config JSON, where numbers are text and floats are float32:
    ``"3"`` -> 3, ``"0.300000012"`` -> 0.3; the list of metrics -> their names."""
    if isinstance(node, list):
        names = [m.get("name") if isinstance(m, Mapping) else m for m in node]
        return names[0] if len(names) == 1 else names
    return _number(node, digits=7) if isinstance(node, str) else loggable(node)


def config_params(booster: Any) -> dict[str, Any]:
    """The params of :data:`CONFIG_PARAMS` as ``booster.save_config()`` holds them."""
    config = json.loads(booster.save_config())
    found: dict[str, Any] = {}
    for name, (path, _aliases) in CONFIG_PARAMS.items():
        node: Any = config
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None and node != []:
            found[name] = _config_value(node)
    return found


def _as_dict(params: Any) -> dict[str, Any]:
    """XGBoost's params: a dict, or a list of pairs where a key may repeat (eval_metric)."""
    if isinstance(params, Mapping):
        return dict(params)
    out: dict[str, Any] = {}
    for key, value in params or ():
        if key in out:
            out[key] = [*(out[key] if isinstance(out[key], list) else [out[key]]), value]
        else:
            out[key] = value
    return out


def _boosters(model: Any) -> list[Any]:
    """The boosters of a training: the one of ``xgb.train``, one per fold under ``xgb.cv``."""
    folds = getattr(model, "cvfolds", None)
    return [fold.bst for fold in folds] if folds is not None else [model]


class XetrackCallback(_TrainingCallback, TrainingOwner):
    """Log an XGBoost training as one xetrack run: ``xgb.train(..., callbacks=[XetrackCallback(db)])``.

    Args:
        db: the database, as for :class:`~xetrack.Tracker` (a path or a ``postgresql://`` URL).
        table: the experiment table.
        params: more params for the run. A key XGBoost also sets must hold the same value.
        track_id: the run's id; by default each training gets a new one.
        run_name: the run's display name.
        tags: tags of the run.
        engine: ``'sqlite'`` or ``'duckdb'``, as for a Tracker.
        log_model: store the trained booster (``save_model``) as the artifact ``model.json``.
        log_system_metrics: the run also samples the machine (see the Tracker).
        system_interval: seconds between those samples.

    One training at a time per callback; trainings one after another each get their run.
    Copies (the sklearn API's ``clone``, pickling) carry the settings, not the run. Used as
    a context manager around training, it marks the run failed with the error at once.
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
        super().__init__()
        self.settings = RunSettings.of(WHAT, locals())
        self._reset()

    def _reset(self) -> None:
        self.run: TrainingRun | None = None  # the run of the current (or last) training
        self._release: Any = None  # stops watching the booster of the current training
        self._rounds = 0  # rounds logged in the current training
        self._total: Any = None  # num_boost_round, when known
        self._configured = False  # the booster's config read (after the first round)

    # A copy (sklearn's clone deep-copies callbacks; pickling an estimator) is the settings.
    def __getstate__(self) -> dict[str, Any]:
        skip = {"run", "_release", "_rounds", "_total", "_configured"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # -- the run of one training (active, _fail... : TrainingOwner's) -------------------------
    def _unfinished(self) -> str:
        total = "" if self._total is None else f" of {self._total}"
        return (
            f"XGBoost training stopped after {self._rounds}{total} rounds without reaching after_training "
            f"(an error: train inside `with XetrackCallback(...) as cb:` to record it)"
        )

    # -- XGBoost's hooks -----------------------------------------------------------------
    def before_training(self, model: Any) -> Any:
        if self.active:  # the last training raised and its booster is still around
            self._fail(self._unfinished() + "; a new training began with the same callback")
        self._rounds, self._total, self._configured = 0, None, False
        params = self.settings.with_found(self._passed_params(), "the values XGBoost was given")
        self.run = self.settings.run(params)
        self.run.tracker  # noqa: B018 - opened now: the run is running from the training's start
        self._release = watch_unfinished(self.run, model, self._unfinished)
        return model

    def _passed_params(self) -> dict[str, Any]:
        """What ``xgb.train``/``xgb.cv`` was handed, read from its frame (XGBoost hands its
        callbacks the booster alone): the params, ``num_boost_round``, ``nfold``."""
        frame = calling_frame((xgboost.train, xgboost.cv))
        if frame is None:  # called by another loop than XGBoost's: the config will tell
            return {}
        local = frame.f_locals
        found = {str(k): loggable(v) for k, v in _as_dict(local.get("params")).items() if v is not None}
        self._total = local.get("num_boost_round")
        extra = {"num_boost_round": self._total}
        if "nfold" in local:  # xgb.cv
            extra["nfold"] = local.get("nfold")
        found.update((k, v) for k, v in extra.items() if v is not None and k not in found)
        return found

    def after_iteration(self, model: Any, epoch: int, evals_log: Mapping[str, Any]) -> bool:
        if self.active:
            self._guarded(self._log_round, model, epoch, evals_log)
        return False

    def _log_round(self, model: Any, epoch: int, evals_log: Mapping[str, Any]) -> None:
        assert self.run is not None
        if not self._configured:  # after the first update: the booster is configured
            self._configured = True
            passed = set(self.run.params)
            self.run.set_params(
                {
                    name: value
                    for name, value in config_params(_boosters(model)[0]).items()
                    if name not in passed and not passed & set(CONFIG_PARAMS[name][1])
                }
            )
        values: dict[str, Any] = {}
        for data, metrics in evals_log.items():
            for metric, history in metrics.items():
                if not history:
                    continue
                last = history[-1]
                if isinstance(last, tuple):  # xgb.cv: (mean, std) over the folds
                    values[f"{data}-{metric}-mean"], values[f"{data}-{metric}-std"] = last
                else:
                    values[f"{data}-{metric}"] = last
        self.run.log(values, step=epoch)
        self._rounds += 1

    def after_training(self, model: Any) -> Any:
        if self.active:
            self._guarded(self._finish, model)
        return model

    def _finish(self, model: Any) -> None:
        assert self.run is not None
        best: dict[str, Any] = {}
        for name in ("best_iteration", "best_score"):
            value = model.attr(name) if callable(getattr(model, "attr", None)) else None
            if value is not None:
                best[name] = _number(value)
        if best:
            self.run.set_params(best)
        if self.log_model:
            boosters = _boosters(model)
            with tempfile.TemporaryDirectory(prefix="xetrack-xgboost-") as folder:
                for i, booster in enumerate(boosters):
                    name = MODEL_ARTIFACT if len(boosters) == 1 else f"model_fold{i}.json"
                    path = os.path.join(folder, name)
                    booster.save_model(path)
                    self.run.log_artifact(path, name=name, type="model")
        self._stop_watching()
        self.run.end("finished")


__all__ = ["XetrackCallback", "MODEL_ARTIFACT", "CONFIG_PARAMS", "config_params"]
