"""The side tables of a copy between SQLite and PostgreSQL (:mod:`xetrack.copy_pg`):
predictions, artifacts with their bytes, and the model registry with its versions' bytes.

>>> xetrack.copy("laptop.db", "postgresql://ana@db-host/experiments")  # doctest: +SKIP

The same rules as a copy between two files (:mod:`xetrack.copy_side`), through each
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
copy that was killed goes on where it stopped when run again.
"""

from __future__ import annotations

from itertools import groupby
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .artifacts import ARTIFACTS, ARTIFACTS_DDL, Source, keeper, store
from .errors import IntegrityError
from .models import ALIASES, MODELS, MODELS_DDL, _stored_kind_in
from .runs import PREDICTIONS_DDL, PREDICTIONS_TABLE
from .schema import ASSETS_TABLE, quote

if TYPE_CHECKING:
    from .copy import CopyResult

BATCH = 1_000
ARTIFACT_COLUMNS = ("track_id", "table", "name", "type", "hash", "size", "created")
PREDICTION_COLUMNS = ("track_id", "table", "name", "idx", "prediction", "actual")
MODEL_COLUMNS = ("name", "version", "hash", "kind", "track_id", "table", "description", "created")


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(quote(c) for c in columns)


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

    def __init__(self, src: Any, dst: Any, assets: bool, result: "CopyResult") -> None:
        self.src, self.dst, self.assets, self.result = src, dst, assets, result

    def run(self, tables: Sequence[str]) -> None:
        from . import meta

        for table in tables:
            self.predictions(table)
            self.artifacts(table)
            meta.copy_between(self.src, self.dst, table)  # tags, run names, kinds, description
        self.models()

    # -- reads of SOURCE ---------------------------------------------------------
    def _sqlite_pages(self, side: str, columns: Sequence[str], table: str) -> Iterator[list[tuple[Any, ...]]]:
        last = -(2**63)
        while True:
            rows = self.src.query(f'SELECT rowid, {_cols(columns)} FROM {quote(side)} WHERE "table" = ? AND rowid > ? '
                                  "ORDER BY rowid LIMIT ?", (table, last, BATCH))
            if not rows:
                return
            last = rows[-1][0]
            yield [tuple(r[1:]) for r in rows]

    # -- predictions ---------------------------------------------------------------
    def predictions(self, table: str) -> None:
        from .store import pg_side

        if self.src.dialect == "postgres":
            pages = pg_side.prediction_pages(self.src, table, BATCH)
        else:
            pages = self._sqlite_pages(PREDICTIONS_TABLE, PREDICTION_COLUMNS, table)
        for rows in pages:
            if self.dst.dialect == "postgres":
                self.result.predictions += pg_side.put_predictions(self.dst, rows)
                continue
            insert = f"INSERT OR IGNORE INTO {quote(PREDICTIONS_TABLE)} ({_cols(PREDICTION_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"

            def body(conn: Any) -> int:
                conn.execute(PREDICTIONS_DDL)
                return sum(max(0, conn.execute(insert, row).rowcount) for row in rows)

            self.result.predictions += self.dst.write(body)

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
            raise IntegrityError(f"{label} are corrupt: they do not hash to the digest they were stored "
                                 f"with (BLAKE2b {digest[:16]}...); they were not copied") from None
        self.result.blobs += 1

    def artifacts(self, table: str) -> None:
        if self.src.dialect == "postgres":
            from .store import pg_blobs

            entries = pg_blobs.artifact_rows(self.src, table, None, ARTIFACT_COLUMNS)
        else:
            entries = [r for page in self._sqlite_pages(ARTIFACTS, ARTIFACT_COLUMNS, table) for r in page]
        if not entries:
            return
        if self.assets:
            for key in sorted({row[4] for row in entries}):
                self.blob(key)
        for start in range(0, len(entries), BATCH):
            added, left_out = self._put_entries(entries[start:start + BATCH])
            self.result.artifacts += added
            self.result.left_out += left_out

    def _put_entries(self, rows: list[tuple[Any, ...]]) -> tuple[int, int]:
        """Entries TARGET lacks whose bytes it holds; returns (added, left out)."""
        ops = keeper(self.dst)
        if self.dst.dialect == "postgres":
            def put(conn: Any, row: tuple[Any, ...]) -> int:
                return ops.put_artifact(conn, row, replace=False)
        else:
            insert = f"INSERT OR IGNORE INTO {quote(ARTIFACTS)} ({_cols(ARTIFACT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)"

            def put(conn: Any, row: tuple[Any, ...]) -> int:
                conn.execute(ARTIFACTS_DDL)
                return max(0, conn.execute(insert, row).rowcount)

        def body(conn: Any) -> tuple[int, int]:
            ops.create_tables(conn)
            stored = [row for row in rows if ops.header(conn, row[4]) is not None]
            return sum(put(conn, row) for row in stored), len(rows) - len(stored)

        return ops.write(self.dst, body)

    # -- the registry --------------------------------------------------------------
    def models(self) -> None:
        if self.src.dialect == "postgres":
            from .store import pg_models

            versions, aliases = pg_models.all_versions(self.src), pg_models.all_aliases(self.src)
        else:
            versions = self.src.query(f'SELECT {_cols(MODEL_COLUMNS)} FROM {quote(MODELS)} ORDER BY "name", "version"')
            aliases = self.src.query(f'SELECT "name", "alias", "version" FROM {quote(ALIASES)} ORDER BY "alias"')
        if not versions:
            return
        if self.assets:
            for key in sorted({v[2] for v in versions if v[3] == "artifact"}):
                self.blob(key)
        registry = _PgRegistry(self.dst) if self.dst.dialect == "postgres" else _SQLiteRegistry(self.dst)
        for name, group in groupby(versions, key=lambda v: v[0]):
            rows = [tuple(v) for v in group]  # a list: the transaction may run twice
            pointers = [(alias, version) for n, alias, version in aliases if n == name]
            added, pointed, left_out = registry.write(lambda conn: self._versions(registry, conn, rows, pointers))
            self.result.models += added
            self.result.aliases += pointed
            self.result.left_out += left_out

    def _versions(self, registry: Any, conn: Any, versions: list[tuple[Any, ...]],
                  pointers: list[tuple[str, int]]) -> tuple[int, int, int]:
        """Inside TARGET's transaction: one name's versions and aliases."""
        became: dict[int, int] = {}
        added = pointed = left_out = 0
        for name, version, key, kind, *rest, created in versions:
            found = registry.same(conn, name, key, created)
            if found is not None:
                became[version] = found
                continue
            if kind == "asset" and self.assets and registry.kind(conn, key) is None:
                data = self.src.asset_get(key)
                if data is not None:
                    registry.put_asset(conn, key, data)
            if registry.kind(conn, key) is None:
                left_out += 1
                continue
            became[version] = registry.insert(conn, (name, key, kind, *rest, created))
            added += 1
        for alias, version in pointers:
            if version in became:
                pointed += registry.point(conn, versions[0][0], alias, became[version])
        return added, pointed, left_out


