"""How the bytes of an artifact are cut, hashed and read back, whatever engine keeps
them: chunks of ``CHUNK_SIZE``, a BLAKE2b-256 digest checked on every read
(:func:`verify_pieces`), and a stream over the chunks (:func:`stream`). The SQL that
stores the chunks is each engine's ``blobs.py``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import IntegrityError

#: An upload from another host is taken as still running for this long (its pid cannot be checked).
FOREIGN_UPLOAD_SECONDS = 24 * 3600
CHUNK_SIZE = 4 * 2**20
DIGEST_SIZE = 32


class Hasher:
    """BLAKE2b-256, the digest every blob is verified against, fed on a worker thread.

    hashlib releases the GIL on large pieces, so while one piece is hashed the caller
    already reads the next one from the file or from SQLite (which also releases it):
    hashing costs about as much as the I/O it overlaps instead of adding to it. Pieces
    are hashed in order, one behind the caller; they must not change meanwhile.
    """

    _BACKGROUND = 1 << 16  # smaller pieces are hashed at once

    def __init__(self, state: Any = None) -> None:
        self._state = state if state is not None else hashlib.blake2b(digest_size=DIGEST_SIZE)
        self._pending: Future[None] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def update(self, data: Any) -> None:
        self._wait()
        if len(data) < self._BACKGROUND:
            self._state.update(data)
            return
        if self._pool is None:  # one short-lived thread per hasher: nothing crosses a fork
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="xetrack-hash")
        self._pending = self._pool.submit(self._state.update, data)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def copy(self) -> Hasher:
        self._wait()
        return Hasher(self._state.copy())

    def hexdigest(self) -> str:
        self._wait()
        self.close()
        return self._state.hexdigest()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __del__(self) -> None:
        pool = self._pool
        if pool is not None:
            pool.shutdown(wait=False)


def hasher() -> Hasher:
    """A fresh BLAKE2b-256 hasher (see :class:`Hasher`)."""
    return Hasher()


def verify_pieces(fetch: Callable[[int], Any], label: str, digest: str, size: int, chunks: int) -> Iterator[bytes]:
    """Chunks ``0 .. chunks - 1`` as ``fetch(seq)`` reads them (None: missing), hashed as
    they go; :class:`IntegrityError`, naming ``label``, when one is missing or the bytes do
    not hash to ``digest`` (checked after the last chunk). Any engine's reads use it."""
    check = hasher()
    total = 0
    try:
        for seq in range(chunks):
            data = fetch(seq)
            if data is None:
                raise IntegrityError(f"{label} is damaged: chunk {seq + 1} of {chunks} is missing")
            if isinstance(data, (bytearray, memoryview)):
                data = bytes(data)
            if not isinstance(data, bytes):
                raise IntegrityError(f"{label} is damaged: chunk {seq + 1} of {chunks} is not bytes")
            check.update(data)  # hashed while the caller uses it and the next chunk is read
            total += len(data)
            yield data
        got = check.hexdigest()
    finally:
        check.close()
    if total != size or got != digest:
        raise IntegrityError(
            f"{label} is corrupt: its stored bytes ({total} bytes, BLAKE2b {got[:16]}...) "
            f"do not match the {size} bytes it was stored as (BLAKE2b {digest[:16]}...)"
        )


class _ChunkStream(io.RawIOBase):
    """A read-only binary file over an iterator of byte strings."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not len(self._buffer):
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buffer = memoryview(piece)
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def stream(pieces: Iterator[bytes]) -> io.BufferedReader:
    """An iterator of byte strings as a read-only binary file."""
    return io.BufferedReader(_ChunkStream(pieces), CHUNK_SIZE)
