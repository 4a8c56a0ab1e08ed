"""The model registry's SQL on a SQLite file (the sqlite and duckdb engines).

:mod:`xetrack.models` validates names and picks versions; this module reads and writes
its two tables. :mod:`.pg_models` has the same functions for PostgreSQL:

- :func:`kind_of`, :func:`add_version`, :func:`move_alias`, :func:`remove_alias`,
- :func:`versions`, :func:`listing`, :func:`referencing`.

Under Tracker.SKIP_INSERT (no file) writes keep nothing and reads find nothing.

>>> from xetrack.store import open_engine, IN_MEMORY
>>> versions(open_engine(IN_MEMORY), "iris")
([], {}, [])
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from ...schema import ASSETS_TABLE, quote
from ..base import Engine, rows_if_table
from ..tables import BLOBS, MODEL_ALIASES, MODELS
from .ddl import MODELS_DDL
from .engine import sqlite_of
from .limits import check_pickle_size

#: ``versions()``: ``[(version, hash, kind)]``, ``{alias: version}`` and every registered name.
Versions = tuple[list[tuple[Any, ...]], dict[str, int], list[str]]


def _create(conn: sqlite3.Connection) -> None:
    for statement in MODELS_DDL:
        conn.execute(statement)


def stored_kind_in(conn: sqlite3.Connection, key: str) -> str | None:
    """``'asset'`` or ``'artifact'`` when ``key`` names bytes stored in ``conn``'s file."""
    for kind, table, column in (("asset", ASSETS_TABLE, "key"), ("artifact", BLOBS, "hash")):
        if rows_if_table(conn, f"SELECT 1 FROM {quote(table)} WHERE {quote(column)} = ? LIMIT 1", (key,)):
            return kind
    return None


def kind_of(engine: Engine, key: str) -> str | None:
    """``'asset'`` or ``'artifact'`` when ``key`` names stored bytes, else None."""
    sq = sqlite_of(engine)
    if sq is None:
        return None
    with sq.reading() as conn:
        return stored_kind_in(conn, key)


def add_version(
    engine: Engine, name: str, key: str, kind: str, data: bytes | None, alias: str | None, details: Sequence[Any]
) -> int | None:
    """Record the next version of ``name`` in one transaction and return its number.

    ``data``: a pickle to store under ``key`` first (refused past SQLite's value limit);
    None when ``key`` is already stored, and then None comes back, with nothing written,
    if it was removed meanwhile. ``details`` is ``(track_id, table, description, created)``.
    Under SKIP_INSERT: 0.
    """
    sq = sqlite_of(engine)
    if sq is None:
        return 0

    def body(conn: sqlite3.Connection) -> int | None:
        _create(conn)
        if data is not None:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(ASSETS_TABLE)} (key TEXT PRIMARY KEY, value BLOB)")
            check_pickle_size(conn, key, data)
            conn.execute(f"INSERT OR IGNORE INTO {quote(ASSETS_TABLE)} (key, value) VALUES (?, ?)", (key, data))
        elif stored_kind_in(conn, key) is None:
            return None
        version: int = conn.execute(
            f'SELECT coalesce(max("version"), 0) + 1 FROM {quote(MODELS)} WHERE "name" = ?', (name,)
        ).fetchone()[0]
        conn.execute(
            f"INSERT INTO {quote(MODELS)} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (name, version, key, kind, *details)
        )
        if alias is not None:
            _point(conn, name, alias, version)
        return version

    return sq.write(body)


def _point(conn: sqlite3.Connection, name: str, alias: str, version: int) -> None:
    conn.execute(
        f'INSERT INTO {quote(MODEL_ALIASES)} ("name", "alias", "version") VALUES (?, ?, ?) '
        'ON CONFLICT ("name", "alias") DO UPDATE SET "version" = excluded."version"',
        (name, alias, version),
    )


