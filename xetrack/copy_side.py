"""The side tables of a copy (:mod:`xetrack.copy`): runs, predictions, artifacts with
their bytes, and the model registry with the bytes of its versions.

Called by ``xetrack.copy`` once the experiment tables are copied, inside the copy's one
transaction of TARGET (all or nothing); SOURCE is only read.

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

An artifact entry or a model version is copied only when its bytes are in TARGET once
the bytes are copied: with ``assets=False`` (nothing stored is copied), only the ones
whose bytes TARGET already holds. The others are counted in ``CopyResult.left_out``.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, Iterator

from .artifacts import ARTIFACTS, ARTIFACTS_DDL
from .errors import IntegrityError
from .models import ALIASES, MODELS, MODELS_DDL
from .runs import PREDICTIONS_DDL, PREDICTIONS_TABLE, RUNS_DDL, RUNS_TABLE, STATUSES
from .schema import ASSETS_TABLE, quote
from .store import blobs
from .store.base import has_table

if TYPE_CHECKING:
    from .copy import CopyResult

#: Bytes of chunks written per transaction when copying one blob.
BLOB_BYTES_PER_BATCH = 64 * 2**20
_ROWS_PER_BATCH = 5_000

_RUN_COLUMNS = ("track_id", "table", "status", "start", "end", "error", "pid", "host")
_PREDICTION_COLUMNS = ("track_id", "table", "name", "idx", "prediction", "actual")
_ARTIFACT_COLUMNS = ("track_id", "table", "name", "type", "hash", "size", "created")
_MODEL_COLUMNS = ("name", "version", "hash", "kind", "track_id", "table", "description", "created")
_FINAL = STATUSES[1:]  # finished, failed, killed


def _names(columns: tuple[str, ...]) -> str:
    return ", ".join(quote(c) for c in columns)


class SideCopy:
    """Copies the side rows of ``tables`` (SOURCE's names) and the registry into TARGET."""

    def __init__(
        self,
        src: sqlite3.Connection,
        dst: sqlite3.Connection,
        source: str,
        target: str,
        tables: list[str],
        assets: bool,
        result: "CopyResult",
    ) -> None:
        from .copy import _transaction

        self.src, self.dst, self.source, self.target = src, dst, source, target
        self.tables, self.assets, self.result = tables, assets, result
        self.transaction = lambda body: _transaction(dst, body)

    # -- which bytes -------------------------------------------------------------
    def _hashes(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[str]:
        cursor = self.src.execute(sql, params)  # its own cursor: other reads do not reset it
        while True:
            page = cursor.fetchmany(1000)
            if not page:
                return
            for (key,) in page:
                yield key

    def _artifact_hashes(self, table: str) -> Iterator[str]:
        if not has_table(self.src, ARTIFACTS):
            return iter(())
        sql = f'SELECT DISTINCT "hash" FROM main.{quote(ARTIFACTS)} WHERE "table" = ? COLLATE NOCASE ORDER BY "hash"'
        return self._hashes(sql, (table,))

    def _model_hashes(self) -> Iterator[str]:
        if not has_table(self.src, MODELS):
            return iter(())
        sql = f"SELECT DISTINCT \"hash\" FROM main.{quote(MODELS)} WHERE \"kind\" = 'artifact' ORDER BY \"hash\""
        return self._hashes(sql)

    def _collision(self, key: str, theirs: str, ours: str) -> IntegrityError:
        return IntegrityError(
            f"Hash {key} holds different bytes in {self.target!r} (BLAKE2b {theirs[:16]}...) than in "
            f"{self.source!r} (BLAKE2b {ours[:16]}...): a hash collision, or one of the files is "
            "damaged. Nothing under that hash was copied"
        )

    def check(self) -> None:
        """Refuse, before anything is written, when TARGET holds a hash SOURCE's copied
        entries use with other bytes."""
        if not (has_table(self.src, blobs.BLOBS) and has_table(self.dst, blobs.BLOBS)):
            return
        keys = [self._model_hashes()] + [self._artifact_hashes(t) for t in self.tables]
        for key in (k for each in keys for k in each):
            ours, theirs = blobs.header(self.src, key), blobs.header(self.dst, key)
            if ours is not None and theirs is not None and ours[0] != theirs[0]:
                raise self._collision(key, theirs[0], ours[0])

    def _in_target(self, key: str, kind: str = "artifact") -> bool:
        """Under the write lock: whether TARGET holds these bytes (for a blob, with
        SOURCE's digest when SOURCE has one)."""
        if kind == "asset":
            sql = f"SELECT 1 FROM main.{quote(ASSETS_TABLE)} WHERE key = ?"
            return has_table(self.dst, ASSETS_TABLE) and self.dst.execute(sql, (key,)).fetchone() is not None
        if kind != "artifact":
            return False
        theirs = blobs.header(self.dst, key)
        if theirs is None:
            return False
        ours = blobs.header(self.src, key)
        if ours is not None and ours[0] != theirs[0]:
            raise self._collision(key, theirs[0], ours[0])
        return True

    # -- bytes -------------------------------------------------------------------
    def blob(self, key: str) -> None:
        """Copy one blob unless TARGET has it, chunk by chunk, verified against SOURCE's
        digest; the header is written last, with the final chunks."""
        found = blobs.header(self.src, key)
        if found is None:  # SOURCE lacks the bytes: the entries pointing at them stay out
            return
        digest, size, count = found
        if self._in_target(key):
            return
        (created,) = self.src.execute(
            f'SELECT "created" FROM main.{quote(blobs.BLOBS)} WHERE "hash" = ?', (key,)
        ).fetchone()
        read = f'SELECT "data" FROM main.{quote(blobs.CHUNKS)} WHERE "hash" = ? AND "seq" = ?'
        label = f"Artifact bytes {key} in {self.source!r}"
        state: dict[str, Any] = {"check": blobs.hasher(), "seq": 0, "total": 0}

        def batch() -> tuple[Any, int, int, bool]:
            blobs.create_tables(self.dst)
            if self._in_target(key):  # stored meanwhile by another process
                return None, count, size, False
            check, seq, total, written = state["check"].copy(), state["seq"], state["total"], 0
            if seq == 0:
                blobs.begin_upload(self.dst, key)  # a gc of TARGET meanwhile leaves the chunks alone
            while seq < count and written < BLOB_BYTES_PER_BATCH:
                row = self.src.execute(read, (key, seq)).fetchone()
                if row is None:
                    raise IntegrityError(f"{label} are damaged: chunk {seq + 1} of {count} is missing")
                check.update(row[0])
                blobs.write_chunks(self.dst, key, [(seq, row[0])])
                written += len(row[0])
                total += len(row[0])
                seq += 1
            if seq < count:
                return check, seq, total, False
            if total != size or check.hexdigest() != digest:
                raise IntegrityError(
                    f"{label} are corrupt: {total} bytes hashing to BLAKE2b {check.hexdigest()[:16]}..., "
                    f"stored as {size} bytes with BLAKE2b {digest[:16]}...; they were not copied"
                )
            if blobs.stored_chunks(self.dst, key) != (count, size):
                raise RuntimeError(
                    f"Chunks of {key} went away from {self.target!r} while they were being copied "
                    "(a concurrent 'xt assets gc'?); copy again"
                )
            blobs.write_header(self.dst, key, digest, size, count, created)
            blobs.end_upload(self.dst, key)
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
    def _pages(self, side: str, columns: tuple[str, ...], table: str) -> Iterator[list[tuple[Any, ...]]]:
        """SOURCE's rows of ``side`` for ``table``, in rowid order, a batch at a time."""
        if not has_table(self.src, side):
            return
        sql = (
            f"SELECT rowid, {_names(columns)} FROM main.{quote(side)} "
            'WHERE "table" = ? COLLATE NOCASE AND rowid > ? ORDER BY rowid LIMIT ?'
        )
        last = -(2**63)
        while True:
            rows = self.src.execute(sql, (table, last, _ROWS_PER_BATCH)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [row[1:] for row in rows]

    def runs(self, table: str) -> None:
        final = ", ".join(f"'{s}'" for s in _FINAL)
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in _RUN_COLUMNS[2:])
        sql = (
            f"INSERT INTO main.{quote(RUNS_TABLE)} ({_names(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))}) "
            f'ON CONFLICT ("track_id", "table") DO UPDATE SET {updates} '
            f"WHERE {quote(RUNS_TABLE)}.\"status\" = 'running' AND excluded.\"status\" IN ({final})"
        )
        for rows in self._pages(RUNS_TABLE, _RUN_COLUMNS, table):
            self.result.runs += self.transaction(lambda: self._insert(RUNS_DDL, sql, rows))

    def predictions(self, table: str) -> None:
        sql = (
            f"INSERT OR IGNORE INTO main.{quote(PREDICTIONS_TABLE)} ({_names(_PREDICTION_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_PREDICTION_COLUMNS))})"
        )
        for rows in self._pages(PREDICTIONS_TABLE, _PREDICTION_COLUMNS, table):
            self.result.predictions += self.transaction(lambda: self._insert(PREDICTIONS_DDL, sql, rows))

    def metadata(self, table: str) -> None:
        """Tags, run names and the description of ``table`` (TARGET's own win)."""
        from . import meta

        added = 0
        for name, columns in meta.COPY_COLUMNS.items():
            ddl, sql = meta.copy_sql(name)
            for rows in self._pages(name, columns, table):
                added += self.transaction(lambda: self._insert(ddl, sql, rows))
        if added:  # cached runs() frames of TARGET go stale
            self.transaction(lambda: meta.bump(self.dst))

    def _insert(self, ddl: str, sql: str, rows: list[tuple[Any, ...]]) -> int:
        self.dst.execute(ddl)
        return sum(max(0, self.dst.execute(sql, row).rowcount) for row in rows)

    def artifacts(self, table: str) -> None:
        if self.assets:
            for key in self._artifact_hashes(table):
                self.blob(key)
        sql = (
            f"INSERT OR IGNORE INTO main.{quote(ARTIFACTS)} ({_names(_ARTIFACT_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_ARTIFACT_COLUMNS))})"
        )
        key_at = _ARTIFACT_COLUMNS.index("hash")

        def body(rows: list[tuple[Any, ...]]) -> tuple[int, int]:
            stored = [row for row in rows if self._in_target(row[key_at])]
            return (self._insert(ARTIFACTS_DDL, sql, stored) if stored else 0), len(rows) - len(stored)

        for rows in self._pages(ARTIFACTS, _ARTIFACT_COLUMNS, table):
            copied, left_out = self.transaction(lambda: body(rows))
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
        if not has_table(self.src, MODELS):
            return
        if self.assets:
            for key in self._model_hashes():
                self.blob(key)
        select = f'SELECT {_names(_MODEL_COLUMNS)} FROM main.{quote(MODELS)} WHERE "name" = ? ORDER BY "version"'
        has_aliases = has_table(self.src, ALIASES)
        names = [n for (n,) in self.src.execute(f'SELECT DISTINCT "name" FROM main.{quote(MODELS)} ORDER BY "name"')]
        group: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] = []
        size = 0
        for name in names:
            versions = self.src.execute(select, (name,)).fetchall()
            aliases = []
            if has_aliases:
                aliases = self.src.execute(
                    f'SELECT "alias", "version" FROM main.{quote(ALIASES)} WHERE "name" = ? ORDER BY "alias"', (name,)
                ).fetchall()
            group.append((versions, aliases))
            size += len(versions) + len(aliases)
            if size >= _ROWS_PER_BATCH:
                self._write_models(group)
                group, size = [], 0
        if group:
            self._write_models(group)

    def _write_models(self, group: list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]) -> None:
        insert = f"INSERT INTO main.{quote(MODELS)} ({_names(_MODEL_COLUMNS)}) VALUES ({', '.join('?' * len(_MODEL_COLUMNS))})"
        same = f'SELECT "version" FROM main.{quote(MODELS)} WHERE "name" = ? AND "hash" = ? AND "created" = ? ORDER BY "version" LIMIT 1'
        top = f'SELECT coalesce(max("version"), 0) FROM main.{quote(MODELS)} WHERE "name" = ?'
        point = f'INSERT OR IGNORE INTO main.{quote(ALIASES)} ("name", "alias", "version") VALUES (?, ?, ?)'

        def body() -> tuple[int, int, int]:
            for statement in MODELS_DDL:
                self.dst.execute(statement)
            added = pointed = left_out = 0
            for versions, aliases in group:
                became: dict[int, int] = {}
                for name, version, key, kind, *rest, created in versions:
                    found = self.dst.execute(same, (name, key, created)).fetchone()
                    if found is not None:
                        became[version] = found[0]
                        continue
                    if not self._in_target(key, kind):
                        left_out += 1
                        continue
                    number = self.dst.execute(top, (name,)).fetchone()[0] + 1
                    self.dst.execute(insert, (name, number, key, kind, *rest, created))
                    became[version] = number
                    added += 1
                for alias, version in aliases:
                    if version in became:
                        pointed += max(0, self.dst.execute(point, (versions[0][0], alias, became[version])).rowcount)
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
