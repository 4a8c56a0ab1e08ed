"""The SQLite end of a copy's side tables: the SQL behind :mod:`xetrack.copy.files_side_tables`
and :mod:`xetrack.copy.postgres_side_tables`.

- a copy between two files calls the "connections" functions on SOURCE's and TARGET's
  ``sqlite3`` connections, inside the copy's one transaction of TARGET. PostgreSQL has
  no such calls: they are typed by
  :class:`~xetrack.store.features.SQLiteFileCopySideSQL`, reached as
  ``dialect_features("sqlite").copy_side``.
- a copy with a PostgreSQL end calls the "engine end" functions, whose twins of the
  same names and signatures are in :mod:`xetrack.store.postgres.copy_side`
  (:class:`~xetrack.store.features.CopySideSQL`, ``features(engine).copy_side``). The
  registry calls among them take the ``conn`` of :func:`registry_write`'s transaction.

>>> from xetrack.store import features, open_engine
>>> engine = open_engine(":memory:")
>>> features(engine).copy_side.model_versions(engine)
[]

The tables' definitions are the ones a Tracker creates them with (:mod:`.ddl`), and the
tags, run names and descriptions are written with :mod:`.meta`'s statements.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ...schema import ASSETS_TABLE, quote
from ..base import has_table
from ..tables import (
    ARTIFACT_COLUMNS,
    ARTIFACTS,
    BLOBS,
    CHUNKS,
    MODEL_ALIASES,
    MODEL_COLUMNS,
    MODELS,
    PREDICTION_COLUMNS,
    PREDICTIONS,
    RUN_COLUMNS,
    RUNS,
)
from .artifacts import ensure_table as ensure_artifacts
from .ddl import MODELS_DDL, PREDICTIONS_DDL, RUNS_DDL
from .meta import copy_sql
from .summary import bump as bump_summary

if TYPE_CHECKING:  # mypy checks this module against the protocols xetrack.copy uses it by
    from ..features import SQLiteFileCopySideSQL
    from . import copy_side as _this

    _checked: SQLiteFileCopySideSQL = _this

_FINAL = ("finished", "failed", "killed", "pruned")  # xetrack.runs.STATUSES[1:]

Row = tuple[Any, ...]


def _names(columns: Sequence[str]) -> str:
    return ", ".join(quote(c) for c in columns)


def _marks(columns: Sequence[str]) -> str:
    return ", ".join("?" * len(columns))


# ============================================================== connections (file to file)
def has(conn: sqlite3.Connection, side: str) -> bool:
    """Whether the file has side table ``side`` (e.g. :data:`MODELS`, ``blobs.BLOBS``)."""
    return has_table(conn, side)


def _keys(cursor: sqlite3.Cursor) -> Iterator[str]:
    while True:  # its own cursor: other reads do not reset it
        page = cursor.fetchmany(1000)
        if not page:
            return
        for (key,) in page:
            yield key


def artifact_hashes(src: sqlite3.Connection, table: str) -> Iterator[str]:
    """The distinct hashes of ``table``'s artifact entries, in order, streamed."""
    if not has_table(src, ARTIFACTS):
        return iter(())
    sql = f'SELECT DISTINCT "hash" FROM main.{quote(ARTIFACTS)} WHERE "table" = ? COLLATE NOCASE ORDER BY "hash"'
    return _keys(src.execute(sql, (table,)))


def model_hashes(src: sqlite3.Connection) -> Iterator[str]:
    """The distinct hashes of the registry's artifact versions, in order, streamed."""
    if not has_table(src, MODELS):
        return iter(())
    sql = f'SELECT DISTINCT "hash" FROM main.{quote(MODELS)} WHERE "kind" = \'artifact\' ORDER BY "hash"'
    return _keys(src.execute(sql))


