"""The side tables of a copy between two SQLite files (:mod:`.files`): runs,
predictions, artifacts with their bytes, and the model registry with the bytes of its
versions.

Called once the experiment tables are copied, inside the copy's one transaction of
TARGET (all or nothing); SOURCE is only read.

- ``xetrack_tags``, ``xetrack_run_names``, ``xetrack_descriptions`` of each copied
  table: what TARGET lacks is added, TARGET's own values win;
- ``xetrack_runs`` of each copied table: a run TARGET lacks is added. A run TARGET has
  is kept, unless TARGET still says ``running`` and SOURCE says finished, failed or
  killed: then SOURCE's row replaces it (the worker finished since the last copy).
- ``xetrack_predictions`` of each copied table: added unless TARGET has the same
  ``(track_id, table, name, idx)``.
- ``xetrack_artifacts`` of each copied table: added unless TARGET has an entry of the
  same ``(track_id, table, name)`` (TARGET's entry wins).
- Artifact bytes (``xetrack_blobs``/``xetrack_chunks``) referenced by the copied entries
  and by the copied model versions: one chunk read and written at a time, up to
  ``BLOB_BYTES_PER_BATCH`` per transaction, the header last, in the transaction of the
  final chunks, after the bytes were checked against SOURCE's digest. A hash TARGET
  holds with the same digest is not copied again; with another digest the copy refuses
  (:class:`~xetrack.errors.IntegrityError`) before writing anything.
- The model registry, file-wide whatever ``tables`` says: see :meth:`SideCopy.models`.

Every statement is SQLite's: :mod:`xetrack.store.sqlite.copy_side` (reached as
``dialect_features("sqlite").copy_side``, its file-to-file calls typed by
:class:`~xetrack.store.features.SQLiteFileCopySideSQL`) and the chunk calls of SQLite's
``blobs`` feature; this module decides what is copied, in which order and in which
transaction.

An artifact entry or a model version is copied only when its bytes are in TARGET once
the bytes are copied: with ``assets=False`` (nothing stored is copied), only the ones
whose bytes TARGET already holds. The others are counted in ``CopyResult.left_out``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from ..errors import IntegrityError
from ..store import dialect_features
from ..store.chunks import hasher
from ..store.meta_sql import COPY_COLUMNS
from ..store.tables import (
    ARTIFACT_COLUMNS,
    ARTIFACTS,
    BLOBS,
    MODELS,
    PREDICTION_COLUMNS,
    PREDICTIONS,
    RUN_COLUMNS,
    RUNS,
)
from .result import CopyResult

if TYPE_CHECKING:
    from ..store.features import SQLiteFileCopySideSQL, SQLiteFileCopySQL

#: Bytes of chunks written per transaction when copying one blob.
BLOB_BYTES_PER_BATCH = 64 * 2**20
_ROWS_PER_BATCH = 5_000
_TIMEOUT = 60.0  # TARGET's busy timeout, as files.py's


class SideCopy:
    """Copies the side rows of ``tables`` (SOURCE's names) and the registry into TARGET.

    ``src`` and ``dst`` are the copy's two connections, handed to SQLite's ``copy_side``
    (every statement) and ``blobs`` (the chunks) feature modules.
    """

    def __init__(
        self,
        src: Any,
        dst: Any,
        source: str,
        target: str,
        tables: list[str],
        assets: bool,
        result: CopyResult,
    ) -> None:
        sqlite = dialect_features("sqlite")
        ends = cast("SQLiteFileCopySQL", sqlite.copy)
        self.side = cast("SQLiteFileCopySideSQL", sqlite.copy_side)
        self.blobs = sqlite.blobs
        self.src, self.dst, self.source, self.target = src, dst, source, target
        self.tables, self.assets, self.result = tables, assets, result
        self.transaction = lambda body: ends.transaction(dst, body, _TIMEOUT)

    # -- which bytes -------------------------------------------------------------
    def _collision(self, key: str, theirs: str, ours: str) -> IntegrityError:
        return IntegrityError(
            f"Hash {key} holds different bytes in {self.target!r} (BLAKE2b {theirs[:16]}...) than in "
            f"{self.source!r} (BLAKE2b {ours[:16]}...): a hash collision, or one of the files is "
            "damaged. Nothing under that hash was copied"
        )

    def check(self) -> None:
        """Refuse, before anything is written, when TARGET holds a hash SOURCE's copied
        entries use with other bytes."""
        if not (self.side.has(self.src, BLOBS) and self.side.has(self.dst, BLOBS)):
            return
        keys = [self.side.model_hashes(self.src)] + [self.side.artifact_hashes(self.src, t) for t in self.tables]
        for key in (k for each in keys for k in each):
            ours, theirs = self.blobs.header(self.src, key), self.blobs.header(self.dst, key)
            if ours is not None and theirs is not None and ours[0] != theirs[0]:
                raise self._collision(key, theirs[0], ours[0])

    def _in_target(self, key: str, kind: str = "artifact") -> bool:
        """Under the write lock: whether TARGET holds these bytes (for a blob, with
        SOURCE's digest when SOURCE has one)."""
        if kind == "asset":
            return self.side.has_asset(self.dst, key)
        if kind != "artifact":
            return False
        theirs = self.blobs.header(self.dst, key)
        if theirs is None:
            return False
        ours = self.blobs.header(self.src, key)
        if ours is not None and ours[0] != theirs[0]:
            raise self._collision(key, theirs[0], ours[0])
        return True

    # -- bytes -------------------------------------------------------------------
    def blob(self, key: str) -> None:
        """Copy one blob unless TARGET has it, chunk by chunk, verified against SOURCE's
        digest; the header is written last, with the final chunks."""
        found = self.blobs.header(self.src, key)
        if found is None:  # SOURCE lacks the bytes: the entries pointing at them stay out
            return
        digest, size, count = found
        if self._in_target(key):
            return
        created = self.side.blob_created(self.src, key)
        label = f"Artifact bytes {key} in {self.source!r}"
        state: dict[str, Any] = {"check": hasher(), "seq": 0, "total": 0}

        def batch() -> tuple[Any, int, int, bool]:
            self.blobs.create_tables(self.dst)
            if self._in_target(key):  # stored meanwhile by another process
                return None, count, size, False
            check, seq, total, written = state["check"].copy(), state["seq"], state["total"], 0
            if seq == 0:
                self.blobs.begin_upload(self.dst, key)  # a gc of TARGET meanwhile leaves the chunks alone
            while seq < count and written < BLOB_BYTES_PER_BATCH:
                data = self.side.chunk(self.src, key, seq)
                if data is None:
                    raise IntegrityError(f"{label} are damaged: chunk {seq + 1} of {count} is missing")
                check.update(data)
                self.blobs.write_chunks(self.dst, key, [(seq, data)])
                written += len(data)
                total += len(data)
                seq += 1
            if seq < count:
                return check, seq, total, False
            if total != size or check.hexdigest() != digest:
                raise IntegrityError(
                    f"{label} are corrupt: {total} bytes hashing to BLAKE2b {check.hexdigest()[:16]}..., "
                    f"stored as {size} bytes with BLAKE2b {digest[:16]}...; they were not copied"
                )
            if self.blobs.stored_chunks(self.dst, key) != (count, size):
                raise RuntimeError(
                    f"Chunks of {key} went away from {self.target!r} while they were being copied "
                    "(a concurrent 'xt assets gc'?); copy again"
                )
            self.blobs.write_header(self.dst, key, digest, size, count, created)
            self.blobs.end_upload(self.dst, key)
            return check, seq, total, True

        while True:
            check, seq, total, done = self.transaction(batch)
            if check is None:
                return
            state.update(check=check, seq=seq, total=total)  # only once committed
            if done:
                self.result.blobs += 1
                return

    # -- rows --------------------------------------------------------------------
    def _pages(self, name: str, columns: tuple[str, ...], table: str) -> Iterator[list[tuple[Any, ...]]]:
        """SOURCE's rows of side table ``name`` for ``table``, in the order they were written, a batch at a time."""
        return self.side.side_pages(self.src, name, columns, table, _ROWS_PER_BATCH)

    def runs(self, table: str) -> None:
        for rows in self._pages(RUNS, RUN_COLUMNS, table):
            self.result.runs += self.transaction(partial(self.side.merge_runs, self.dst, rows))

    def predictions(self, table: str) -> None:
        for rows in self._pages(PREDICTIONS, PREDICTION_COLUMNS, table):
            self.result.predictions += self.transaction(partial(self.side.add_predictions, self.dst, rows))

    def metadata(self, table: str) -> None:
        """Tags, run names and the description of ``table`` (TARGET's own win)."""
        added = 0
        for name, columns in COPY_COLUMNS.items():
            for rows in self._pages(name, columns, table):
                added += self.transaction(partial(self.side.add_copied, self.dst, name, rows))
        if added:  # cached runs() frames of TARGET go stale
            self.transaction(partial(self.side.bump, self.dst))

    def artifacts(self, table: str) -> None:
        if self.assets:
            for key in self.side.artifact_hashes(self.src, table):
                self.blob(key)
        key_at = ARTIFACT_COLUMNS.index("hash")

        def body(rows: list[tuple[Any, ...]]) -> tuple[int, int]:
            stored = [row for row in rows if self._in_target(row[key_at])]
            return (self.side.add_artifacts(self.dst, stored) if stored else 0), len(rows) - len(stored)

        for rows in self._pages(ARTIFACTS, ARTIFACT_COLUMNS, table):
            copied, left_out = self.transaction(partial(body, rows))
            self.result.artifacts += copied
            self.result.left_out += left_out

    # -- the registry ------------------------------------------------------------
    def models(self) -> None:
        """Carry SOURCE's model versions and aliases over, whatever ``tables`` says.

        A version is the same registration as one of TARGET's when name, hash and
        ``created`` are equal: it is not added again. The others are appended, in
        SOURCE's version order, as TARGET's next numbers (TARGET's numbering never
        changes). A SOURCE alias is set only when TARGET has no alias of that name for
        the model; it points at the number its version has in TARGET.
        """
        if not self.side.has(self.src, MODELS):
            return
        if self.assets:
            for key in self.side.model_hashes(self.src):
                self.blob(key)
        group: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = []
        size = 0
        for name in self.side.model_names(self.src):
            versions = self.side.versions_of(self.src, name)
            aliases = self.side.aliases_of(self.src, name)
            group.append((versions, aliases))
            size += len(versions) + len(aliases)
            if size >= _ROWS_PER_BATCH:
                self._write_models(group)
                group, size = [], 0
        if group:
            self._write_models(group)

    def _write_models(self, group: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]) -> None:
        def body() -> tuple[int, int, int]:
            self.side.create_registry(self.dst)
            added = pointed = left_out = 0
            for versions, aliases in group:
                became: dict[int, int] = {}
                for name, version, key, kind, *rest, created in versions:
                    found = self.side.same_version(self.dst, name, key, created)
                    if found is not None:
                        became[version] = found
                        continue
                    if not self._in_target(key, kind):
                        left_out += 1
                        continue
                    became[version] = self.side.add_version(self.dst, (name, key, kind, *rest, created))
                    added += 1
                for alias, version in aliases:
                    if version in became:
                        pointed += self.side.point(self.dst, versions[0][0], alias, became[version])
            return added, pointed, left_out

        added, pointed, left_out = self.transaction(body)
        self.result.models += added
        self.result.aliases += pointed
        self.result.left_out += left_out

    # -- all of it -----------------------------------------------------------------
    def run(self) -> None:
        for table in self.tables:
            self.runs(table)
            self.predictions(table)
            self.artifacts(table)
            self.metadata(table)
        self.models()
