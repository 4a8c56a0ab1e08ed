"""Results of tracked calls on disk (diskcache), each tagged with the run that computed it.

>>> import tempfile
>>> cache = ResultCache(tempfile.mkdtemp())
>>> key = cache_key(pow, (2, 10), {}, {})
>>> cache.set(key, 1024, "fierce-pudu-1649")
>>> cache.get(key)
{'result': 1024, 'cache': 'fierce-pudu-1649'}

An entry is ``{"result": <the return value>, "cache": <track_id of the computing run>}``.
Its key is ``"<function name>:<32 hex digits>"``, a SHA-256 of the function's name, the
arguments (bound to the signature, so ``f(2, y=3)`` and ``f(2, 3)`` are one call), and
the params in effect for the call (the tracker's, overridden by the call's). The digest
is built from values, never from ``hash()`` of a str, so the same call has the same key
in every process and every session:

- None, bool, int, float, str, bytes: their value (``1``, ``1.0`` and ``True`` differ);
- tuples, frozensets, frozen dataclasses (and hashable pydantic models), Enum members:
  their parts, recursively;
- datetime, Decimal, UUID, Path and the like: their repr; functions and classes: their
  qualified name;
- other hashable objects that define ``__hash__``: ``hash(obj)``, which is all they
  promise about equality;
- a list, dict, set, non-frozen dataclass, or an object hashed by identity (which would
  hit another object after this one is freed) makes the call *uncacheable*: it runs and
  is logged without a ``cache`` column. Params are data, so lists and dicts are fine in
  params.

diskcache is safe for many threads and processes on one directory. Its default size
limit (1 GB, oldest entries evicted first) applies.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import fractions
import functools
import hashlib
import inspect
import os
import pathlib
import types
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

#: The column of a tracked call's row that holds its lineage: "" when computed, or the
#: ``track_id`` of the run whose result was served from the cache.
CACHE = "cache"

_KEY_VERSION = 1
_MAX_DEPTH = 10
_PRIMITIVES = frozenset((type(None), bool, int, float, str, bytes))
_BY_REPR = (
    _dt.datetime,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    _dt.timezone,
    decimal.Decimal,
    fractions.Fraction,
    complex,
    uuid.UUID,
    pathlib.PurePath,
    range,
)


class UncacheableArgumentWarning(UserWarning):
    """A tracked call ran without the cache: one of its arguments has no stable key."""


class Uncacheable(Exception):
    """Raised inside key building: ``value`` (found at ``where``) cannot be part of a key."""

    def __init__(self, value: Any, where: str, reason: str = "is unhashable") -> None:
        super().__init__(f"{where} {reason}")
        self.kind = type(value)
        self.where = where
        self.reason = reason


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', repr(obj))}"


def _fields(value: Any) -> list[str] | None:
    """Field names of a dataclass or pydantic model instance, else None."""
    if isinstance(value, type):
        return None
    if dataclasses.is_dataclass(value):
        return [f.name for f in dataclasses.fields(value) if f.compare]
    model_fields = getattr(type(value), "model_fields", None)
    if isinstance(model_fields, Mapping) and callable(getattr(value, "model_dump", None)):
        return list(model_fields)
    return None


def _canonical(value: Any, where: str, containers: bool = False, depth: int = 0) -> Any:
    """A structure whose repr stands for ``value`` in every process, or Uncacheable.

    ``containers`` lets lists, dicts and sets in (for params, which are data).
    """
    kind = type(value)
    if kind in _PRIMITIVES:
        return value
    if depth > _MAX_DEPTH:
        raise Uncacheable(value, where, f"is nested deeper than {_MAX_DEPTH} levels")
    deeper = depth + 1
    if isinstance(value, enum.Enum):
        return ("enum", _qualified(kind), value.name)
    bases: tuple[type[Any], ...] = (int, float, str, bytes)  # each one's value goes to that class
    for base in bases:  # subclasses, e.g. numpy.float64
        if isinstance(value, base):
            return (_qualified(kind), base(value))
    if isinstance(value, tuple) or (containers and isinstance(value, list)):
        items = tuple(_canonical(v, f"{where}[{i}]", containers, deeper) for i, v in enumerate(value))
        return (_qualified(kind), items)
    if isinstance(value, frozenset) or (containers and isinstance(value, set)):
        members = [_canonical(v, f"{where} item", containers, deeper) for v in value]
        return (_qualified(kind), tuple(sorted(members, key=repr)))
    if containers and isinstance(value, Mapping):
        pairs = [
            (_canonical(k, f"{where} key", containers, deeper), _canonical(v, f"{where}[{k!r}]", containers, deeper))
            for k, v in value.items()
        ]
        return ("dict", tuple(sorted(pairs, key=repr)))
    if isinstance(value, _BY_REPR):
        return (_qualified(kind), repr(value))
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        return ("callable", function_identity(value))
    if isinstance(value, types.ModuleType):
        return ("module", value.__name__)
    fields = _fields(value)
    if fields is not None:
        if kind.__hash__ is None and not containers:
            raise Uncacheable(value, where, "is a dataclass or model that is not frozen")
        parts = tuple((f, _canonical(getattr(value, f), f"{where}.{f}", containers, deeper)) for f in fields)
        return (_qualified(kind), parts)
    if kind.__hash__ is None:
        raise Uncacheable(value, where)
    if kind.__hash__ is object.__hash__:  # type: ignore[comparison-overlap]  # both read off a class; mypy binds kind's
        raise Uncacheable(value, where, "is hashed by identity (define __hash__ and __eq__ to cache it)")
    try:
        return ("hash", _qualified(kind), hash(value))
    except TypeError:  # e.g. a tuple subclass holding a list
        raise Uncacheable(value, where) from None


def function_identity(func: Callable[..., Any]) -> Any:
    """What tells one function apart from another in a key: its qualified name (not its module,
    so a function keeps its entries when it moves from a notebook to a script).

    A lambda also gets its line, a bound method its object, a partial its frozen arguments.
    """
    if isinstance(func, functools.partial):
        return (
            "partial",
            function_identity(func.func),
            _canonical(func.args, "partial args"),
            _canonical(tuple(sorted(func.keywords.items())), "partial keywords"),
        )
    if inspect.ismethod(func):
        return ("method", function_identity(func.__func__), _canonical(func.__self__, "self"))
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if not isinstance(name, str):  # a callable object: the object is part of the call
        return ("callable", _qualified(type(func)), _canonical(func, "the callable"))
    owner = getattr(func, "__self__", None)  # a bound builtin method, such as [].append
    if owner is not None and not isinstance(owner, types.ModuleType) and not isinstance(func, types.FunctionType):
        return ("method", name, _canonical(owner, "self"))
    code = getattr(func, "__code__", None)
    if "<lambda>" in name and code is not None:
        name = f"{name}:{code.co_firstlineno}"
    return name


def function_name(func: Callable[..., Any]) -> str:
    """The short name a row shows: ``foo`` for ``foo``, a partial of it, or a method."""
    while isinstance(func, functools.partial):
        func = func.func
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) else type(func).__name__


_SIGNATURES: weakref.WeakKeyDictionary[Any, inspect.Signature] = weakref.WeakKeyDictionary()


def signature_of(func: Callable[..., Any]) -> inspect.Signature:
    """``inspect.signature(func)``, remembered for plain functions (it costs ~20 µs a call)."""
    if type(func) is not types.FunctionType:
        return inspect.signature(func)
    signature = _SIGNATURES.get(func)
    if signature is None:
        signature = _SIGNATURES[func] = inspect.signature(func)
    return signature


def _arguments(func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    try:
        signature = signature_of(func)
        bound = signature.bind(*args, **kwargs)
    except (TypeError, ValueError):  # no signature (some builtins), or a call that will fail
        return (
            tuple(_canonical(v, f"argument {i}") for i, v in enumerate(args)),
            tuple(sorted(((k, _canonical(v, f"argument {k!r}")) for k, v in kwargs.items()), key=lambda kv: kv[0])),
        )
    parts = []
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            parts.append((name, tuple(_canonical(v, f"argument {name}[{i}]") for i, v in enumerate(value))))
        elif kind is inspect.Parameter.VAR_KEYWORD:
            items = sorted(((k, _canonical(v, f"argument {k!r}")) for k, v in value.items()), key=lambda kv: kv[0])
            parts.append((name, tuple(items)))
        else:
            parts.append((name, _canonical(value, f"argument {name!r}")))
    return tuple(parts)


def cache_key(
    func: Callable[..., Any],
    args: Any = (),
    kwargs: Mapping[str, Any] | None = None,
    params: Mapping[Any, Any] | None = None,
) -> str:
    """The key of one call, the same in every process; raises Uncacheable.

    >>> cache_key(pow, [2, 10], {}, {}) == cache_key(pow, (2, 10), None, None)
    True
    """
    params_part = _canonical(dict(params or {}), "params", containers=True)
    text = repr((_KEY_VERSION, function_identity(func), _arguments(func, tuple(args), kwargs or {}), params_part))
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{function_name(func)}:{digest}"


def _is_entry(entry: Any) -> bool:
    return isinstance(entry, dict) and "result" in entry and CACHE in entry


class ResultCache:
    """A diskcache directory of ``{"result": ..., "cache": track_id}`` entries.

    Args:
        directory: the cache folder (created if missing), or an open ``diskcache.Cache``.
    """

    def __init__(self, directory: str | os.PathLike[str] | Any) -> None:
        import diskcache

        if isinstance(directory, diskcache.Cache):
            self.cache = directory
        elif isinstance(directory, (str, os.PathLike)):
            self.cache = diskcache.Cache(os.fspath(directory))
        else:
            raise TypeError(
                f"cache must be a directory path or a diskcache.Cache, got {type(directory).__name__}: {directory!r}"
            )
        self.directory: str = self.cache.directory
        #: What was already warned about: argument types, and functions whose result
        #: could not be pickled (one warning each).
        self.warned: set[Any] = set()

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry under ``key``, or None (missing, or unreadable: e.g. its class is gone)."""
        try:
            entry = self.cache.get(key, default=None, retry=True)
        except Exception:  # noqa: BLE001 - an entry that no longer unpickles (any error) is a miss, not a crash
            return None
        return entry if _is_entry(entry) else None

    def set(self, key: str, result: Any, track_id: str) -> None:
        """Store ``result`` as computed by run ``track_id`` (raises if it cannot be pickled).

        The track_id is also the entry's diskcache ``tag``: the lineage can be read, and
        a run's entries deleted, without unpickling results (whose classes may live in a
        script the reader does not have).
        """
        self.cache.set(key, {"result": result, CACHE: track_id}, tag=track_id, retry=True)

    def close(self) -> None:
        self.cache.close()


