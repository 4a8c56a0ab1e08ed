"""Artifact bytes and entries on the PostgreSQL engine: the same tables as on SQLite
(:mod:`.blobs`, :mod:`xetrack.artifacts`), in PostgreSQL's SQL, chunks as ``bytea``.

>>> Tracker("postgresql://ana@db-host/exp").log_artifact("model.pt")  # doctest: +SKIP
'53425a65a40a49f4'

The functions taking ``conn`` run inside a transaction opened by :func:`write`; they
have the names and meaning of their twins in :mod:`.blobs`, so
:func:`xetrack.artifacts.store` drives either engine. Chunks are read back one query
each and verified by the same BLAKE2b digest (:func:`.blobs.verify_pieces`): memory
stays bounded whatever the size. Identifiers are ``psycopg.sql.Identifier``; values
are bound.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from psycopg import sql

from ...errors import NotFoundError
from .. import chunks
from ..chunks import FOREIGN_UPLOAD_SECONDS, stream, verify_pieces
from ..tables import ARTIFACT_COLUMNS, ARTIFACTS, BLOBS, CHUNKS, UPLOADS

T = TypeVar("T")


_CREATE_LOCK = 0x78657473  # pg_advisory_xact_lock key: one CREATE of these tables at a time
_I = sql.Identifier
_DDL = (
    sql.SQL(
        'CREATE TABLE IF NOT EXISTS {} ("hash" TEXT PRIMARY KEY, "digest" TEXT NOT NULL, '
        '"size" BIGINT NOT NULL, "chunks" BIGINT NOT NULL, "created" TEXT)'
    ).format(_I(BLOBS)),
    sql.SQL(
        'CREATE TABLE IF NOT EXISTS {} ("hash" TEXT NOT NULL, "seq" BIGINT NOT NULL, '
        '"data" BYTEA NOT NULL, PRIMARY KEY ("hash", "seq"))'
    ).format(_I(CHUNKS)),
    sql.SQL(
        'CREATE TABLE IF NOT EXISTS {} ("hash" TEXT NOT NULL, "pid" BIGINT NOT NULL, "host" TEXT NOT NULL, '
        '"started" DOUBLE PRECISION NOT NULL, PRIMARY KEY ("hash", "pid", "host"))'
    ).format(_I(UPLOADS)),
    sql.SQL(
        'CREATE TABLE IF NOT EXISTS {} ("track_id" TEXT NOT NULL, "table" TEXT NOT NULL, "name" TEXT NOT NULL, '
        '"type" TEXT, "hash" TEXT NOT NULL, "size" BIGINT NOT NULL, "created" TEXT NOT NULL, '
        '"seq" BIGINT GENERATED ALWAYS AS IDENTITY, "step" BIGINT)'
    ).format(_I(ARTIFACTS)),
)
#: An artifact entry's key: run, table, name and step, the step-less entry as step -1 (as on SQLite).
_KEY = sql.SQL('("track_id", "table", "name", coalesce("step", -1))')
_KEY_DDL = sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ").format(_I(ARTIFACTS + "_key"), _I(ARTIFACTS)) + _KEY
_HAS_STEP = (
    "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(quote_ident(current_schema()) || '.' || "
    "quote_ident(%s)) AND attname = 'step' AND NOT attisdropped"
)
#: The UNIQUE constraints of the entries table: before steps, ("track_id", "table", "name").
_UNIQUE = (
    "SELECT conname FROM pg_constraint WHERE contype = 'u' AND conrelid = "
    "to_regclass(quote_ident(current_schema()) || '.' || quote_ident(%s))"
)
_EXISTS = "SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident(%s)) IS NOT NULL"


# ------------------------------------------------------------------ transactions
def write(engine: Any, body: Callable[[Any], T]) -> T:
    """``body(conn)`` in one transaction of ``engine`` (a PostgresEngine), with a bounded
    lock wait, tried again while locked; once more on a reopened connection when the
    server dropped it (``body`` must be safe to run twice, as with SQLite's write)."""
    result: T = engine._run(lambda conn: engine._transact(conn, BLOBS, body))
    return result


def rows(engine: Any, query: Any, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of one read; a table never created reads as none."""
    found: list[tuple[Any, ...]] = engine._run(lambda conn: engine._rows(conn, query, params))
    return found


def has_table(conn: Any, name: str) -> bool:
    return bool(conn.execute(_EXISTS, (name,)).fetchone()[0])


def create_tables(conn: Any) -> None:
    """The blob, chunk, upload and artifact tables, once (concurrent creators wait on a
    lock); then the write lock a garbage collection waits for, or this write waits for
    (:mod:`.pg_gc`), taken before anything is looked at."""
    if not has_table(conn, ARTIFACTS):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
        for statement in _DDL:
            conn.execute(statement)
        conn.execute(_KEY_DDL)
    conn.execute(sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(_I(BLOBS)))
    if not _has_step(conn):
        _add_step(conn)


def _has_step(conn: Any) -> bool:
    return conn.execute(_HAS_STEP, (ARTIFACTS,)).fetchone() is not None


def _add_step(conn: Any) -> None:
    """Upgrade an entries table made before steps, in place and once (concurrent writers
    wait on the creation lock, then find it done): add the ``step`` column, drop the
    (track_id, table, name) key, key by :data:`_KEY`. Existing entries get step NULL."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
    conn.execute(sql.SQL('ALTER TABLE {} ADD COLUMN IF NOT EXISTS "step" BIGINT').format(_I(ARTIFACTS)))
    for (name,) in conn.execute(_UNIQUE, (ARTIFACTS,)).fetchall():
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(_I(ARTIFACTS), _I(name)))
    conn.execute(_KEY_DDL)


def engine_chunk_size(engine: Any) -> int:
    """Bytes per chunk: :data:`~xetrack.store.chunks.CHUNK_SIZE` (a ``bytea`` holds up to 1 GB)."""
    return chunks.CHUNK_SIZE  # read now: tests patch it


def has_blob(engine: Any, key: str) -> bool:
    return bool(rows(engine, sql.SQL('SELECT 1 FROM {} WHERE "hash" = %s').format(_I(BLOBS)), (key,)))


# ------------------------------------------------------------------ inside a write
def header(conn: Any, key: str) -> tuple[str, int, int] | None:
    """``(digest, size, chunks)`` of a stored blob, or None."""
    if not has_table(conn, BLOBS):
        return None
    row = conn.execute(
        sql.SQL('SELECT "digest", "size", "chunks" FROM {} WHERE "hash" = %s').format(_I(BLOBS)), (key,)
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def write_chunks(conn: Any, key: str, pieces: Iterable[tuple[int, Any]]) -> None:
    """Store ``(seq, bytes)`` pieces of ``key``; a chunk left by a killed upload is replaced."""
    query = sql.SQL(
        'INSERT INTO {} ("hash", "seq", "data") VALUES (%s, %s, %s) '
        'ON CONFLICT ("hash", "seq") DO UPDATE SET "data" = excluded."data"'
    ).format(_I(CHUNKS))
    for seq, data in pieces:
        conn.execute(query, (key, seq, bytes(data) if isinstance(data, memoryview) else data))


def stored_chunks(conn: Any, key: str) -> tuple[int, int]:
    """``(count, bytes)`` of the chunks stored under ``key``."""
    row = conn.execute(
        sql.SQL('SELECT count(*), coalesce(sum(octet_length("data")), 0) FROM {} WHERE "hash" = %s').format(_I(CHUNKS)),
        (key,),
    ).fetchone()
    return int(row[0]), int(row[1])


def write_header(conn: Any, key: str, digest: str, size: int, chunks: int, created: str) -> None:
    conn.execute(
        sql.SQL(
            'INSERT INTO {} ("hash", "digest", "size", "chunks", "created") VALUES (%s, %s, %s, %s, %s) '
            'ON CONFLICT ("hash") DO NOTHING'
        ).format(_I(BLOBS)),
        (key, digest, size, chunks, created),
    )


def begin_upload(conn: Any, key: str) -> None:
    """Mark ``key`` as being uploaded by this process (see :func:`.blobs.begin_upload`)."""
    conn.execute(
        sql.SQL(
            'INSERT INTO {} ("hash", "pid", "host", "started") VALUES (%s, %s, %s, %s) '
            'ON CONFLICT ("hash", "pid", "host") DO UPDATE SET "started" = excluded."started"'
        ).format(_I(UPLOADS)),
        (key, os.getpid(), socket.gethostname(), time.time()),
    )


def end_upload(conn: Any, key: str) -> None:
    if has_table(conn, UPLOADS):
        conn.execute(
            sql.SQL('DELETE FROM {} WHERE "hash" = %s AND "pid" = %s AND "host" = %s').format(_I(UPLOADS)),
            (key, os.getpid(), socket.gethostname()),
        )


def uploads_in_progress(conn: Any, clean: bool = True) -> set[str]:
    """Hashes some live process is uploading; with ``clean``, rows of dead uploaders are deleted."""
    if not has_table(conn, UPLOADS):
        return set()
    import psutil

    here, now = socket.gethostname(), time.time()
    live: set[str] = set()
    for key, pid, host, started in conn.execute(
        sql.SQL('SELECT "hash", "pid", "host", "started" FROM {}').format(_I(UPLOADS))
    ).fetchall():
        if psutil.pid_exists(pid) if host == here else now - started < FOREIGN_UPLOAD_SECONDS:
            live.add(key)
        elif clean:
            conn.execute(
                sql.SQL('DELETE FROM {} WHERE "hash" = %s AND "pid" = %s AND "host" = %s').format(_I(UPLOADS)),
                (key, pid, host),
            )
    return live


def put_artifact(conn: Any, row: Sequence[Any], replace: bool = True) -> int:
    """Record one artifact entry (``ARTIFACT_COLUMNS`` order; without the last, ``step``,
    it is NULL), after :func:`create_tables`. ``replace``: a run logging a name again at
    the same step (or again without one) replaces its entry; else an existing entry wins.
    Returns rows written."""
    values = (*row, None) if len(row) == len(ARTIFACT_COLUMNS) - 1 else tuple(row)
    on_conflict = (
        'DO UPDATE SET "type" = excluded."type", "hash" = excluded."hash", "size" = excluded."size", '
        '"created" = excluded."created"'
        if replace
        else "DO NOTHING"
    )
    marks = sql.SQL(", ").join(sql.Placeholder() * len(ARTIFACT_COLUMNS))
    query = (
        sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ").format(
            _I(ARTIFACTS), sql.SQL(", ").join(map(_I, ARTIFACT_COLUMNS)), marks
        )
        + _KEY
        + sql.SQL(" " + on_conflict)
    )
    written: int = conn.execute(query, values).rowcount
    return written


# ------------------------------------------------------------------ reading
def _stepped(engine: Any) -> bool:
    """Whether the entries have steps (a table made before them reads as all NULL until
    a writer upgrades it; a read never does)."""
    return bool(rows(engine, _HAS_STEP, (ARTIFACTS,)))


def artifact_rows(engine: Any, table: str, track_id: str | None, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The entries of ``table`` (of one run): names in the order they were first logged,
    a name's steps in step order (the step-less entry first)."""
    stepped = _stepped(engine)
    picked = [_I(c) if stepped or c != "step" else sql.SQL('NULL AS "step"') for c in columns]
    where = sql.SQL('WHERE "table" = %s') + (sql.SQL("") if track_id is None else sql.SQL(' AND "track_id" = %s'))
    query = sql.SQL("SELECT {} FROM {} ").format(sql.SQL(", ").join(picked), _I(ARTIFACTS)) + where
    params = [table] + ([] if track_id is None else [track_id])
    order = (
        ' ORDER BY min("seq") OVER (PARTITION BY "track_id", "name"), coalesce("step", -1), "seq"'
        if stepped
        else ' ORDER BY "seq"'
    )
    return rows(engine, query + sql.SQL(order), params)


def names_of_hash(engine: Any, table: str, track_id: str | None, key: str) -> list[str]:
    """The names ``key``'s bytes are logged under in ``table`` (of one run), each once."""
    run = sql.SQL("") if track_id is None else sql.SQL(' AND "track_id" = %s')
    query = sql.SQL('SELECT "name" FROM {} WHERE "hash" = %s AND "table" = %s').format(_I(ARTIFACTS)) + run
    found = rows(engine, query + sql.SQL(' ORDER BY "seq"'), [key, table] + ([] if track_id is None else [track_id]))
    return list(dict.fromkeys(n for (n,) in found))


def hash_of_name(engine: Any, table: str, track_id: str | None, name: str, step: int | None = None) -> str | None:
    """The hash of the entry ``name`` points at: at ``step`` when given, else the run's
    latest step (its step-less entry when it has no step). Among runs, the run that
    logged ``name`` last (the latest ``created``, then the latest entry)."""
    run = sql.SQL("") if track_id is None else sql.SQL(' AND "track_id" = %s')
    params: list[Any] = [name, table] + ([] if track_id is None else [track_id])
    query = sql.SQL('SELECT "hash" FROM {} WHERE "name" = %s AND "table" = %s').format(_I(ARTIFACTS)) + run
    if not _stepped(engine):
        if step is not None:
            return None
        query += sql.SQL(' ORDER BY "created" DESC, "seq" DESC LIMIT 1')
    else:
        if step is not None:
            query += sql.SQL(' AND "step" = %s')
            params.append(step)
        query += sql.SQL(
            ' WINDOW runs AS (PARTITION BY "track_id") ORDER BY max("created") OVER runs DESC, '
            'max("seq") OVER runs DESC, coalesce("step", -1) DESC, "created" DESC, "seq" DESC LIMIT 1'
        )
    found = rows(engine, query, params)
    return found[0][0] if found else None


def distinct(engine: Any, column: str, table: str, track_id: str | None = None) -> list[str]:
    """The distinct values of ``column`` ("name" or "track_id") among ``table``'s entries."""
    run = sql.SQL("") if track_id is None else sql.SQL(' AND "track_id" = %s')
    query = (
        sql.SQL('SELECT DISTINCT {} FROM {} WHERE "table" = %s').format(_I(column), _I(ARTIFACTS))
        + run
        + sql.SQL(" ORDER BY 1")
    )
    return [v for (v,) in rows(engine, query, [table] + ([] if track_id is None else [track_id]))]


def read_chunks(engine: Any, key: str, label: str) -> Iterator[bytes]:
    """The bytes of a blob, one chunk (one query) at a time, verified as in :func:`.blobs.read_chunks`."""
    found = rows(
        engine, sql.SQL('SELECT "digest", "size", "chunks" FROM {} WHERE "hash" = %s').format(_I(BLOBS)), (key,)
    )
    if not found:
        raise NotFoundError(f"No stored bytes for {label} in {engine.path!r}")
    query = sql.SQL('SELECT "data" FROM {} WHERE "hash" = %s AND "seq" = %s').format(_I(CHUNKS))

    def fetch(seq: int) -> Any:
        got = rows(engine, query, (key, seq))
        return got[0][0] if got else None

    digest, size, chunks = found[0]
    return verify_pieces(fetch, label, digest, size, chunks)


def open_blob(engine: Any, key: str, label: str) -> Any:
    """A blob as a read-only binary file, streamed chunk by chunk (see :func:`.blobs.open_blob`)."""
    return stream(read_chunks(engine, key, label))


def blob_header(engine: Any, key: str) -> tuple[str, int, int] | None:
    """``(digest, size, chunks)`` of a stored blob, or None."""
    found: tuple[str, int, int] | None = engine._run(lambda conn: header(conn, key))
    return found


def read_chunk(engine: Any, key: str, seq: int) -> bytes | None:
    """Chunk ``seq`` of a blob as stored (unverified: the caller hashes), or None."""
    got = rows(engine, sql.SQL('SELECT "data" FROM {} WHERE "hash" = %s AND "seq" = %s').format(_I(CHUNKS)), (key, seq))
    return bytes(got[0][0]) if got else None


__all__ = [
    "write",
    "create_tables",
    "engine_chunk_size",
    "has_blob",
    "header",
    "write_chunks",
    "stored_chunks",
    "write_header",
    "begin_upload",
    "end_upload",
    "read_chunks",
    "open_blob",
    "put_artifact",
    "artifact_rows",
    "uploads_in_progress",
    "blob_header",
    "read_chunk",
]
