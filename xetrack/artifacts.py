"""Artifacts: files, byte strings, figures and frames kept by a run, stored once by content.

``tracker.log_artifact(...)`` stores the bytes in the database file itself, in chunks
(:mod:`xetrack.store.sqlite.blobs`), under the first 16 hex characters of their BLAKE2b-256
digest, and records one row of ``xetrack_artifacts``: track_id, table, name, type, hash,
size, created, step. The same bytes logged by many runs, or under many names, are stored
once. A run logging a name again replaces its earlier entry, as writing a file over
another does; with ``step=`` (a figure each epoch), each step of a name is an entry of
its own, and logging the same name at the same step again replaces that one.

On PostgreSQL the same tables hold the same rows, chunks as ``bytea``
(:mod:`xetrack.store.postgres.blobs`). The entries' SQL is in :mod:`xetrack.store.sqlite.artifacts`
and :mod:`xetrack.store.postgres.artifacts`, chosen by :func:`xetrack.store.features`;
:func:`keeper` is the engine's byte module and :func:`store` drives either.

Every read checks the bytes against the full digest; bytes that do not match raise
:class:`~xetrack.errors.IntegrityError` naming the artifact and are never handed back.
Deleting runs and garbage collection live in :mod:`xetrack.garbage`.
"""

from __future__ import annotations

import functools
import io
import operator
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .assets import HASH_LENGTH, is_asset_hash
from .errors import NotFoundError
from .store import chunks as chunking
from .store import features
from .store.base import close_matches
from .store.chunks import Hasher, hasher
from .store.tables import ARTIFACTS

if TYPE_CHECKING:
    import pandas as pd


#: A file bigger than this is written in several transactions, the last one making it visible.
BATCH_BYTES = 64 * 2**20
COLUMNS = ("track_id", "name", "type", "hash", "size", "created", "step")
#: The biggest step SQLite and PostgreSQL keep as an integer.
MAX_STEP = 2**63 - 1


# ------------------------------------------------------------------- sources
class Source:
    """Bytes to store, readable twice: once to hash them, once to write them."""

    name: str | None = None
    type: str | None = None
    ext = ""
    size = 0

    def pieces(self, start: int, stop: int, chunk: int) -> Iterator[tuple[int, Any]]:
        """``(seq, bytes)`` for chunks ``start`` to ``stop - 1`` of ``chunk`` bytes."""
        raise NotImplementedError

    def digest(self) -> str:
        check = hasher()
        for _, data in self.pieces(0, chunks_of(self.size, chunking.CHUNK_SIZE), chunking.CHUNK_SIZE):
            check.update(data)
        return check.hexdigest()


class BytesSource(Source):
    def __init__(self, data: Any, type: str = "bytes", ext: str = "") -> None:
        self.view = memoryview(data).cast("B")
        self.size = self.view.nbytes
        self.type, self.ext = type, ext

    def pieces(self, start: int, stop: int, chunk: int) -> Iterator[tuple[int, Any]]:
        for seq in range(start, stop):
            yield seq, self.view[seq * chunk : (seq + 1) * chunk]


class FileSource(Source):
    type = "file"

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.size = os.path.getsize(path)

    def pieces(self, start: int, stop: int, chunk: int) -> Iterator[tuple[int, Any]]:
        with open(self.path, "rb") as handle:
            handle.seek(start * chunk)
            for seq in range(start, stop):
                data = handle.read(min(chunk, self.size - seq * chunk))
                if not data:
                    break  # the file shrank: the digest check catches it
                yield seq, data
            if stop * chunk >= self.size and os.fstat(handle.fileno()).st_size != self.size:
                raise ValueError(
                    f"{self.path!r} changed size while it was being stored; nothing was written. "
                    "Log it again once it is complete"
                )