def _open_existing(directory: str | os.PathLike[str]) -> Any:
    import diskcache

    path = os.fspath(directory)
    if not os.path.isfile(os.path.join(path, "cache.db")):
        raise FileNotFoundError(
            f"No xetrack cache in {path!r}: expected the directory given to Tracker(cache=...), which holds a cache.db"
        )
    return diskcache.Cache(path)


def read_entry(directory: str | os.PathLike[str], key: str) -> dict[str, Any] | None:
    """``{"result": ..., "cache": track_id}`` stored under ``key``, or None when there is none."""
    cache = _open_existing(directory)
    try:
        return ResultCache(cache).get(key)
    finally:
        cache.close()


def scan(directory: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``(key, entry)`` in the cache directory, in key order."""
    cache = _open_existing(directory)  # raises now, not at the first next()
    return _entries(cache)


def _tag(cache: Any, key: str) -> str | None:
    """The tag (the computing run's track_id) of an entry, read without its value."""
    try:  # diskcache keeps tags in its Cache table; there is no public call for one tag
        row = cache._sql("SELECT tag FROM Cache WHERE key = ? AND raw = 1", (key,)).fetchone()
    except Exception:  # noqa: BLE001 - diskcache's private call: any failure means the tag is unknown
        return None
    return row[0] if row and isinstance(row[0], str) else None


def _entries(cache: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        for key in cache.iterkeys():
            try:
                entry = cache.get(key, default=None, retry=True)
            except Exception as exc:  # noqa: BLE001 - unpickling raises anything, e.g. its class lives in the user's script
                track_id = _tag(cache, key)
                if track_id is not None:  # ours, readable only where its class is
                    yield key, {"result": f"<unreadable here: {type(exc).__name__}: {exc}>", CACHE: track_id}
                continue
            if _is_entry(entry):  # deleted meanwhile, or not ours
                yield key, entry
    finally:
        cache.close()


def delete_by_track_id(directory: str | os.PathLike[str], track_id: str) -> int:
    """Delete every entry computed by run ``track_id``; returns how many were deleted."""
    if not isinstance(track_id, str):
        raise TypeError(f"track_id must be a str, got {type(track_id).__name__}: {track_id!r}")
    cache = _open_existing(directory)
    results = ResultCache(cache)
    try:
        # Tagged entries go by their tag, unread. Entries without a tag (none are written
        # so any more) are read to find their track_id. One transaction: an entry another
        # process refreshes meanwhile is not lost.
        with cache.transact(retry=True):
            deleted = cache.evict(track_id, retry=True)
            for key in list(cache.iterkeys()):
                if _tag(cache, key) is not None:
                    continue
                entry = results.get(key)
                if entry is not None and entry[CACHE] == track_id and cache.delete(key, retry=True):
                    deleted += 1
    finally:
        cache.close()
    return deleted
