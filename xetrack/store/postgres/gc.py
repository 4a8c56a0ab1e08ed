"""Garbage collection and a deleted run's side rows on the PostgreSQL engine: the same
functions as :mod:`.sqlite_gc` (:func:`delete_run`, :func:`collect`, :func:`vacuum`),
called by :mod:`xetrack.garbage`.

>>> Reader("postgresql://ana@db-host/exp").gc(dry_run=True).bytes  # doctest: +SKIP
73401929

``gc`` is one transaction that first locks xetrack's byte tables and the tables that
point at them (``EXCLUSIVE``: readers go on, writers wait), then finds what nothing
points at: a value of any experiment table (its columns, its JSONB overflow and its
spilled keys' values, looked up on the server), an artifact entry or a model version.
A log, an artifact or a model registered at the same time waits for it and then sees
the bytes gone (and stores them again) or sees them kept. Identifiers are ``psycopg.sql.Identifier``; values are bound.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from ...schema import ASSET_COUNTS, ASSETS_TABLE, quote
from ..tables import ARTIFACTS, BLOBS, CHUNKS, MODELS, RUN_NAMES, SPILL, TAGS, UPLOADS
from .blobs import has_table, uploads_in_progress
from .values import OVERFLOW

_I = sql.Identifier
#: Locked in this order by gc (writers take ROW EXCLUSIVE on one of them before they look).
LOCKED = (ASSETS_TABLE, ASSET_COUNTS, BLOBS, CHUNKS, UPLOADS, ARTIFACTS, MODELS)


def delete_run(engine: Any, table: str, track_id: str) -> None:
    """Forget a deleted run's side rows: lifecycle, predictions, artifact entries, tags
    and its name (as on SQLite)."""
    from . import meta as pg_meta
    from .side import delete_run as delete_side_rows

    delete_side_rows(engine, table, track_id)
    delete_entries(engine, table, track_id)
    for name in (TAGS, RUN_NAMES):
        pg_meta.write(
            engine, name, f'DELETE FROM {quote(name)} WHERE "track_id" = ? AND "table" = ?', [(track_id, table)]
        )


def delete_entries(engine: Any, table: str, track_id: str) -> None:
    """Forget a deleted run's artifact entries (the bytes stay until gc)."""
    query = sql.SQL('DELETE FROM {} WHERE "track_id" = %s AND "table" = %s RETURNING 1').format(_I(ARTIFACTS))
    engine._run(lambda conn: engine._rows(conn, query, (track_id, table)))


def collect(engine: Any, dry_run: bool) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """``(dead assets, dead artifact bytes, orphan chunks)``, each ``{hash: bytes}``;
    removed unless ``dry_run``."""
    tables = engine.tables()

    def body(conn: Any) -> Any:
        present = [name for name in LOCKED if has_table(conn, name)]
        if present:
            conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.SQL(", ").join(map(_I, present))))
        assets = dict(_all(conn, ASSETS_TABLE, "SELECT key, octet_length(value) FROM {}"))
        stored = dict(_all(conn, BLOBS, 'SELECT "hash", "size" FROM {}'))
        uploading = uploads_in_progress(conn, clean=not dry_run)
        orphans = {}
        if has_table(conn, CHUNKS):
            query = sql.SQL(
                'SELECT c."hash", sum(octet_length(c."data")) FROM {} c WHERE NOT EXISTS '
                '(SELECT 1 FROM {} b WHERE b."hash" = c."hash") GROUP BY c."hash"'
            ).format(_I(CHUNKS), _I(BLOBS))
            if not has_table(conn, BLOBS):
                query = sql.SQL('SELECT "hash", sum(octet_length("data")) FROM {} GROUP BY "hash"').format(_I(CHUNKS))
            orphans = {k: int(n) for k, n in conn.execute(query).fetchall() if k not in uploading}
        used = _referenced(conn, set(assets) | set(stored), tables)
        dead_assets = {k: int(assets[k] or 0) for k in sorted(set(assets) - used)}
        dead_blobs = {k: int(stored[k]) for k in sorted(set(stored) - used)}
        if not dry_run:
            _remove(conn, sorted(dead_assets), sorted(dead_blobs) + sorted(orphans))
        return dead_assets, dead_blobs, orphans

    collected: tuple[dict[str, int], dict[str, int], dict[str, int]] = engine._run(
        lambda conn: engine._transact(conn, ASSETS_TABLE, body)  # safe to run twice
    )
    return collected


