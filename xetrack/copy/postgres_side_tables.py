"""The side tables of a copy between SQLite and PostgreSQL (:mod:`.postgres`):
predictions, artifacts with their bytes, tags, run names, kinds and descriptions, and the
model registry with its versions' bytes.

>>> import xetrack
>>> xetrack.copy("laptop.db", "postgresql://ana@db-host/experiments")  # doctest: +SKIP

The same rules as a copy between two files (:mod:`.files_side_tables`), through each
engine's own calls, so either side may be either engine:

- predictions: added unless TARGET has the same ``(track_id, table, name, idx)``;
- artifact entries: added unless TARGET has one of the same ``(track_id, table, name)``
  (TARGET's wins), and only once TARGET holds their bytes;
- artifact bytes: one chunk read and written at a time, the header last, checked
  against SOURCE's digest (damaged bytes raise :class:`~xetrack.errors.IntegrityError`
  and are not copied); a hash TARGET holds with another digest is refused;
- the registry, whatever ``tables`` says: a version of the same name, hash and
  ``created`` is not added again; the others take TARGET's next numbers; an alias is
  set only where TARGET has none of that name.

Every write is its own short transaction of TARGET, so a second copy adds nothing and a
copy that was killed goes on where it stopped when run again. The reads and writes of
each end are in ``xetrack.store.sqlite.copy_side`` / ``xetrack.store.postgres.copy_side``
(``features(engine).copy_side``); this module decides what goes where.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from itertools import groupby
from typing import Any

from .. import meta
from ..artifacts import Source, keeper, store
from ..errors import IntegrityError
from ..store import features
from .result import CopyResult

BATCH = 1_000


class StoredSource(Source):
    """A blob of another store as a :class:`~xetrack.artifacts.Source`: its chunks read one
    at a time (re-cut to TARGET's chunk size when the sizes differ), its digest known."""

    def __init__(self, engine: Any, key: str, digest: str, size: int, count: int, label: str) -> None:
        self.engine, self.ops, self.key, self.count = engine, keeper(engine), key, count
        self._digest, self.size, self.path = digest, size, label  # path: what store()'s errors name
        first = self._read(0) if count else b""
        self.src_chunk = max(1, len(first))

    def _read(self, seq: int) -> bytes:
        data = self.ops.read_chunk(self.engine, self.key, seq)
        if data is None:
            raise IntegrityError(f"{self.path} are damaged: chunk {seq + 1} of {self.count} is missing")
        return bytes(data)

    def digest(self) -> str:
        return self._digest

    def pieces(self, start: int, stop: int, chunk: int) -> Iterator[tuple[int, Any]]:
        offset = start * chunk
        src_seq, skip = divmod(offset, self.src_chunk)
        buffer = bytearray()
        for seq in range(start, stop):
            while len(buffer) < chunk and src_seq < self.count:
                data = self._read(src_seq)
                src_seq += 1
                buffer += data[skip:] if skip else data
                skip = 0
            if not buffer:
                return
            piece = bytes(buffer[:chunk])
            del buffer[:chunk]
            yield seq, piece


class PgSideCopy:
    """Copies side rows and the registry from ``src`` to ``dst`` (engines: SQLite or
    PostgreSQL, at least one of them PostgreSQL)."""

    def __init__(self, src: Any, dst: Any, assets: bool, result: CopyResult) -> None:
        self.src, self.dst, self.assets, self.result = src, dst, assets, result

    def run(self, tables: Sequence[str]) -> None:
        for table in tables:
            self.predictions(table)
            self.artifacts(table)
            meta.copy_between(self.src, self.dst, table)  # tags, run names, kinds, description
        self.models()

    # -- predictions ---------------------------------------------------------------
    def predictions(self, table: str) -> None:
        put = features(self.dst).copy_side.put_predictions
        for rows in features(self.src).copy_side.prediction_pages(self.src, table, BATCH):
            self.result.predictions += put(self.dst, rows)

    # -- artifacts -----------------------------------------------------------------
    def blob(self, key: str) -> None:
        """Copy one blob TARGET lacks, chunk by chunk, verified against SOURCE's digest."""
        found = keeper(self.src).blob_header(self.src, key)
        if found is None:  # SOURCE lacks the bytes: the entries pointing at them stay out
            return
        digest, size, count = found
        theirs = keeper(self.dst).blob_header(self.dst, key)
        if theirs is not None:
            if theirs[0] != digest:
                raise IntegrityError(
                    f"Hash {key} holds different bytes in {self.dst.path!r} (BLAKE2b {theirs[0][:16]}...) than in "
                    f"{self.src.path!r} (BLAKE2b {digest[:16]}...): a hash collision, or one of the stores is "
                    "damaged. Nothing under that hash was copied"
                )
            return
        label = f"Artifact bytes {key} in {self.src.path!r}"
        try:
            store(self.dst, StoredSource(self.src, key, digest, size, count, label), lambda conn, key: None)
        except ValueError as exc:
            if "changed while" not in str(exc):
                raise
            raise IntegrityError(
                f"{label} are corrupt: they do not hash to the digest they were stored "
                f"with (BLAKE2b {digest[:16]}...); they were not copied"
            ) from None
        self.result.blobs += 1

    def artifacts(self, table: str) -> None:
        entries = features(self.src).copy_side.artifact_entries(self.src, table, BATCH)
        if not entries:
            return
        if self.assets:
            for key in sorted({row[4] for row in entries}):
                self.blob(key)
        put = features(self.dst).copy_side.put_artifacts
        for start in range(0, len(entries), BATCH):
            added, left_out = put(self.dst, entries[start : start + BATCH])  # those whose bytes TARGET holds
            self.result.artifacts += added
            self.result.left_out += left_out

    # -- the registry --------------------------------------------------------------
    def models(self) -> None:
        source = features(self.src).copy_side
        versions, aliases = source.model_versions(self.src), source.model_aliases(self.src)
        if not versions:
            return
        if self.assets:
            for key in sorted({v[2] for v in versions if v[3] == "artifact"}):
                self.blob(key)
        registry = features(self.dst).copy_side
        for name, group in groupby(versions, key=lambda v: v[0]):
            rows = [tuple(v) for v in group]  # a list: the transaction may run twice
            pointers = [(alias, version) for n, alias, version in aliases if n == name]
            write = partial(self._versions, registry, versions=rows, pointers=pointers)  # called with TARGET's conn
            added, pointed, left_out = registry.registry_write(self.dst, write)
            self.result.models += added
            self.result.aliases += pointed
            self.result.left_out += left_out

    def _versions(
        self, registry: Any, conn: Any, versions: list[tuple[Any, ...]], pointers: list[tuple[str, int]]
    ) -> tuple[int, int, int]:
        """Inside TARGET's transaction: one name's versions and aliases."""
        became: dict[int, int] = {}
        added = pointed = left_out = 0
        for name, version, key, kind, *rest, created in versions:
            found = registry.same_version(conn, name, key, created)
            if found is not None:
                became[version] = found
                continue
            if kind == "asset" and self.assets and registry.stored_kind(conn, key) is None:
                data = self.src.asset_get(key)
                if data is not None:
                    registry.put_asset(conn, key, data)
            if registry.stored_kind(conn, key) is None:
                left_out += 1
                continue
            became[version] = registry.add_version(conn, (name, key, kind, *rest, created))
            added += 1
        for alias, version in pointers:
            if version in became:
                pointed += registry.point(conn, versions[0][0], alias, became[version])
        return added, pointed, left_out
