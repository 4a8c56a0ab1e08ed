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

import io
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ...errors import NotFoundError
from ...schema import quote
from .. import chunks
from ..base import rows_if_table
from ..chunks import FOREIGN_UPLOAD_SECONDS, stream, verify_pieces
from ..tables import BLOBS, CHUNKS, UPLOADS
from .limits import value_limit

if TYPE_CHECKING:
    from .engine import SQLiteEngine


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


def create_tables(conn: sqlite3.Connection) -> None:
    for statement in _DDL:
        conn.execute(statement)


def chunk_size(conn: sqlite3.Connection) -> int:
    """``CHUNK_SIZE``, or less when this SQLite build allows smaller rows."""
    return max(1, min(chunks.CHUNK_SIZE, value_limit(conn) // 2))  # read now: tests patch it


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
        f'INSERT OR IGNORE INTO {quote(BLOBS)} ("hash", "digest", "size", "chunks", "created") VALUES (?, ?, ?, ?, ?)',
        (key, digest, size, chunks, created),
    )


def read_chunks(engine: SQLiteEngine, key: str, label: str) -> Iterator[bytes]:
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


def _verified(engine: SQLiteEngine, key: str, label: str, digest: str, size: int, chunks: int) -> Iterator[bytes]:
    sql = f'SELECT "data" FROM {quote(CHUNKS)} WHERE "hash" = ? AND "seq" = ?'

    def fetch(seq: int) -> Any:
        rows = engine.query(sql, (key, seq))  # one short read per chunk: the file is not held between chunks
        return rows[0][0] if rows else None

    return verify_pieces(fetch, label, digest, size, chunks)


def open_blob(engine: SQLiteEngine, key: str, label: str) -> io.BufferedReader:
    """A blob as a read-only binary file, streamed chunk by chunk; the digest is checked
    at the end (a mismatch raises on the read that reaches it)."""
    return stream(read_chunks(engine, key, label))


# ------------------------------------------------- the engine-level calls artifacts.store needs
def write(engine: SQLiteEngine, body: Callable[[sqlite3.Connection], Any]) -> Any:
    """``body(conn)`` in one write transaction (the twin of :func:`.pg_blobs.write`)."""
    return engine.write(body)


def engine_chunk_size(engine: SQLiteEngine) -> int:
    with engine.reading() as conn:
        return chunk_size(conn)


def has_blob(engine: SQLiteEngine, key: str) -> bool:
    return bool(engine.query(f'SELECT 1 FROM {quote(BLOBS)} WHERE "hash" = ?', (key,)))


def blob_header(engine: SQLiteEngine, key: str) -> tuple[str, int, int] | None:
    """``(digest, size, chunks)`` of a stored blob, or None (the twin of :func:`.pg_blobs.blob_header`)."""
    with engine.reading() as conn:
        return header(conn, key)


def read_chunk(engine: SQLiteEngine, key: str, seq: int) -> bytes | None:
    """Chunk ``seq`` of a blob as stored (unverified: the caller hashes), or None."""
    rows = engine.query(f'SELECT "data" FROM {quote(CHUNKS)} WHERE "hash" = ? AND "seq" = ?', (key, seq))
    return rows[0][0] if rows else None