def has_asset(conn: sqlite3.Connection, key: str) -> bool:
    """Whether the file stores the object ``key``."""
    sql = f"SELECT 1 FROM main.{quote(ASSETS_TABLE)} WHERE key = ?"
    return has_table(conn, ASSETS_TABLE) and conn.execute(sql, (key,)).fetchone() is not None


def blob_created(conn: sqlite3.Connection, key: str) -> str:
    """When the blob ``key`` (whose header exists) was stored."""
    created: str = conn.execute(f'SELECT "created" FROM main.{quote(BLOBS)} WHERE "hash" = ?', (key,)).fetchone()[0]
    return created


def chunk(conn: sqlite3.Connection, key: str, seq: int) -> bytes | None:
    """Chunk ``seq`` of blob ``key`` as stored, or None when it is missing."""
    row = conn.execute(f'SELECT "data" FROM main.{quote(CHUNKS)} WHERE "hash" = ? AND "seq" = ?', (key, seq)).fetchone()
    return None if row is None else row[0]


def side_pages(
    src: sqlite3.Connection, side: str, columns: Sequence[str], table: str, size: int
) -> Iterator[list[Row]]:
    """SOURCE's rows of side table ``side`` for ``table`` (any case), in rowid order,
    ``size`` at a time; none when the table is missing. A column SOURCE's table lacks
    (an artifact's ``step`` in a file made before steps) reads as NULL."""
    if not has_table(src, side):
        return
    sql = (
        f"SELECT rowid, {_present(src.execute(_COLUMNS_OF, (side,)), columns)} FROM main.{quote(side)} "
        'WHERE "table" = ? COLLATE NOCASE AND rowid > ? ORDER BY rowid LIMIT ?'
    )
    last = -(2**63)
    while True:
        rows = src.execute(sql, (table, last, size)).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield [row[1:] for row in rows]


_COLUMNS_OF = "SELECT name FROM pragma_table_info(?, 'main')"


def _present(found: Iterable[tuple[Any, ...]], columns: Sequence[str]) -> str:
    """``columns`` to select, those not ``found`` (rows of ``_COLUMNS_OF``) as NULL."""
    names = {name for (name,) in found}
    return ", ".join(quote(c) if c in names else f"NULL AS {quote(c)}" for c in columns)


def _insert(dst: sqlite3.Connection, ddl: str, sql: str, rows: Sequence[Row]) -> int:
    dst.execute(ddl)
    return sum(max(0, dst.execute(sql, row).rowcount) for row in rows)


def merge_runs(dst: sqlite3.Connection, rows: Sequence[Row]) -> int:
    """Add lifecycle rows (``RUN_COLUMNS``) TARGET lacks; one TARGET says ``running``
    while the row says finished, failed, killed or pruned is replaced. Returns rows changed."""
    final = ", ".join(f"'{s}'" for s in _FINAL)
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in RUN_COLUMNS[2:])
    sql = (
        f"INSERT INTO main.{quote(RUNS)} ({_names(RUN_COLUMNS)}) VALUES ({_marks(RUN_COLUMNS)}) "
        f'ON CONFLICT ("track_id", "table") DO UPDATE SET {updates} '
        f'WHERE {quote(RUNS)}."status" = \'running\' AND excluded."status" IN ({final})'
    )
    return _insert(dst, RUNS_DDL, sql, rows)


def add_predictions(dst: sqlite3.Connection, rows: Sequence[Row]) -> int:
    """Add the pairs (``PREDICTION_COLUMNS``) TARGET lacks; returns how many."""
    columns = PREDICTION_COLUMNS
    sql = f"INSERT OR IGNORE INTO main.{quote(PREDICTIONS)} ({_names(columns)}) VALUES ({_marks(columns)})"
    return _insert(dst, PREDICTIONS_DDL, sql, rows)


