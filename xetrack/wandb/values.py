"""A run's ``config``, ``summary`` and metric definitions (``define_metric``), W&B's way.

- :class:`Config`: the run's params. Attribute and item access; a new key (or a changed
  one, with ``allow_val_change``) is handed to the run, which sets it as a param on every
  row. Nested dicts become ``outer_inner`` params; a value that is no number, text, list
  or dict is kept as its text (W&B keeps config as JSON).
- :class:`Metrics`: what ``define_metric`` set: a step metric synced into rows, and which
  summary (``min``, ``max``, ``mean``, ``best``, ``last``, ``none``) a key keeps.
- :class:`Summary`: each key's last committed value, or what ``define_metric`` asked for,
  or what the script set (``summary['best'] = 0.9``, handed to the run as the param
  ``summary_best``).
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from ..integrations.common import flatten, plain
from ..schema import coerce
from .errors import ConfigError, refuse

#: The prefix of the params a summary is stored as: ``summary['best']`` -> ``summary_best``.
SUMMARY_PREFIX = "summary"
SUMMARY_KINDS = ("min", "max", "mean", "best", "last", "none")
GOALS = ("minimize", "maximize")


def mapping_of(values: Any, what: str) -> Mapping[str, Any]:
    """A dict, an ``argparse.Namespace`` or absl flags as a mapping; anything else refused."""
    if values is None:
        return {}
    if isinstance(values, Mapping):
        return values
    if isinstance(values, argparse.Namespace):
        return vars(values)
    flags = getattr(values, "flag_values_dict", None)  # absl.flags.FLAGS
    if callable(flags):
        return dict(flags())
    raise TypeError(f"{what} takes a dict or an argparse.Namespace, got {type(values).__name__}")


def param_value(value: Any) -> Any:
    """A config value as a param: plain values and lists/dicts as they are (lists are kept
    as JSON text), anything else (a ``torch.device``, a class) as its text."""
    value = plain(value)
    try:
        coerce(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def params_of(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings flattened with ``_``; values made :func:`param_value`."""
    return {k: param_value(v) for k, v in flatten(values, prefix).items()}


def same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays: no single truth value
        return a is b


