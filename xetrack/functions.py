"""Tracking a call: one row with its name, arguments, result or error, and time.

>>> from xetrack import Tracker
>>> tracker = Tracker(Tracker.IN_MEMORY)
>>> tracker.track(pow, args=[2, 10])
1024
>>> row = tracker.latest
>>> row["function_name"], row["args"], row["function_result"], row["error"]
('pow', '[2, 10]', 1024, '')

The row (see docs/functions.md):

- ``function_name``: the function's ``__name__``;
- ``args`` / ``kwargs``: the positional and keyword arguments as JSON text; what JSON
  cannot hold (an array, a model) appears as its short repr, long lists are cut at
  100 items and long strings at 1,000 characters;
- ``<arg>_<field>``: each dataclass or pydantic argument unpacked, recursively;
- ``error``: ``""``, or the text of the exception the call raised;
- ``function_time``: seconds the call took (``time.perf_counter``);
- a dict result's keys as columns, or any other result as ``function_result``;
- ``cache`` when the tracker caches (see xetrack.cache), system metrics when asked for
  (see xetrack.system), then the call's params.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any, Protocol

from .cache import (
    CACHE,
    ResultCache,
    Uncacheable,
    UncacheableArgumentWarning,
    cache_key,
    function_name,
)
from .call_text import json_text, short_repr, unpack_arguments

FUNCTION_NAME = "function_name"
ARGS = "args"
KWARGS = "kwargs"
ERROR = "error"
FUNCTION_TIME = "function_time"
FUNCTION_RESULT = "function_result"


class CallTracker(Protocol):
    """What tracking a call needs of a Tracker."""

    track_id: str
    raise_on_error: bool
    _cache: ResultCache | None
    log_system_params: bool
    log_network_params: bool
    measurement_interval: float
    warnings_enabled: bool

    @property
    def warnings(self) -> bool: ...

    @property
    def params(self) -> dict[str, Any]: ...

    @property
    def logger(self) -> Any: ...

    def log(self, data: Mapping[Any, Any]) -> dict[str, Any]: ...


# -- arguments ---------------------------------------------------------------------


# -- the call ----------------------------------------------------------------------
def _check_call(
    func: Any, args: Any, kwargs: Any, params: Any
) -> tuple[tuple[Any, ...], dict[str, Any], dict[Any, Any]]:
    if not callable(func):
        raise TypeError(f"track() takes a function to call, got {type(func).__name__}: {func!r:.80}")
    if args is None:
        args = ()
    elif not isinstance(args, (list, tuple)):
        raise TypeError(
            f"args must be a list or tuple of positional arguments, got {type(args).__name__}: {args!r:.80}; "
            "call tracker.track(func, args=[...], kwargs={...})"
        )
    if kwargs is None:
        kwargs = {}
    elif not isinstance(kwargs, Mapping):
        raise TypeError(f"kwargs must be a dict of keyword arguments, got {type(kwargs).__name__}: {kwargs!r:.80}")
    if params is None:
        params = {}
    elif not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict, got {type(params).__name__}: {params!r:.80}")
    return tuple(args), dict(kwargs), dict(params)


def _error_text(exc: BaseException) -> str:
    try:
        return str(exc) or type(exc).__name__
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails, with any error
        return type(exc).__name__


def _result_columns(result: Any) -> dict[Any, Any]:
    """A dict result becomes columns (when its keys can name columns); anything else one column."""
    if isinstance(result, Mapping) and all(
        isinstance(k, str) or (isinstance(k, int) and not isinstance(k, bool)) for k in result
    ):
        return dict(result)
    return {FUNCTION_RESULT: result}


def _warn(tracker: CallTracker, message: str, category: type[Warning], stacklevel: int) -> None:
    """A Python warning; with a log sink (``tracker.warnings``), a WARNING line too."""
    warnings.warn(message, category, stacklevel=stacklevel)
    if tracker.warnings:
        tracker.logger.warning(message)


def _cache_key_or_warn(
    cache: ResultCache, tracker: CallTracker, func: Any, args: Any, kwargs: Any, params: Any, stacklevel: int
) -> str | None:
    try:
        return cache_key(func, args, kwargs, params)
    except Uncacheable as why:
        if why.kind not in cache.warned:
            cache.warned.add(why.kind)
            if tracker.warnings_enabled:
                _warn(
                    tracker,
                    f"xetrack: not caching {function_name(func)}(): {why.where} {why.reason} "
                    f"({why.kind.__module__}.{why.kind.__qualname__}); pass a tuple or a frozen dataclass "
                    f"to cache such calls. Warned once per type.",
                    UncacheableArgumentWarning,
                    stacklevel=stacklevel + 2,
                )
        return None


def track_call(
    tracker: CallTracker,
    func: Callable[..., Any],
    args: Any = None,
    kwargs: Any = None,
    params: Any = None,
    cache_force: bool = False,
    stacklevel: int = 3,
) -> Any:
    """Call ``func(*args, **kwargs)``, log one row about it, return what it returned.

    On an error, the row holds its text; then the error is raised again, or None is
    returned when ``tracker.raise_on_error`` is False. With a ``cache``, a call seen
    before returns its stored result (and logs a row whose ``cache`` names the run that
    computed it); ``cache_force`` computes again and replaces the entry.
    ``stacklevel`` points warnings at the user's line, as seen from here.
    """
    args, kwargs, params = _check_call(func, args, kwargs, params)
    row: dict[Any, Any] = {
        FUNCTION_NAME: function_name(func),
        ARGS: json_text(list(args), cut=True),
        KWARGS: json_text(kwargs, cut=True),
    }
    row.update(unpack_arguments(func, args, kwargs))

    key = None
    cache = tracker._cache
    if cache is not None:
        # The params in effect: the tracker's, overridden by the call's (spec: "tracker
        # params also affect cache keys").
        effective = {**tracker.params, **params}
        key = _cache_key_or_warn(cache, tracker, func, args, kwargs, effective, stacklevel)
        if key is not None and not cache_force:
            entry = cache.get(key)
            if entry is not None:
                result = entry["result"]
                _log_call(tracker, _finish(row, result, None, 0.0, {CACHE: entry[CACHE]}, params), stacklevel)
                return result

    metrics = tracker.log_system_params or tracker.log_network_params
    monitor: Any = (
        _monitor(tracker.measurement_interval, tracker.log_system_params, tracker.log_network_params)
        if metrics
        else nullcontext()
    )
    result = error = None
    with monitor:
        start = time.perf_counter()
        try:
            result = func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any error of the user's function is logged, then re-raised or returned as None
            error = exc
        seconds = time.perf_counter() - start
    extra: dict[str, Any] = {} if key is None else {CACHE: ""}
    if metrics:
        extra.update(monitor.metrics)
    _log_call(tracker, _finish(row, result, error, seconds, extra, params), stacklevel)

    if error is not None:
        if tracker.raise_on_error:
            raise error
        return None
    if key is not None:
        try:
            cache.set(key, result, tracker.track_id)  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - pickling raises anything; the result is good, only its copy on disk failed
            if tracker.warnings_enabled and (FUNCTION_RESULT, row[FUNCTION_NAME]) not in cache.warned:  # type: ignore[union-attr]
                cache.warned.add((FUNCTION_RESULT, row[FUNCTION_NAME]))  # type: ignore[union-attr]
                _warn(
                    tracker,
                    f"xetrack: the result of {row[FUNCTION_NAME]}() was not cached: {type(exc).__name__}: {exc}",
                    UncacheableArgumentWarning,
                    stacklevel=stacklevel + 1,
                )
    return result


def _storable(value: Any) -> Any:
    """``value`` if a row can hold it (plain, or an asset cloudpickle can write), else its
    short repr."""
    from .assets import pickle_asset
    from .schema import NotPlainValue, coerce

    try:
        coerce(value)
        return value
    except NotPlainValue:
        pass
    except (TypeError, ValueError):  # an int beyond 64 bits, say
        return short_repr(value)
    try:
        pickle_asset(value)
        return value
    except TypeError:  # a lock, a connection, a generator
        return short_repr(value)


def _log_call(tracker: CallTracker, row: dict[Any, Any], stacklevel: int) -> None:
    """Log the call's row. The function has already run, so a value the row cannot hold
    (a result that is a lock, an int beyond 64 bits) must not cost the caller its result:
    such values are logged as their repr, with a warning."""
    try:
        tracker.log(row)
    except (TypeError, ValueError) as exc:
        fallback = {key: _storable(value) for key, value in row.items()}
        if fallback == row:
            raise  # not a value's fault (a bad key, the column limit): say so
        tracker.log(fallback)
        if tracker.warnings_enabled:
            _warn(
                tracker,
                f"xetrack: logged the repr of values of {row.get(FUNCTION_NAME)}() that a row cannot hold ({exc})",
                UserWarning,
                stacklevel=stacklevel + 2,
            )


def _monitor(interval: float, system: bool, network: bool) -> Any:
    from .system import SystemMonitor

    return SystemMonitor(interval, system=system, network=network)


def _finish(
    row: dict[Any, Any],
    result: Any,
    error: BaseException | None,
    seconds: float,
    extra: Mapping[str, Any],
    params: Mapping[Any, Any],
) -> dict[Any, Any]:
    own = {
        FUNCTION_NAME: row[FUNCTION_NAME],
        ARGS: row[ARGS],
        KWARGS: row[KWARGS],
        ERROR: "" if error is None else _error_text(error),
        FUNCTION_TIME: seconds,
    }
    row.update(own)
    if error is None:
        row.update(_result_columns(result))
        row.update(own)  # the call's own columns win over result keys of the same name
    row.update(extra)
    for name, value in params.items():  # the call's params win over the tracker's only
        row.setdefault(name, value)
    return row


def wrap(
    tracker: CallTracker, params: Mapping[Any, Any] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The decorator behind ``@tracker.wrap(params=...)``: each call is tracked as by ``track``."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(func):
            raise TypeError(f"wrap() decorates a function, got {type(func).__name__}: {func!r:.80}")

        @functools.wraps(func)
        def tracked(*args: Any, **kwargs: Any) -> Any:
            return track_call(tracker, func, args, kwargs, params)

        return tracked

    return decorator