def add_artifacts(dst: sqlite3.Connection, rows: Sequence[Row]) -> int:
    """Add the entries (``ARTIFACT_COLUMNS``) TARGET lacks by (track_id, table, name,
    step), its entries table made or upgraded to steps first."""
    columns = ARTIFACT_COLUMNS
    sql = f"INSERT OR IGNORE INTO main.{quote(ARTIFACTS)} ({_names(columns)}) VALUES ({_marks(columns)})"
    ensure_artifacts(dst)
    return sum(max(0, dst.execute(sql, row).rowcount) for row in rows)


def add_copied(dst: sqlite3.Connection, name: str, rows: Sequence[Row]) -> int:
    """Add the rows (``COPY_COLUMNS[name]`` of :mod:`..meta_sql`) of side table ``name``
    (tags, run names, kinds, descriptions) TARGET lacks, creating it if needed; TARGET's
    own rows win. Returns rows added."""
    ddl, sql = copy_sql(name)
    return _insert(dst, ddl, sql, rows)


def bump(dst: sqlite3.Connection) -> None:
    """Inside TARGET's write transaction: its cached ``runs()`` frames go stale
    (:func:`.summary.bump`), as when a Tracker changes tags or run names."""
    bump_summary(dst)


def model_names(src: sqlite3.Connection) -> list[str]:
    """The registry's model names, in order; none without a registry."""
    if not has_table(src, MODELS):
        return []
    return [n for (n,) in src.execute(f'SELECT DISTINCT "name" FROM main.{quote(MODELS)} ORDER BY "name"')]


def versions_of(src: sqlite3.Connection, name: str) -> list[Row]:
    """The versions (``MODEL_COLUMNS``) of model ``name``, in version order."""
    sql = f'SELECT {_names(MODEL_COLUMNS)} FROM main.{quote(MODELS)} WHERE "name" = ? ORDER BY "version"'
    return src.execute(sql, (name,)).fetchall()


def aliases_of(src: sqlite3.Connection, name: str) -> list[Row]:
    """``(alias, version)`` of model ``name``, by alias; none without aliases."""
    if not has_table(src, MODEL_ALIASES):
        return []
    sql = f'SELECT "alias", "version" FROM main.{quote(MODEL_ALIASES)} WHERE "name" = ? ORDER BY "alias"'
    return src.execute(sql, (name,)).fetchall()


def create_registry(conn: sqlite3.Connection) -> None:
    """Create the registry's tables if needed (inside a write transaction)."""
    for statement in MODELS_DDL:
        conn.execute(statement)


def same_version(conn: sqlite3.Connection, name: str, key: str, created: str) -> int | None:
    """TARGET's number of the version of ``name`` with this hash and creation time, or None."""
    row = conn.execute(
        f'SELECT "version" FROM main.{quote(MODELS)} WHERE "name" = ? AND "hash" = ? AND "created" = ? '
        'ORDER BY "version" LIMIT 1',
        (name, key, created),
    ).fetchone()
    return None if row is None else row[0]


def add_version(conn: sqlite3.Connection, row: Sequence[Any]) -> int:
    """Append a version (``MODEL_COLUMNS`` without ``version``) as the model's next
    number; returns that number."""
    sql = f'SELECT coalesce(max("version"), 0) + 1 FROM main.{quote(MODELS)} WHERE "name" = ?'
    number: int = conn.execute(sql, (row[0],)).fetchone()[0]
    conn.execute(
        f"INSERT INTO main.{quote(MODELS)} ({_names(MODEL_COLUMNS)}) VALUES ({_marks(MODEL_COLUMNS)})",
        (row[0], number, *row[1:]),
    )
    return number


def point(conn: sqlite3.Connection, name: str, alias: str, version: int) -> int:
    """Set ``alias`` of model ``name`` unless it is set; returns 1 when it was set."""
    return max(
        0,
        conn.execute(
            f'INSERT OR IGNORE INTO main.{quote(MODEL_ALIASES)} ("name", "alias", "version") VALUES (?, ?, ?)',
            (name, alias, version),
        ).rowcount,
    )


