"""The asset store: objects that are not plain values, pickled once by content hash.

A model, an array or any other object logged with ``tracker.log`` is serialized with
cloudpickle; the row holds the first 16 hex characters of the BLAKE2b hash of those
bytes, and the bytes are stored once in the ``assets`` table of the same file (the
layout of sqlitedict, so ``SqliteDict(db, tablename="assets")`` reads it too).
``xetrack_asset_counts`` counts the rows that logged each hash.

Loading an asset unpickles it, and unpickling runs code: never open a database file
from an untrusted source this way.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import cloudpickle

if TYPE_CHECKING:
    from .store.base import Engine

HASH_LENGTH = 16
_HASH = re.compile(r"[0-9a-f]{16}\Z")


def is_asset_hash(value: str) -> bool:
    """Whether a str looks like an asset hash: 16 lowercase hex characters."""
    return len(value) == HASH_LENGTH and _HASH.match(value) is not None


def asset_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=HASH_LENGTH // 2).hexdigest()


def verify_asset(key: str, data: bytes, label: str | None = None) -> bytes:
    """``data`` when it hashes to ``key``; a mismatch raises IntegrityError naming the asset.

    Keys that are not asset hashes (a value a user stored under a name of their own
    with sqlitedict) are not checked.
    """
    if is_asset_hash(key) and asset_hash(data) != key:
        from .errors import IntegrityError

        raise IntegrityError(
            f"{label or 'Asset ' + key} is corrupt: its stored bytes hash to {asset_hash(data)}, "
            f"not {key}; it was not loaded"
        )
    return data


#: The header of compressed asset bytes (``Tracker(compress=True)``), then a zlib stream.
#: 0xFD is no pickle opcode, so stored pickles never start this way.
COMPRESSED_HEADER = b"\xfdxetrack-zlib\x00"


def compress_asset(data: bytes) -> bytes:
    """Pickled bytes as stored with ``compress=True``: the header, then zlib.

    >>> decode_asset(compress_asset(b"abc")) == b"abc"
    True
    """
    import zlib

    return COMPRESSED_HEADER + zlib.compress(data, 6)


def decode_asset(data: bytes) -> bytes:
    """The pickled bytes of a stored asset, compressed or not (told apart by the header)."""
    if bytes(data[: len(COMPRESSED_HEADER)]) != COMPRESSED_HEADER:
        return data
    import zlib

    try:
        return zlib.decompress(bytes(data[len(COMPRESSED_HEADER) :]))
    except zlib.error:
        return data  # damaged: the hash check that follows names the asset


def pickle_asset(obj: Any, key: Any = None) -> tuple[str, bytes]:
    """``(hash, bytes)`` of an object: cloudpickle, then a 16-hex content hash.

    >>> pickle_asset([1, 2, 3])[0] == pickle_asset([1, 2, 3])[0]
    True
    """
    try:
        data = cloudpickle.dumps(obj)
    except Exception as exc:  # noqa: BLE001 - cloudpickle raises whatever the object's __reduce__ raises
        raise TypeError(
            f"Cannot log key {key!r}: a {type(obj).__qualname__} is not a plain value and "
            f"cloudpickle cannot serialize it as an asset ({type(exc).__name__}: {exc})"
        ) from None
    return asset_hash(data), data


class AssetStore(Mapping[str, Any]):
    """The objects of one database file by hash: ``store[hash]`` unpickles one.

    >>> from xetrack import Tracker
    >>> tracker = Tracker(Tracker.IN_MEMORY)
    >>> row = tracker.log({"weights": {1, 2, 3}})      # a set is not a plain value
    >>> tracker.assets[row["weights"]] == {1, 2, 3}
    True

    ``guard``, when given, is called with the engine and a hash before :meth:`delete`
    removes it, and refuses by raising. A Tracker's and a Reader's store are given the
    model registry's (:func:`xetrack.models.refuse_model_asset`), so that an object a
    registered model version holds is never deleted; the asset store itself knows
    nothing of models.

    >>> from xetrack.store import IN_MEMORY, open_engine
    >>> def keep_all(engine, key):
    ...     raise ValueError(f"{key} is kept")
    >>> AssetStore(open_engine(IN_MEMORY), guard=keep_all).delete("53425a65a40a49f4")
    Traceback (most recent call last):
    ValueError: 53425a65a40a49f4 is kept
    """

    def __init__(self, engine: Engine, guard: Callable[[Engine, str], None] | None = None) -> None:
        self._engine = engine
        self._refuse = guard

    def __getitem__(self, key: str) -> Any:
        return cloudpickle.loads(self.bytes(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._engine.has_asset(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._engine.asset_keys())

    def __len__(self) -> int:
        return self._engine.asset_count()

    def __repr__(self) -> str:
        return f"AssetStore({self._engine.path!r}, {len(self)} assets)"

    def bytes(self, key: str) -> bytes:
        """The cloudpickle bytes of one asset (decompressed if stored compressed),
        checked against its hash."""
        data = self._engine.asset_get(key)
        if data is None:
            raise KeyError(f"No asset {key!r} in {self._engine.path!r}")
        return verify_asset(key, decode_asset(data))

    def references(self, key: str) -> int:
        """How many logged rows pointed at the asset."""
        return self._engine.asset_refs(key)

    def export(self, key: str, path: str | os.PathLike[str]) -> int:
        """Write the cloudpickle bytes of one asset to a file; returns the size.

        ``cloudpickle.loads(open(path, 'rb').read())`` gives the object back.
        """
        data = self.bytes(key)
        with open(path, "wb") as handle:
            handle.write(data)
        return len(data)

    def delete(self, key: str) -> bool:
        """Delete one asset (rows keep its hash); returns whether it existed.

        The store's ``guard`` (see the class) may refuse first: a Tracker's and a Reader's
        refuse an asset a registered model version points at, which would no longer load.
        """
        if self._refuse is not None:
            self._refuse(self._engine, key)
        existed = key in self
        self._engine.asset_delete(key)
        return existed

    def counts(self) -> Mapping[str, int]:
        """Hash -> number of rows that logged it, for every stored asset."""
        return {key: self._engine.asset_refs(key) for key in self}
