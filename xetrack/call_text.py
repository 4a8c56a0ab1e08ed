"""A tracked call's arguments as text (``args`` and ``kwargs`` columns: JSON, cut to a
readable size) and as columns (each dataclass or pydantic argument unpacked): the part of
:mod:`xetrack.functions` that looks at values, never at the Tracker."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import inspect
import pathlib
import reprlib
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .cache import signature_of
from .schema import to_json

#: Dataclasses and models nested deeper than this are cut off (so are cycles).
MAX_DEPTH = 10
_MAX_ITEMS = 100  # of a list or dict in the args/kwargs text
_MAX_TEXT = 1000  # characters of a str in the args/kwargs text

_SIMPLE = frozenset((type(None), bool, int, float, str))

_repr = reprlib.Repr()
_repr.maxother = _repr.maxstring = 200
_repr.maxlong = 200


def short_repr(value: Any) -> str:
    try:
        return _repr.repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break the call
        return f"<{type(value).__qualname__} object>"


def _fields(value: Any) -> list[tuple[str, Any]] | None:
    """``(name, value)`` of each field of a dataclass or pydantic model instance, else None."""
    if type(value) in _SIMPLE or isinstance(value, type):
        return None
    try:
        if dataclasses.is_dataclass(value):
            return [(f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value)]
        dump = getattr(value, "model_dump", None)
        if not callable(dump):
            return None
        names = getattr(type(value), "model_fields", None)  # pydantic 2
        if isinstance(names, Mapping):
            return [(name, getattr(value, name, None)) for name in names]
        dumped = dump()
        return list(dumped.items()) if isinstance(dumped, dict) else None
    except Exception:  # noqa: BLE001 - an odd object (any error from its fields) is not a config to unpack
        return None


def _jsonable(value: Any, depth: int, ancestors: frozenset[int], cut: bool) -> Any:
    """``value`` as plain JSON data; what JSON cannot hold becomes its short repr."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is float:
        return value
    if kind is str:
        return value[:_MAX_TEXT] + "..." if cut and len(value) > _MAX_TEXT else value
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, depth, ancestors, cut)
    if isinstance(value, (bool, int, float)):  # subclasses, numpy.float64
        return (bool if isinstance(value, bool) else int if isinstance(value, int) else float)(value)
    if isinstance(value, str):
        return _jsonable(str(value), depth, ancestors, cut)
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):  # numpy scalar
        try:
            return _jsonable(value.item(), depth, ancestors, cut)
        except Exception:  # noqa: BLE001 - a user's scalar type: a failing item() must not break the call
            return short_repr(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID, pathlib.PurePath)):
        return str(value)
    fields = _fields(value)
    is_container = isinstance(value, (list, tuple, set, frozenset, Mapping))
    if fields is None and not is_container:
        return short_repr(value)
    if id(value) in ancestors:
        return f"<cycle: {kind.__name__}>"
    if depth >= MAX_DEPTH:
        return f"<deeper than {MAX_DEPTH} levels: {kind.__name__}>"
    inner = ancestors | {id(value)}
    if fields is not None:
        return {name: _jsonable(v, depth + 1, inner, cut) for name, v in fields}
    if isinstance(value, Mapping):
        items = list(value.items())
        shown = items[:_MAX_ITEMS] if cut else items
        out = {_json_key(k): _jsonable(v, depth + 1, inner, cut) for k, v in shown}
        if len(shown) < len(items):
            out["..."] = f"{len(items) - len(shown)} more"
        return out
    values = sorted(value, key=short_repr) if isinstance(value, (set, frozenset)) else list(value)
    if cut and len(values) > _MAX_ITEMS:
        return [_jsonable(v, depth + 1, inner, cut) for v in values[:_MAX_ITEMS]] + [
            f"... {len(values) - _MAX_ITEMS} more"
        ]
    return [_jsonable(v, depth + 1, inner, cut) for v in values]


def _json_key(key: Any) -> Any:
    return key if key is None or type(key) in (str, int, float, bool) else short_repr(key)


def json_text(value: Any, cut: bool = False, depth: int = 0, ancestors: frozenset[int] = frozenset()) -> str:
    """``value`` as JSON text: JSON where possible, a short repr otherwise; never raises.

    ``cut`` shortens long lists and strings (for the ``args``/``kwargs`` columns).

    >>> json_text([1, "hello", {2}])
    '[1, "hello", [2]]'
    """
    if _is_simple(value, cut):
        return to_json(value)
    try:
        return to_json(_jsonable(value, depth, ancestors, cut))
    except Exception:  # noqa: BLE001 - json_text never raises: e.g. a property that raises, or an array shape
        return to_json(short_repr(value))


def _is_simple(value: Any, cut: bool) -> bool:
    """A short list/tuple/dict of plain values: JSON as it is (the common arguments)."""
    kind = type(value)
    if kind is dict:
        if not all(type(k) is str for k in value):
            return False
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return False
    if cut and len(value) > _MAX_ITEMS:
        return False
    for item in items:
        kind = type(item)
        if kind not in _SIMPLE or (cut and kind is str and len(item) > _MAX_TEXT):
            return False
    return True


def _unpack(prefix: str, value: Any, out: dict[str, Any], depth: int, ancestors: frozenset[int]) -> None:
    for name, field in _fields(value) or ():
        key = f"{prefix}_{name}"
        if _fields(field) is not None:
            if id(field) in ancestors:
                out[key] = f"<cycle: {type(field).__name__}>"
            elif depth >= MAX_DEPTH:
                out[key] = f"<deeper than {MAX_DEPTH} levels: {type(field).__name__}>"
            else:
                _unpack(key, field, out, depth + 1, ancestors | {id(field)})
        elif isinstance(field, (list, tuple, set, frozenset, Mapping)):
            out[key] = json_text(field, depth=depth, ancestors=ancestors)
        else:
            out[key] = field  # None is kept; Tracker.log decides about everything else


def _named_arguments(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> list[tuple[str, Any]]:
    """Each argument with its name from the signature; ``*args`` items are ``args_0``, ..."""
    try:
        signature = signature_of(func)
        bound = signature.bind(*args, **kwargs)
    except (TypeError, ValueError):  # no signature, or a call that is about to fail
        return [(f"args_{i}", v) for i, v in enumerate(args)] + list(kwargs.items())
    named: list[tuple[str, Any]] = []
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            named.extend((f"{name}_{i}", v) for i, v in enumerate(value))
        elif kind is inspect.Parameter.VAR_KEYWORD:
            named.extend(value.items())
        else:
            named.append((name, value))
    return named


def unpack_arguments(
    func: Callable[..., Any], args: Any = (), kwargs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Columns ``<argname>_<field>`` for every dataclass or pydantic argument, recursively.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Optimizer:
    ...     lr: float
    >>> @dataclass
    ... class Config:
    ...     optimizer: Optimizer
    ...     layers: tuple = (64, 32)
    >>> def train(cfg): ...
    >>> unpack_arguments(train, [Config(Optimizer(0.01))])
    {'cfg_optimizer_lr': 0.01, 'cfg_layers': '[64, 32]'}
    """
    out: dict[str, Any] = {}
    kwargs = kwargs or {}
    if not any(_fields(v) is not None for v in (*args, *kwargs.values())):
        return out  # the common case: no signature to bind
    for name, value in _named_arguments(func, tuple(args), kwargs):
        if _fields(value) is not None:
            _unpack(str(name), value, out, 1, frozenset((id(value),)))
    return out