def _versions_in(conn: sqlite3.Connection, name: str) -> Versions:
    versions = rows_if_table(
        conn, f'SELECT "version", "hash", "kind" FROM {quote(MODELS)} WHERE "name" = ? ORDER BY "version"', (name,)
    )
    aliases = dict(
        rows_if_table(
            conn, f'SELECT "alias", "version" FROM {quote(MODEL_ALIASES)} WHERE "name" = ? ORDER BY "alias"', (name,)
        )
    )
    names = (
        []
        if versions
        else [n for (n,) in rows_if_table(conn, f'SELECT DISTINCT "name" FROM {quote(MODELS)} ORDER BY "name"')]
    )
    return [tuple(v) for v in versions], aliases, names


def move_alias(engine: Engine, name: str, alias: str, version: int, check: Callable[..., Any]) -> None:
    """Point ``alias`` of ``name`` at ``version`` in one transaction, after
    ``check(versions, aliases, names)`` (which raises to refuse) saw :func:`versions`."""
    sq = sqlite_of(engine)
    if sq is None:
        return

    def body(conn: sqlite3.Connection) -> None:
        _create(conn)
        check(*_versions_in(conn, name))
        _point(conn, name, alias, version)

    sq.write(body)


def remove_alias(engine: Engine, name: str, alias: str) -> bool:
    """Remove an alias; whether it existed."""
    sq = sqlite_of(engine)
    if sq is None:
        return False

    def body(conn: sqlite3.Connection) -> bool:
        _create(conn)
        cur = conn.execute(f'DELETE FROM {quote(MODEL_ALIASES)} WHERE "name" = ? AND "alias" = ?', (name, alias))
        return cur.rowcount > 0

    return sq.write(body)


def versions(engine: Engine, name: str) -> Versions | None:
    """``name``'s ``[(version, hash, kind)]`` by number, its ``{alias: version}``, and (when
    it has none) every registered name; None under SKIP_INSERT (no file to look in)."""
    sq = sqlite_of(engine)
    if sq is None:
        return None
    with sq.reading() as conn:
        return _versions_in(conn, name)


def listing(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every version as ``(name, version, hash, kind, size, track_id, description, created)``
    by name and number, and every ``(name, alias, version)`` by alias."""
    sq = sqlite_of(engine)
    if sq is None or not sq.query(f"SELECT 1 FROM {quote(MODELS)} LIMIT 1"):
        return [], []
    aliases = sq.query(f'SELECT "name", "alias", "version" FROM {quote(MODEL_ALIASES)} ORDER BY "alias"')
    has_assets = bool(sq.query("SELECT 1 FROM sqlite_master WHERE name = ?", (ASSETS_TABLE,)))
    has_blobs = bool(sq.query("SELECT 1 FROM sqlite_master WHERE name = ?", (BLOBS,)))
    size = (
        " + ".join(
            [
                f"coalesce((SELECT length(a.value) FROM {quote(ASSETS_TABLE)} a "
                "WHERE a.key = m.hash AND m.kind = 'asset'), 0)"
            ]
            * has_assets
            + [f"coalesce((SELECT b.size FROM {quote(BLOBS)} b WHERE b.hash = m.hash AND m.kind = 'artifact'), 0)"]
            * has_blobs
        )
        or "NULL"
    )
    rows = sq.query(
        f'SELECT m."name", m."version", m."hash", m."kind", {size}, m."track_id", m."description", '
        f'm."created" FROM {quote(MODELS)} m ORDER BY m."name", m."version"'
    )
    return rows, aliases


def referencing(engine: Engine, key: str) -> list[tuple[str, int]]:
    """``(name, version)`` of the versions pointing at ``key``."""
    sq = sqlite_of(engine)
    if sq is None:
        return []
    return sq.query(
        f'SELECT "name", "version" FROM {quote(MODELS)} WHERE "hash" = ? ORDER BY "name", "version"', (key,)
    )


__all__ = ["kind_of", "add_version", "move_alias", "remove_alias", "versions", "listing", "referencing"]