# ============================================================== engine end (xetrack.copy.postgres_side_tables)
def prediction_pages(engine: Any, table: str, size: int) -> Iterator[list[Row]]:
    """The predictions of ``table`` (``PREDICTION_COLUMNS`` order), ``size`` rows at a time."""
    return _engine_pages(engine, PREDICTIONS, PREDICTION_COLUMNS, table, size)


def _engine_pages(engine: Any, side: str, columns: Sequence[str], table: str, size: int) -> Iterator[list[Row]]:
    present = _present(engine.query(_COLUMNS_OF, (side,)), columns)
    last = -(2**63)
    while True:
        rows = engine.query(
            f'SELECT rowid, {present} FROM {quote(side)} WHERE "table" = ? AND rowid > ? ORDER BY rowid LIMIT ?',
            (table, last, size),
        )
        if not rows:
            return
        last = rows[-1][0]
        yield [tuple(r[1:]) for r in rows]


def put_predictions(engine: Any, rows: Sequence[Row]) -> int:
    """Add pairs (``PREDICTION_COLUMNS`` order) the table lacks; returns how many were added."""
    added: int = engine.write(lambda conn: add_predictions(conn, rows))
    return added


def artifact_entries(engine: Any, table: str, size: int) -> list[Row]:
    """Every artifact entry (``ARTIFACT_COLUMNS`` order) of ``table``."""
    return [r for page in _engine_pages(engine, ARTIFACTS, ARTIFACT_COLUMNS, table, size) for r in page]


def put_artifacts(engine: Any, rows: Sequence[Row]) -> tuple[int, int]:
    """Add the entries TARGET lacks whose bytes it holds, in one transaction; returns
    (added, left out for want of their bytes)."""
    from . import blobs

    def body(conn: sqlite3.Connection) -> tuple[int, int]:
        blobs.create_tables(conn)
        stored = [row for row in rows if blobs.header(conn, row[4]) is not None]
        return (add_artifacts(conn, stored) if stored else 0), len(rows) - len(stored)

    counts: tuple[int, int] = blobs.write(engine, body)
    return counts


def model_versions(engine: Any) -> list[Row]:
    """Every version (``MODEL_COLUMNS`` order), by name and version."""
    rows: list[Row] = engine.query(f'SELECT {_names(MODEL_COLUMNS)} FROM {quote(MODELS)} ORDER BY "name", "version"')
    return rows


def model_aliases(engine: Any) -> list[Row]:
    """Every ``(name, alias, version)``, by alias."""
    rows: list[Row] = engine.query(f'SELECT "name", "alias", "version" FROM {quote(MODEL_ALIASES)} ORDER BY "alias"')
    return rows


def registry_write(engine: Any, body: Callable[[Any], Any]) -> Any:
    """``body(conn)`` in one write transaction of TARGET, its registry tables created."""

    def inner(conn: sqlite3.Connection) -> Any:
        create_registry(conn)
        return body(conn)

    return engine.write(inner)


def stored_kind(conn: sqlite3.Connection, key: str) -> str | None:
    """'asset' or 'artifact' when TARGET stores bytes under ``key``, else None."""
    from ...assets import is_asset_hash

    if not is_asset_hash(key):
        return None
    for kind, side, column in (("asset", ASSETS_TABLE, "key"), ("artifact", BLOBS, "hash")):
        if (
            has_table(conn, side)
            and conn.execute(f"SELECT 1 FROM main.{quote(side)} WHERE {quote(column)} = ?", (key,)).fetchone()
        ):
            return kind
    return None


def put_asset(conn: sqlite3.Connection, key: str, data: bytes) -> None:
    """Store object ``key`` unless it is stored (a model version's pickled bytes)."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(ASSETS_TABLE)} (key TEXT PRIMARY KEY, value BLOB)")
    conn.execute(f"INSERT OR IGNORE INTO {quote(ASSETS_TABLE)} (key, value) VALUES (?, ?)", (key, data))