def chunks_of(size: int, chunk: int) -> int:
    return -(-size // chunk)


def source_of(obj: Any) -> Source:
    """What ``log_artifact`` accepts: a path, bytes, a matplotlib figure or a DataFrame."""
    if isinstance(obj, (str, os.PathLike)):
        path = os.fspath(obj)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path!r} is a folder: log its files with log_artifacts({path!r})")
        if not os.path.exists(path):
            raise FileNotFoundError(f"No file {path!r} to log as an artifact")
        return FileSource(path)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return BytesSource(obj)
    module = type(obj).__module__ or ""
    if module.startswith("matplotlib") and hasattr(obj, "savefig"):
        buffer = io.BytesIO()
        obj.savefig(buffer, format="png")
        return BytesSource(buffer.getbuffer(), "figure", ".png")
    if module.startswith(("pandas", "polars")) and type(obj).__name__ == "DataFrame":
        buffer = io.BytesIO()
        if module.startswith("polars"):
            obj.write_parquet(buffer)
        else:
            obj.to_parquet(buffer)
        return BytesSource(buffer.getbuffer(), "dataframe", ".parquet")
    if hasattr(obj, "read"):
        raise TypeError(
            "log_artifact takes a path, not an open file: pass the file's path, or its bytes (handle.read())"
        )
    raise TypeError(
        f"log_artifact takes a file path, bytes, a matplotlib figure or a DataFrame, "
        f"got {type(obj).__qualname__}. To keep any other object, log it (tracker.log) or "
        "register it (tracker.register_model)"
    )