class _PgRegistry:
    """TARGET's registry on PostgreSQL (:mod:`.store.pg_models`)."""

    def __init__(self, engine: Any) -> None:
        from .store import pg_models

        self.engine, self.pg = engine, pg_models

    def write(self, body: Any) -> Any:
        return self.pg.write(self.engine, body, "copied model versions")

    def same(self, conn: Any, name: str, key: str, created: str) -> int | None:
        return self.pg.same_version(conn, name, key, created)

    def kind(self, conn: Any, key: str) -> str | None:
        return self.pg.stored_kind(conn, key)

    def put_asset(self, conn: Any, key: str, data: bytes) -> None:
        self.pg.put_asset(conn, key, data)

    def insert(self, conn: Any, row: tuple[Any, ...]) -> int:
        number = self.pg.next_version(conn, row[0])
        self.pg.insert_version(conn, (row[0], number, *row[1:]))
        return number

    def point(self, conn: Any, name: str, alias: str, version: int) -> int:
        return self.pg.point(conn, name, alias, version, replace=False)


class _SQLiteRegistry:
    """TARGET's registry in a SQLite file (the SQL of :mod:`xetrack.models`)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def write(self, body: Any) -> Any:
        def inner(conn: Any) -> Any:
            for statement in MODELS_DDL:
                conn.execute(statement)
            return body(conn)

        return self.engine.write(inner)

    def same(self, conn: Any, name: str, key: str, created: str) -> int | None:
        row = conn.execute(f'SELECT "version" FROM {quote(MODELS)} WHERE "name" = ? AND "hash" = ? AND "created" = ? '
                           'ORDER BY "version" LIMIT 1', (name, key, created)).fetchone()
        return None if row is None else row[0]

    def kind(self, conn: Any, key: str) -> str | None:
        return _stored_kind_in(conn, key)

    def put_asset(self, conn: Any, key: str, data: bytes) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(ASSETS_TABLE)} (key TEXT PRIMARY KEY, value BLOB)")
        conn.execute(f"INSERT OR IGNORE INTO {quote(ASSETS_TABLE)} (key, value) VALUES (?, ?)", (key, data))

    def insert(self, conn: Any, row: tuple[Any, ...]) -> int:
        (number,) = conn.execute(f'SELECT coalesce(max("version"), 0) + 1 FROM {quote(MODELS)} WHERE "name" = ?',
                                 (row[0],)).fetchone()
        conn.execute(f"INSERT INTO {quote(MODELS)} ({_cols(MODEL_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (row[0], number, *row[1:]))
        return number

    def point(self, conn: Any, name: str, alias: str, version: int) -> int:
        return max(0, conn.execute(f'INSERT OR IGNORE INTO {quote(ALIASES)} ("name", "alias", "version") '
                                   "VALUES (?, ?, ?)", (name, alias, version)).rowcount)