def vacuum(engine: Any) -> int:
    """``VACUUM`` of the byte tables (outside a transaction); returns how many bytes their
    relations shrank (PostgreSQL mostly keeps freed pages for reuse, so often 0)."""

    def run(conn: Any) -> int:
        names = [n for n in (ASSETS_TABLE, BLOBS, CHUNKS) if has_table(conn, n)]
        size = sql.SQL(" + ").join(sql.SQL("pg_total_relation_size({})").format(sql.Literal(n)) for n in names)
        if not names:
            return 0
        before = conn.execute(sql.SQL("SELECT ") + size).fetchone()[0]
        conn.execute(sql.SQL("VACUUM ") + sql.SQL(", ").join(map(_I, names)))
        after = conn.execute(sql.SQL("SELECT ") + size).fetchone()[0]
        return max(0, int(before) - int(after))

    freed: int = engine._run(run)
    return freed


def _all(conn: Any, table: str, query: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql.SQL(query).format(_I(table))).fetchall() if has_table(conn, table) else []


def _remove(conn: Any, assets: list[str], blobs: list[str]) -> None:
    if assets:
        conn.execute(sql.SQL("DELETE FROM {} WHERE key = ANY(%s)").format(_I(ASSETS_TABLE)), (assets,))
        if has_table(conn, ASSET_COUNTS):
            conn.execute(sql.SQL("DELETE FROM {} WHERE hash = ANY(%s)").format(_I(ASSET_COUNTS)), (assets,))
    if blobs:
        conn.execute(sql.SQL('DELETE FROM {} WHERE "hash" = ANY(%s)').format(_I(CHUNKS)), (blobs,))
        if has_table(conn, BLOBS):
            conn.execute(sql.SQL('DELETE FROM {} WHERE "hash" = ANY(%s)').format(_I(BLOBS)), (blobs,))


def _referenced(conn: Any, candidates: set[str], tables: list[str]) -> set[str]:
    """The candidate hashes some row points at, found by the server: any text or JSON
    value of an experiment table (a column or the overflow), an artifact entry or a
    model version."""
    if not candidates:
        return set()
    wanted = sorted(candidates)
    used: set[str] = set()
    for side in (ARTIFACTS, MODELS):
        if has_table(conn, side):
            query = sql.SQL('SELECT DISTINCT "hash" FROM {} WHERE "hash" = ANY(%s)').format(_I(side))
            used.update(h for (h,) in conn.execute(query, (wanted,)).fetchall())
    columns_sql = (
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(%s)) "
        "AND a.attnum > 0 AND NOT a.attisdropped"
    )
    for table in tables:
        parts = []
        for name, kind in conn.execute(columns_sql, (table,)).fetchall():
            if name == OVERFLOW:
                parts.append(
                    sql.SQL("SELECT e.value FROM {t}, jsonb_each_text({t}.{c}) AS e").format(t=_I(table), c=_I(name))
                )
            elif kind == "text":
                parts.append(sql.SQL("SELECT {} FROM {}").format(_I(name), _I(table)))
            elif kind == "jsonb":
                parts.append(sql.SQL("SELECT {} #>> '{{}}' FROM {}").format(_I(name), _I(table)))
        if parts:
            query = (
                sql.SQL("SELECT DISTINCT v FROM (")
                + sql.SQL(" UNION ALL ").join(parts)
                + sql.SQL(") AS s(v) WHERE v = ANY(%s)")
            )
            used.update(v for (v,) in conn.execute(query, (wanted,)).fetchall())
    if has_table(conn, SPILL):  # a logged object under a key past a table's columns
        query = sql.SQL('SELECT DISTINCT "value_text" FROM {} WHERE "value_text" = ANY(%s)').format(_I(SPILL))
        used.update(v for (v,) in conn.execute(query, (wanted,)).fetchall())
    return used


__all__ = ["delete_run", "collect", "vacuum", "delete_entries"]
