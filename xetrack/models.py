"""The model registry: named, numbered model versions on the content-addressed store.

- ``xetrack_models``: name, version, hash, kind, track_id, table, description, created.
  ``kind`` is ``asset`` (a pickled object in the asset store, loaded by unpickling) or
  ``artifact`` (bytes logged with ``log_artifact``, loaded as bytes).
- ``xetrack_model_aliases``: name, alias, version. An alias such as ``production``
  points at exactly one version of a name; setting it again moves it.

Versions are numbered 1, 2, 3... per name, inside the write transaction that records
them, so two processes registering at once get two different numbers.

The SQL is in :mod:`xetrack.store.sqlite.models` (a SQLite file) and
:mod:`xetrack.store.postgres.models` (PostgreSQL, numbers taken with the registry table locked
against other registrations), chosen by :func:`xetrack.store.features`.

A model is named ``'iris'`` (the latest version), ``'iris:3'`` (version 3) or
``'iris@production'`` (the version the alias points at). ``@latest`` is the latest.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .assets import compress_asset, decode_asset, is_asset_hash, pickle_asset, verify_asset
from .errors import NotFoundError
from .store import features
from .store.base import close_matches
from .store.tables import MODEL_ALIASES, MODELS

if TYPE_CHECKING:
    import pandas as pd


LATEST = "latest"
COLUMNS = ("name", "version", "aliases", "hash", "kind", "size", "track_id", "description", "created")
_LABEL = re.compile(r"[^\s:@/\\][^:@/\\]*\Z")


def check_label(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"A model {what} must be a str, got {value!r}")
    if value != value.strip() or not _LABEL.match(value):
        raise ValueError(
            f"Model {what} {value!r} must be non-empty text without ':', '@', '/', '\\' or surrounding spaces"
        )
    return value


def check_alias(alias: Any) -> str:
    check_label(alias, "alias")
    if alias == LATEST or alias.isdigit():
        raise ValueError(
            f"{alias!r} cannot be an alias: '@latest' always means the latest version, and a number reads as a version"
        )
    return alias


def check_version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int):
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        else:
            raise TypeError(f"A model version must be a positive int, got {version!r}")
    if version < 1:
        raise ValueError(f"Model versions start at 1, got {version}")
    return version


# ------------------------------------------------------------------- writing
def register(
    engine: Any,
    table: str,
    track_id: str | None,
    name: Any,
    model_or_hash: Any,
    alias: Any = None,
    description: Any = None,
    compress: bool = False,
) -> int:
    """Record version N+1 of ``name``; returns N+1 (0 under Tracker.SKIP_INSERT: nothing kept).

    >>> register(engine, "default", run_id, "iris", model, alias="production")  # doctest: +SKIP
    1
    """
    from .runs import now

    check_label(name, "name")
    if alias is not None:
        check_alias(alias)
    if description is not None and not isinstance(description, str):
        raise TypeError(f"description must be a str or None, got {description!r}")
    store = features(engine).models
    data = None
    if isinstance(model_or_hash, str):
        key = model_or_hash
        kind = store.kind_of(engine, key) if is_asset_hash(key) else None
        if kind is None:
            raise ValueError(
                f"{key!r} is not the hash of an object or artifact stored in {getattr(engine, 'path', None)!r}. "
                "Pass the model itself to store it, or the hash that log() or log_artifact() returned"
            )
    else:
        key, data = pickle_asset(model_or_hash, name)
        if compress:  # Tracker(compress=True); the key stays the pickle's hash
            data = compress_asset(data)
        kind = "asset"
    version = store.add_version(engine, name, key, kind, data, alias, (track_id, table, description, now()))
    if version is None:  # removed since we looked
        raise ValueError(f"{key!r} was removed from the store while registering {name!r}; nothing was written")
    return version


def set_alias(engine: Any, name: Any, version: Any, alias: Any) -> None:
    """Point ``alias`` of ``name`` at ``version``, moving it from the version it named.

    >>> set_alias(engine, "iris", 2, "production")  # doctest: +SKIP
    """
    check_label(name, "name")
    version = check_version(version)
    check_alias(alias)

    def check(versions: list[Any], aliases: dict[str, int], names: list[str]) -> None:
        _pick(name, version, None, versions, aliases, names)  # a clear error when it does not exist

    features(engine).models.move_alias(engine, name, alias, version, check)


def delete_alias(engine: Any, name: Any, alias: Any) -> bool:
    """Remove an alias; returns whether it existed."""
    check_label(name, "name")
    check_label(alias, "alias")
    return features(engine).models.remove_alias(engine, name, alias)


# ------------------------------------------------------------------- reading
@dataclass
class Version:
    name: str
    version: int
    hash: str
    kind: str

    @property
    def label(self) -> str:
        return f"Model {self.name}:{self.version} ({self.hash})"


def parse(spec: Any) -> tuple[str, int | None, str | None]:
    """``'iris'`` -> (iris, None, None); ``'iris:3'`` -> (iris, 3, None); ``'iris@prod'`` -> (iris, None, prod)."""
    if not isinstance(spec, str):
        raise TypeError(f"Name a model as 'name', 'name:version' or 'name@alias', got {spec!r}")
    name, version, alias = spec, None, None
    if "@" in spec:
        name, _, alias = spec.partition("@")
        check_label(alias, "alias")
    elif ":" in spec:
        name, _, number = spec.partition(":")
        if not number.isdigit() or int(number) < 1:
            raise ValueError(f"{spec!r}: the version after ':' must be a number from 1 up, as in 'iris:3'")
        version = int(number)
    return check_label(name, "name"), version, alias


def resolve(engine: Any, spec: Any) -> Version:
    """The stored version a spec names; :class:`NotFoundError` naming what exists if none.

    >>> resolve(engine, "iris@production").version  # doctest: +SKIP
    2
    """
    name, version, alias = parse(spec)
    found = features(engine).models.versions(engine, name)
    if found is None:
        raise NotFoundError(f"No model {spec!r}: nothing is stored with Tracker.SKIP_INSERT")
    return _pick(name, version, alias, *found)


def _pick(
    name: str, version: int | None, alias: str | None, versions: list[Any], aliases: dict[str, int], names: list[str]
) -> Version:
    """The version a spec names, from ``name``'s ``(version, hash, kind)`` rows and
    aliases; ``names`` (every registered name) is for the message when it has none."""
    if not versions:
        listed = ", ".join(names) if names else "none is registered"
        raise NotFoundError(f"No model named {name!r}.{close_matches(name, names)} Models: {listed}")
    by_number = {v: (h, k) for v, h, k in versions}
    shown = ", ".join(str(v) for v in by_number)
    pointers = ", ".join(f"{a} -> {v}" for a, v in aliases.items()) or "none"
    if alias is not None and alias != LATEST:
        if alias not in aliases:
            raise NotFoundError(
                f"Model {name!r} has no alias {alias!r}.{close_matches(alias, list(aliases))} "
                f"Aliases: {pointers}; versions: {shown}"
            )
        version = aliases[alias]
    if version is None:
        version = versions[-1][0]
    if version not in by_number:
        raise NotFoundError(f"Model {name!r} has no version {version}. Versions: {shown}; aliases: {pointers}")
    key, kind = by_number[version]
    return Version(name, version, key, kind)


def listing(engine: Any) -> pd.DataFrame:
    """Every registered version, one row each (``COLUMNS``), by name and number."""
    import pandas as pd

    found, pointers = features(engine).models.listing(engine)
    aliases: dict[tuple[str, int], list[str]] = {}
    for name, alias, version in pointers:
        aliases.setdefault((name, version), []).append(alias)
    rows = [
        (name, version, aliases.get((name, version), []), key, kind, size, track_id, description, created)
        for name, version, key, kind, size, track_id, description, created in found
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("version", "size"):
        frame[column] = frame[column].astype("Int64")
    return frame


def model_bytes(engine: Any, version: Version) -> Iterator[bytes]:
    """The stored bytes of a version, verified: the pickle of an asset, or an artifact's bytes."""
    from .artifacts import keeper

    if version.kind == "artifact":
        return keeper(engine).read_chunks(engine, version.hash, version.label)
    data = engine.asset_get(version.hash)
    if data is None:
        raise NotFoundError(f"{version.label}: its object is no longer in the asset store")
    return iter([verify_asset(version.hash, decode_asset(data), version.label)])