def check_name(name: Any) -> str:
    """An artifact name is a relative path with '/' separators that stays inside its folder."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"An artifact name must be a non-empty str, got {name!r}")
    clean = name.replace(os.sep, "/") if os.sep != "/" else name
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if "\x00" in clean or clean.startswith("/") or not parts or ".." in parts or ":" in parts[0]:
        raise ValueError(
            f"Artifact name {name!r} must be a relative path inside its folder (no leading '/', no '..', no drive)"
        )
    return "/".join(parts)


def check_step(step: Any) -> int | None:
    """A step is None or an int from 0 (numpy integers too); a bool, a float or a
    negative number is refused, naming ``step``."""
    if step is None:
        return None
    if isinstance(step, bool) or type(step).__name__ == "bool_":
        raise TypeError(f"step must be a non-negative int or None, got the bool {step!r}")
    try:
        value = operator.index(step)
    except TypeError:
        raise TypeError(f"step must be a non-negative int or None, got {type(step).__qualname__} {step!r}") from None
    if not 0 <= value <= MAX_STEP:
        raise ValueError(f"step must be a non-negative int (0 to 2**63 - 1), got {value}")
    return value


# ------------------------------------------------------------------- writing
@dataclass
class _Upload:
    """How far :func:`store` got: the hash of the chunks committed so far, and their count."""

    check: Hasher
    done: int = 0


def keeper(engine: Any) -> Any:
    """The module that keeps bytes for ``engine``: :mod:`.store.blobs` for a SQLite file,
    :mod:`.store.pg_blobs` for PostgreSQL; None when nothing is stored (SKIP_INSERT)."""
    return features(engine).artifacts.blob_store(engine)


def store(engine: Any, source: Source, finish: Callable[[Any, str], Any]) -> tuple[str, Any]:
    """Store ``source``'s bytes unless they are stored; ``finish(conn, hash)`` runs in the
    transaction that makes them visible. Returns ``(hash, what finish returned)``.

    Up to ``BATCH_BYTES`` everything is one transaction. A bigger file is written in
    batches of chunks, each its own transaction (so the WAL stays small and other
    writers get turns), and becomes visible with the last one. The bytes are hashed
    again while written: a file that changed meanwhile raises and stays invisible.
    """
    from .runs import now

    ops = keeper(engine)
    digest = source.digest()
    key = digest[:HASH_LENGTH]
    chunk = ops.engine_chunk_size(engine)
    n = chunks_of(source.size, chunk)
    state = _Upload(hasher())

    def write_batch(conn: Any, stop: int) -> Hasher:
        check = state.check.copy()  # a retried transaction starts from the same state
        for seq, data in source.pieces(state.done, stop, chunk):
            check.update(data)
            ops.write_chunks(conn, key, [(seq, data)])
        return check

    def known(conn: Any) -> bool:
        found = ops.header(conn, key)
        if found is not None and found[0] != digest:
            raise ValueError(f"Two different contents share the hash {key} (a BLAKE2b collision); nothing was written")
        return found is not None

    def last(conn: Any) -> Any:
        ops.create_tables(conn)
        if not known(conn):
            check = write_batch(conn, n)
            if check.hexdigest() != digest:  # rolled back; chunks of earlier batches are gc's
                raise ValueError(
                    f"{getattr(source, 'path', 'The data')!r} changed while it was being stored; "
                    "nothing was written. Log it again once it is complete"
                )
            if ops.stored_chunks(conn, key) != (n, source.size):
                raise RuntimeError(
                    f"Chunks of {key} went away while it was being stored (a concurrent "
                    "'xt assets gc'?); nothing was written. Log it again"
                )
            ops.write_header(conn, key, digest, source.size, n, now())
        ops.end_upload(conn, key)
        return finish(conn, key)

    if source.size <= BATCH_BYTES or ops.has_blob(engine, key):
        return key, ops.write(engine, last)
    per_batch = max(1, BATCH_BYTES // chunk)

    def begin(conn: Any) -> None:
        ops.create_tables(conn)
        ops.begin_upload(conn, key)  # gc leaves our chunks alone until the last transaction

    ops.write(engine, begin)
    try:
        while n - state.done > per_batch:
            stop = state.done + per_batch
            state.check = ops.write(engine, functools.partial(write_batch, stop=stop))
            state.done = stop
        return key, ops.write(engine, last)
    except BaseException:
        try:  # the chunks already committed are garbage now
            ops.write(engine, lambda conn: ops.end_upload(conn, key))
        except Exception:  # noqa: BLE001 - the original error matters more; gc cleans up
            pass
        raise


def record(
    engine: Any, table: str, track_id: str, source: Source, name: str | None, type: str | None, step: Any = None
) -> str:
    """Store one artifact of run ``track_id`` (at ``step``, when given) and record it;
    returns its hash (under Tracker.SKIP_INSERT, only the hash)."""
    from .runs import now

    if type is not None and not isinstance(type, str):
        raise TypeError(f"An artifact type must be a str or None, got {type!r}")
    at = check_step(step)
    wanted = None if name is None else check_name(name)
    if keeper(engine) is None:
        return source.digest()[:HASH_LENGTH]
    entries = features(engine).artifacts

    def finish(conn: Any, key: str) -> None:
        entry = wanted or source.name or key + source.ext
        row = (track_id, table, entry, type or source.type, key, source.size, now(), at)
        entries.put_artifact(conn, row)

    key, _ = store(engine, source, finish)
    return key


def folder_files(folder: Any) -> list[tuple[str, str]]:
    """``(relative name, path)`` of every file under ``folder``, in name order."""
    root = os.fspath(folder)
    if not os.path.isdir(root):
        kind = "a file" if os.path.exists(root) else "missing"
        raise NotADirectoryError(f"{root!r} is {kind}, not a folder; log one file with log_artifact")
    found = []
    for here, dirs, files in os.walk(root):
        dirs.sort()
        for file in files:
            path = os.path.join(here, file)
            if os.path.isfile(path):
                found.append((os.path.relpath(path, root).replace(os.sep, "/"), path))
    return sorted(found)


# ------------------------------------------------------------------- reading
def listing(engine: Any, table: str, track_id: str | None = None) -> pd.DataFrame:
    """The artifact entries of ``table`` (of one run), one row each (``COLUMNS``): names in
    the order they were first logged, a name's steps in step order (``step`` is ``<NA>``
    for an entry logged without one).

    >>> listing(engine, "default")["name"].tolist()  # doctest: +SKIP
    ['metrics.csv']
    """
    import pandas as pd

    rows = features(engine).artifacts.artifact_rows(engine, table, track_id, COLUMNS)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["size"] = frame["size"].astype("Int64")
    frame["step"] = frame["step"].astype("Int64")
    return frame


@dataclass
class Found:
    hash: str
    label: str  # names the artifact in messages


def find(engine: Any, table: str, hash_or_name: Any, track_id: str | None = None, step: Any = None) -> Found:
    """The stored artifact a hash or a name points at: by name, the latest one logged
    under it (a run's latest step), or the one at ``step`` (a name only: bytes have no step)."""
    if not isinstance(hash_or_name, (str, os.PathLike)):
        raise TypeError(f"Pass an artifact's hash or name, got {hash_or_name!r}")
    text = os.fspath(hash_or_name)
    at = check_step(step)
    ops = keeper(engine)
    if ops is None:
        raise NotFoundError(f"No artifact {text!r}: nothing is stored with Tracker.SKIP_INSERT")
    entries = features(engine).artifacts
    if at is None and is_asset_hash(text):
        names = entries.names_of_hash(engine, table, track_id, text)
        if names or (track_id is None and ops.has_blob(engine, text)):
            return Found(text, f"Artifact {names[0]!r} ({text})" if names else f"Artifact {text}")
    name = text.replace(os.sep, "/") if os.sep != "/" else text
    key = entries.hash_of_name(engine, table, track_id, name, step=at)
    if key is not None:
        return Found(key, f"Artifact {name!r}{'' if at is None else f' at step {at}'} ({key})")
    names = entries.distinct(engine, "name", table, track_id)
    if at is not None and name in names:
        raise _no_step(engine, table, name, at, track_id)
    raise _not_found(text, name, names, table, track_id)


def _no_step(engine: Any, table: str, name: str, step: int, track_id: str | None) -> NotFoundError:
    where = f"run {track_id!r} of table {table!r}" if track_id else f"table {table!r}"
    found = features(engine).artifacts.artifact_rows(engine, table, track_id, ("name", "step"))
    steps = sorted({s for n, s in found if n == name and s is not None})
    listed = ", ".join(map(str, steps[:20])) + (", ..." if len(steps) > 20 else "") if steps else "none"
    return NotFoundError(f"No artifact {name!r} at step {step} in {where}. Its steps: {listed}")


def _not_found(text: str, name: str, names: list[str], table: str, track_id: str | None) -> NotFoundError:
    where = f"run {track_id!r} of table {table!r}" if track_id else f"table {table!r}"
    listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") if names else "none"
    return NotFoundError(f"No artifact {text!r} in {where}.{close_matches(name, names)} Artifacts: {listed}")


def chunks(engine: Any, found: Found) -> Iterator[bytes]:
    """The verified bytes of a found artifact, chunk by chunk."""
    return keeper(engine).read_chunks(engine, found.hash, found.label)


def write_verified(pieces: Iterator[bytes], path: str) -> int:
    """Write the bytes to ``path`` through a temporary file that replaces it only once
    every byte is verified: a corrupt artifact leaves no file behind. Returns the size."""
    folder, base = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # open(..., "xb") rather than mkstemp: the file gets the umask's permissions, not 0600.
    temp = os.path.join(folder, f".{base}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    size = 0
    try:
        with open(temp, "xb") as handle:
            for data in pieces:
                handle.write(data)
                size += len(data)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return size


def download(engine: Any, table: str, track_id: str, dest: Any) -> list[str]:
    """Write every artifact of a run under ``dest``, at its name (a name logged at several
    steps: its latest step); returns the paths."""
    if not isinstance(track_id, str):
        raise TypeError(f"track_id must be a str, got {track_id!r}")
    frame = listing(engine, table, track_id)
    if frame.empty:
        runs = features(engine).artifacts.distinct(engine, "track_id", table)
        raise NotFoundError(
            f"Run {track_id!r} has no artifacts in table {table!r}.{close_matches(track_id, runs)} "
            f"Runs with artifacts: {', '.join(runs[:20]) if runs else 'none'}"
        )
    root = os.path.abspath(os.fspath(dest))
    written = []
    latest = dict(zip(frame["name"], frame["hash"]))  # a name's steps list in order: the last wins
    for name, key in latest.items():
        path = os.path.join(root, *check_name(name).split("/"))
        if os.path.commonpath([root, os.path.abspath(path)]) != root:  # never outside dest
            raise ValueError(f"Artifact name {name!r} points outside {root!r}")
        write_verified(chunks(engine, Found(key, f"Artifact {name!r} ({key})")), path)
        written.append(path)
    return written


def open_stream(engine: Any, found: Found) -> io.BufferedReader:
    return keeper(engine).open_blob(engine, found.hash, found.label)


__all__ = [
    "ARTIFACTS",
    "COLUMNS",
    "Found",
    "Source",
    "chunks",
    "check_name",
    "check_step",
    "download",
    "find",
    "folder_files",
    "keeper",
    "listing",
    "open_stream",
    "record",
    "source_of",
    "store",
    "write_verified",
]
