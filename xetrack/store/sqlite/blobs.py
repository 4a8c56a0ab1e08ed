"""Large byte strings in a SQLite file, stored in chunks and verified on every read.

Two tables (``xetrack_*`` names are reserved):

- ``xetrack_blobs``: one row per stored byte string: ``hash`` (its key), ``digest``
  (the hex BLAKE2b-256 of the bytes), ``size``, ``chunks`` and ``created``;
- ``xetrack_chunks``: the bytes, ``CHUNK_SIZE`` at a time, keyed by ``(hash, seq)``.

A blob exists once its ``xetrack_blobs`` row exists: that row is written last, in the
transaction that finishes the upload, so a reader never sees half a blob. Chunks are
small enough for any SQLite build (a row is limited to ``SQLITE_LIMIT_LENGTH`` bytes,
1 GB by default) and are read back one at a time, so memory stays bounded whatever the
size. Chunks without a ``xetrack_blobs`` row are removed by garbage collection, unless
``xetrack_uploads`` says a live process is still uploading them (an upload of more than
one transaction); a killed upload's are removed.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import sqlite3
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ...errors import IntegrityError, NotFoundError
from ...schema import quote
from ..base import rows_if_table
from ..tables import BLOBS, CHUNKS, UPLOADS

if TYPE_CHECKING:
    from .engine import SQLiteEngine


#: An upload from another host is taken as still running for this long (its pid cannot be checked).
FOREIGN_UPLOAD_SECONDS = 24 * 3600
CHUNK_SIZE = 4 * 2**20
DIGEST_SIZE = 32

_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(BLOBS)} ("
    '"hash" TEXT PRIMARY KEY, "digest" TEXT NOT NULL, "size" INTEGER NOT NULL, '
    '"chunks" INTEGER NOT NULL, "created" TEXT)',
    f"CREATE TABLE IF NOT EXISTS {quote(CHUNKS)} ("
    '"hash" TEXT NOT NULL, "seq" INTEGER NOT NULL, "data" BLOB NOT NULL, PRIMARY KEY ("hash", "seq"))',
    f"CREATE TABLE IF NOT EXISTS {quote(UPLOADS)} ("
    '"hash" TEXT NOT NULL, "pid" INTEGER NOT NULL, "host" TEXT NOT NULL, "started" REAL NOT NULL, '
    'PRIMARY KEY ("hash", "pid", "host"))',
)


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

    def copy(self) -> "Hasher":
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


def create_tables(conn: sqlite3.Connection) -> None:
    for statement in _DDL:
        conn.execute(statement)


def chunk_size(conn: sqlite3.Connection) -> int:
    """``CHUNK_SIZE``, or less when this SQLite build allows smaller rows."""
    return max(1, min(CHUNK_SIZE, value_limit(conn) // 2))


def value_limit(conn: sqlite3.Connection) -> int:
    """The most bytes one value may hold in this SQLite build (1 GB by default)."""
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
    return getlimit(sqlite3.SQLITE_LIMIT_LENGTH) if getlimit is not None else 1_000_000_000


def check_pickle_size(conn: sqlite3.Connection, key: str, data: Any) -> None:
    """A pickled object is one value: past SQLite's limit, say what to do instead."""
    limit = value_limit(conn)
    if len(data) > limit:
        raise ValueError(
            f"Object {key} pickles to {len(data):,} bytes, more than SQLite's limit of {limit:,} "
            "bytes per value; nothing was written. Save it to a file and log that with "
            "tracker.log_artifact(path) (stored in chunks, any size), then "
            "tracker.register_model(name, hash) if it is a model"
        )


def begin_upload(conn: sqlite3.Connection, key: str) -> None:
    """Mark ``key`` as being uploaded by this process: an upload in several transactions has
    chunks without a header for a while, and garbage collection must leave them alone."""
    conn.execute(
        f'INSERT OR REPLACE INTO {quote(UPLOADS)} ("hash", "pid", "host", "started") VALUES (?, ?, ?, ?)',
        (key, os.getpid(), socket.gethostname(), time.time()),
    )


def end_upload(conn: sqlite3.Connection, key: str) -> None:
    conn.execute(
        f'DELETE FROM {quote(UPLOADS)} WHERE "hash" = ? AND "pid" = ? AND "host" = ?',
        (key, os.getpid(), socket.gethostname()),
    )


def uploads_in_progress(conn: sqlite3.Connection, clean: bool = True) -> set[str]:
    """Hashes some live process is uploading; with ``clean``, rows of dead uploaders are deleted."""
    try:
        rows = conn.execute(f'SELECT "hash", "pid", "host", "started" FROM {quote(UPLOADS)}').fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return set()
        raise
    import psutil

    here, now = socket.gethostname(), time.time()
    live: set[str] = set()
    for key, pid, host, started in rows:
        alive = psutil.pid_exists(pid) if host == here else now - started < FOREIGN_UPLOAD_SECONDS
        if alive:
            live.add(key)
        elif clean:
            conn.execute(
                f'DELETE FROM {quote(UPLOADS)} WHERE "hash" = ? AND "pid" = ? AND "host" = ?', (key, pid, host)
            )
    return live