def open_stream(engine: Any, spec: Any) -> io.BufferedReader:
    """A version's stored bytes as a read-only binary file (streamed for an artifact)."""
    version = resolve(engine, spec)
    if version.kind == "artifact":
        from .artifacts import keeper

        return keeper(engine).open_blob(engine, version.hash, version.label)
    return io.BufferedReader(io.BytesIO(next(model_bytes(engine, version))))


def referencing(engine: Any, key: str) -> list[str]:
    """The versions (``name:version``) that point at a stored hash."""
    return [f"{name}:{version}" for name, version in features(engine).models.referencing(engine, key)]


def refuse_model_asset(engine: Any, key: str) -> None:
    """Raise ValueError when a registered model version points at asset ``key``: the
    registry's guard, given to :class:`~xetrack.assets.AssetStore` and checked by
    ``Tracker.remove_asset`` before an asset is deleted.

    >>> from xetrack import Tracker
    >>> tracker = Tracker(Tracker.IN_MEMORY)
    >>> key = tracker.log({"model": {1, 2}})["model"]
    >>> refuse_model_asset(tracker._engine, key)  # no version holds it: nothing to say
    >>> tracker.register_model("sets", key) and refuse_model_asset(tracker._engine, key)
    Traceback (most recent call last):
    ValueError: Asset ... is model version sets:1: deleting it would break load_model. Nothing was deleted
    """
    versions = referencing(engine, key)
    if versions:
        raise ValueError(
            f"Asset {key} is model version {', '.join(versions)}: deleting it would break "
            "load_model. Nothing was deleted"
        )


def load(engine: Any, spec: Any) -> Any:
    """The model a spec names: unpickled (an object) or bytes (a registered artifact)."""
    version = resolve(engine, spec)
    data = b"".join(model_bytes(engine, version))
    if version.kind == "artifact":
        return data
    import cloudpickle

    return cloudpickle.loads(data)


__all__ = [
    "MODELS",
    "MODEL_ALIASES",
    "register",
    "set_alias",
    "delete_alias",
    "resolve",
    "listing",
    "load",
    "model_bytes",
    "open_stream",
    "referencing",
    "refuse_model_asset",
]