class Config(MutableMapping[str, Any]):
    """``run.config``: ``config.lr``, ``config['lr']``, ``config.update({...})``, ``dict(config)``."""

    def __init__(self, allow_val_change: bool = False) -> None:
        object.__setattr__(self, "_items", {})
        object.__setattr__(self, "_allow", bool(allow_val_change))
        object.__setattr__(self, "_on_change", None)

    def _listen(self, on_change: Callable[[dict[str, Any]], None]) -> None:
        object.__setattr__(self, "_on_change", on_change)

    def _set(self, values: Mapping[str, Any], allow_val_change: bool | None, only_missing: bool = False) -> None:
        allow = self._allow if allow_val_change is None else bool(allow_val_change)
        new: dict[str, Any] = {}
        for key, value in values.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"config keys must be non-empty str, got {key!r}")
            if key in self._items:
                if only_missing or same(self._items[key], value):
                    continue
                if not allow:
                    raise ConfigError(
                        f"config[{key!r}] is {self._items[key]!r}: to change it to {value!r}, "
                        "pass allow_val_change=True (config.update(..., allow_val_change=True) or wandb.init)"
                    )
            new[key] = value
        if not new:
            return
        params = params_of(new)
        if self._on_change is not None:
            self._on_change(params)  # first: a refused change leaves the config as it was
        self._items.update(new)

    def update(self, values: Any = None, allow_val_change: bool | None = None) -> None:  # type: ignore[override]
        """Add keys (a dict or an ``argparse.Namespace``); changing a key's value needs
        ``allow_val_change=True``, as in W&B."""
        self._set(mapping_of(values, "config.update"), allow_val_change)

    def setdefaults(self, values: Any) -> None:
        """Set the keys that are not set yet; the others stay as they are."""
        self._set(mapping_of(values, "config.setdefaults"), None, only_missing=True)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._set({key: value}, None)

    def __delitem__(self, key: str) -> None:
        refuse("del config[key]", "a param stays on the rows already logged")

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._items[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}; keys: {sorted(self._items)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __repr__(self) -> str:
        return f"Config({self._items!r})"


@dataclasses.dataclass
class MetricDefinition:
    """What one ``define_metric`` call set (W&B returns such an object too)."""

    name: str
    step_metric: str | None = None
    step_sync: bool | None = None
    summary: tuple[str, ...] | None = None
    goal: str | None = None


class Metrics:
    """The definitions of ``define_metric``, by name or glob (``val/*``, ``*``)."""

    def __init__(self) -> None:
        self.definitions: dict[str, MetricDefinition] = {}

    def define(
        self,
        name: Any,
        step_metric: Any = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: Any = None,
        goal: Any = None,
        overwrite: bool | None = None,
    ) -> MetricDefinition:
        if not isinstance(name, str) or not name:
            raise TypeError(f"define_metric needs a metric name (a non-empty str), got {name!r}")
        if hidden:
            refuse("define_metric(hidden=True)", "xetrack's dashboard shows every column")
        if step_metric is not None and (not isinstance(step_metric, str) or not step_metric):
            raise TypeError(f"step_metric must be a metric name (a non-empty str), got {step_metric!r}")
        kinds = None
        if summary is not None:
            if not isinstance(summary, str):
                raise TypeError(f"summary must be a str such as 'max' or 'min,max', got {summary!r}")
            kinds = tuple(k.strip() for k in summary.split(",") if k.strip())
            bad = [k for k in kinds if k not in SUMMARY_KINDS]
            if bad or not kinds:
                raise ValueError(f"summary {summary!r}: each kind must be one of {', '.join(SUMMARY_KINDS)}")
        if goal is not None and goal not in GOALS:
            raise ValueError(f"goal must be 'minimize' or 'maximize', got {goal!r}")
        old = self.definitions.get(name)
        if old is None or overwrite:
            old = MetricDefinition(name)
        new = MetricDefinition(
            name,
            step_metric if step_metric is not None else old.step_metric,
            bool(step_sync) if step_sync is not None else old.step_sync,
            kinds if kinds is not None else old.summary,
            goal if goal is not None else old.goal,
        )
        if new.summary and "best" in new.summary and new.goal is None:
            raise ValueError(f"define_metric({name!r}, summary='best') needs goal='minimize' or goal='maximize'")
        self.definitions.pop(name, None)  # redefined: it moves last, over the globs defined before
        self.definitions[name] = new
        return new

    def find(self, key: str) -> MetricDefinition | None:
        """The definition of ``key``: what the globs that match it set (a later one over an
        earlier one), then what its own definition sets over those."""
        found: MetricDefinition | None = None
        matches = [d for name, d in self.definitions.items() if "*" in name and fnmatch.fnmatchcase(key, name)]
        if key in self.definitions:
            matches.append(self.definitions[key])
        for definition in matches:
            given = {f.name: getattr(definition, f.name) for f in dataclasses.fields(definition)}
            given = {k: v for k, v in given.items() if v is not None and k != "name"}
            found = dataclasses.replace(found or MetricDefinition(key), **given)
        return found

    def sync(self, row: dict[str, Any], last: Mapping[str, Any]) -> None:
        """W&B's step_sync: a row with a metric whose step metric it lacks gets that step
        metric's last committed value."""
        if not self.definitions:
            return
        for key in list(row):
            found = self.find(key)
            if found is None or found.step_metric in (None, key) or found.step_sync is False:
                continue
            step_metric = str(found.step_metric)
            if step_metric not in row and step_metric in last:
                row[step_metric] = last[step_metric]


class _Stats:
    __slots__ = ("count", "first", "high", "low", "total")

    def __init__(self, value: float) -> None:
        self.first = self.low = self.high = self.total = value
        self.count = 1

    def add(self, value: float) -> None:
        self.low, self.high = min(self.low, value), max(self.high, value)
        self.total += value
        self.count += 1


class Summary(MutableMapping[str, Any]):
    """``run.summary``: each key's last committed value, unless ``define_metric`` asked for
    other kinds (then ``{'min': ..., 'max': ...}``) or the script set the key."""

    def __init__(self, metrics: Metrics, on_set: Callable[[dict[str, Any]], None]) -> None:
        self._metrics = metrics
        self._on_set = on_set
        self.last: dict[str, Any] = {}
        self._stats: dict[str, _Stats] = {}
        self._set: dict[str, Any] = {}

    def observe(self, row: Mapping[str, Any]) -> None:
        """A committed row (keys as logged, nested ones flattened)."""
        for key, value in row.items():
            value = plain(value)
            self.last[key] = value
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                stats = self._stats.get(key)
                if stats is None:
                    self._stats[key] = _Stats(value)
                else:
                    stats.add(value)

    def _kinds(self, key: str) -> tuple[str, ...] | None:
        found = self._metrics.find(key)
        return None if found is None else found.summary

    def _computed(self, key: str) -> Any:
        kinds = self._kinds(key)
        if kinds is None:
            return self.last[key]
        if "none" in kinds:
            raise KeyError(key)
        stats, goal = self._stats.get(key), (self._metrics.find(key) or MetricDefinition(key)).goal
        out: dict[str, Any] = {}
        for kind in kinds:
            if kind == "last":
                out[kind] = self.last[key]
            elif stats is not None:
                values = {"min": stats.low, "max": stats.high, "mean": stats.total / stats.count}
                values["best"] = values["min" if goal == "minimize" else "max"]
                out[kind] = values[kind]
        return out

    def defined(self) -> dict[str, Any]:
        """The define_metric summaries as params (``summary_loss_min``), for the run's end."""
        out: dict[str, Any] = {}
        for key in self.last:
            if key in self._set or self._kinds(key) is None:
                continue
            try:
                value = self._computed(key)
            except KeyError:
                continue
            out.update(params_of(value, f"{SUMMARY_PREFIX}_{key}"))
        return out

    def __getitem__(self, key: str) -> Any:
        if key in self._set:
            return self._set[key]
        if key not in self.last:
            raise KeyError(key)
        return self._computed(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError(f"summary keys must be non-empty str, got {key!r}")
        self._on_set(params_of({key: value}, SUMMARY_PREFIX))
        self._set[key] = value

    def __delitem__(self, key: str) -> None:
        refuse("del summary[key]", "the summary param stays on the run's rows")

    def __iter__(self) -> Iterator[str]:
        keys = dict.fromkeys(self._set)
        keys.update((k, None) for k in self.last if "none" not in (self._kinds(k) or ()))
        return iter(keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"summary has no key {name!r}") from None

    def __repr__(self) -> str:
        return f"Summary({dict(self.items())!r})"


__all__ = [
    "Config",
    "Summary",
    "Metrics",
    "MetricDefinition",
    "SUMMARY_PREFIX",
    "params_of",
    "mapping_of",
    "param_value",
]