def header(conn: sqlite3.Connection, key: str) -> tuple[str, int, int] | None:
    """``(digest, size, chunks)`` of a stored blob, or None."""
    rows = rows_if_table(conn, f'SELECT "digest", "size", "chunks" FROM {quote(BLOBS)} WHERE "hash" = ?', (key,))
    return (rows[0][0], rows[0][1], rows[0][2]) if rows else None


def write_chunks(conn: sqlite3.Connection, key: str, pieces: Iterable[tuple[int, Any]]) -> None:
    """Store ``(seq, bytes)`` pieces of ``key``. A chunk left by a killed upload is replaced."""
    sql = f'INSERT OR REPLACE INTO {quote(CHUNKS)} ("hash", "seq", "data") VALUES (?, ?, ?)'
    for seq, data in pieces:
        conn.execute(sql, (key, seq, data))


def stored_chunks(conn: sqlite3.Connection, key: str) -> tuple[int, int]:
    """``(count, bytes)`` of the chunks stored under ``key``."""
    row = conn.execute(
        f'SELECT count(*), coalesce(sum(length("data")), 0) FROM {quote(CHUNKS)} WHERE "hash" = ?', (key,)
    ).fetchone()
    return row[0], row[1]


def write_header(conn: sqlite3.Connection, key: str, digest: str, size: int, chunks: int, created: str) -> None:
    conn.execute(
        f'INSERT OR IGNORE INTO {quote(BLOBS)} ("hash", "digest", "size", "chunks", "created") '
        "VALUES (?, ?, ?, ?, ?)",
        (key, digest, size, chunks, created),
    )


def read_chunks(engine: "SQLiteEngine", key: str, label: str) -> Iterator[bytes]:
    """The bytes of a blob, one chunk at a time, hashed as they go.

    Raises :class:`NotFoundError` at once when nothing is stored under ``key``, and
    :class:`IntegrityError`, naming ``label``, when a chunk is missing or the bytes do
    not hash to the stored digest. The check on the digest comes after the last chunk:
    a caller that must never expose bad bytes collects them first (see
    ``xetrack.artifacts.write_verified``).
    """
    with engine.reading() as conn:
        found = header(conn, key)
    if found is None:
        raise NotFoundError(f"No stored bytes for {label} in {engine.path!r}")
    return _verified(engine, key, label, *found)


def _verified(engine: "SQLiteEngine", key: str, label: str, digest: str, size: int, chunks: int) -> Iterator[bytes]:
    sql = f'SELECT "data" FROM {quote(CHUNKS)} WHERE "hash" = ? AND "seq" = ?'

    def fetch(seq: int) -> Any:
        rows = engine.query(sql, (key, seq))  # one short read per chunk: the file is not held between chunks
        return rows[0][0] if rows else None

    return verify_pieces(fetch, label, digest, size, chunks)


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


def open_blob(engine: "SQLiteEngine", key: str, label: str) -> io.BufferedReader:
    """A blob as a read-only binary file, streamed chunk by chunk; the digest is checked
    at the end (a mismatch raises on the read that reaches it)."""
    return stream(read_chunks(engine, key, label))


def stream(pieces: Iterator[bytes]) -> io.BufferedReader:
    """An iterator of byte strings as a read-only binary file."""
    return io.BufferedReader(_ChunkStream(pieces), CHUNK_SIZE)


# ------------------------------------------------- the engine-level calls artifacts.store needs
def write(engine: "SQLiteEngine", body: Callable[[sqlite3.Connection], Any]) -> Any:
    """``body(conn)`` in one write transaction (the twin of :func:`.pg_blobs.write`)."""
    return engine.write(body)


def engine_chunk_size(engine: "SQLiteEngine") -> int:
    with engine.reading() as conn:
        return chunk_size(conn)


def has_blob(engine: "SQLiteEngine", key: str) -> bool:
    return bool(engine.query(f'SELECT 1 FROM {quote(BLOBS)} WHERE "hash" = ?', (key,)))


def blob_header(engine: "SQLiteEngine", key: str) -> tuple[str, int, int] | None:
    """``(digest, size, chunks)`` of a stored blob, or None (the twin of :func:`.pg_blobs.blob_header`)."""
    with engine.reading() as conn:
        return header(conn, key)


def read_chunk(engine: "SQLiteEngine", key: str, seq: int) -> bytes | None:
    """Chunk ``seq`` of a blob as stored (unverified: the caller hashes), or None."""
    rows = engine.query(f'SELECT "data" FROM {quote(CHUNKS)} WHERE "hash" = ? AND "seq" = ?', (key, seq))
    return rows[0][0] if rows else None
