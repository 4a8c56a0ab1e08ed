"""Pruning runs and measuring what a PostgreSQL store holds: the same functions as
:mod:`..sqlite.prune`, called by :mod:`xetrack.prune` and :mod:`xetrack.usage`.

Each run is deleted in one transaction that first locks the experiment table and the
run side tables (``SHARE ROW EXCLUSIVE``: readers go on, writers wait for the few
milliseconds it takes), finds the run again as the caller chose it, then deletes its
rows and side rows. Sizes: ``pg_total_relation_size`` per table (indexes and TOAST
included), ``pg_column_size`` of the rows per run. Identifiers are
``psycopg.sql.Identifier``; values are bound.

>>> delete_runs(open_engine("postgresql://ana@db-host/exp"), "default", [("run-1", None)])  # doctest: +SKIP
[12]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from psycopg import sql

from ...schema import ASSETS_TABLE, TRACK_ID, is_internal_table
from ..tables import ARTIFACTS, BLOBS, CHUNKS, MODELS, RUN_SIDE_TABLES, RUNS, SPILL
from . import spill
from .blobs import has_table
from .values import OVERFLOW, ROW

Row = tuple[Any, ...]
_I = sql.Identifier
_COLUMNS = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(%s)) "
    "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
)
_TABLES = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.oid"
)


def _has_runs(conn: Any, table: str) -> bool:
    return TRACK_ID in {name for name, _ in conn.execute(_COLUMNS, (table,)).fetchall()}


def _fingerprint_query(table: str, one: bool, runs: bool) -> Any:
    where = (
        sql.SQL("WHERE {} = %s").format(_I(TRACK_ID)) if one else sql.SQL("WHERE {} IS NOT NULL").format(_I(TRACK_ID))
    )
    rows = sql.SQL("SELECT {tid} AS tid, count(*) AS n, max({row}) AS top FROM {t} {where} GROUP BY {tid}").format(
        tid=_I(TRACK_ID), row=_I(ROW), t=_I(table), where=where
    )
    if not runs:
        return sql.SQL("SELECT tid, n, top, NULL, NULL, NULL, NULL FROM ({}) AS g").format(rows)
    return sql.SQL(
        'SELECT g.tid, g.n, g.top, r."status", r."start", r."end", r."pid" FROM ({}) AS g '
        'LEFT JOIN {} AS r ON r."track_id" = g.tid AND r."table" = %s'
    ).format(rows, _I(RUNS))


def _fingerprints(conn: Any, table: str, track_id: str | None) -> dict[str, Row]:
    if not has_table(conn, table) or not _has_runs(conn, table):
        return {}
    runs = has_table(conn, RUNS)
    binds: tuple[Any, ...] = (track_id,) if track_id is not None else ()
    query = _fingerprint_query(table, track_id is not None, runs)
    found = conn.execute(query, binds + ((table,) if runs else ())).fetchall()
    return {r[0]: (int(r[1]), int(r[2]), *r[3:]) for r in found}


def fingerprints(engine: Any, table: str) -> dict[str, Row]:
    """track_id -> (rows, largest row number, status, start, end, pid) of every run of
    ``table`` with rows, in one statement."""
    result: dict[str, Row] = engine._run(lambda conn: _fingerprints(conn, table, None))
    return result


def delete_runs(
    engine: Any,
    table: str,
    runs: Sequence[tuple[str, Row | None]],
    done: Callable[[str, int | None], None] | None = None,
) -> list[int | None]:
    """Delete each ``(track_id, fingerprint)`` run, rows and side rows, one transaction per
    run; a run whose fingerprint moved is left whole (None). Returns the rows deleted per run."""
    out: list[int | None] = []
    for track_id, expected in runs:

        def body(conn: Any, track_id: str = track_id, expected: Row | None = expected) -> int | None:
            present = [n for n in (table, *RUN_SIDE_TABLES) if has_table(conn, n)]
            has_rows = table in present and _has_runs(conn, table)
            if present:
                names = sql.SQL(", ").join(map(_I, present))
                conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(names))
            if expected is not None:
                now = _fingerprints(conn, table, track_id).get(track_id) if has_rows else None
                if now is None or tuple(now) != tuple(expected):
                    return None
            deleted = 0
            if has_rows:
                clause = sql.SQL(" WHERE {} = %s").format(_I(TRACK_ID))
                if has_table(conn, SPILL):  # the values of its keys past the table's columns
                    spill.delete_rows(conn, table, clause, [track_id])
                deleted = int(conn.execute(sql.SQL("DELETE FROM {}").format(_I(table)) + clause, (track_id,)).rowcount)
            for side in RUN_SIDE_TABLES:
                if side in present:
                    query = sql.SQL('DELETE FROM {} WHERE "track_id" = %s AND "table" = %s').format(_I(side))
                    conn.execute(query, (track_id, table))
            return deleted

        result: int | None = engine._run(lambda conn, body=body: engine._transact(conn, table, body))
        out.append(result)
        if done is not None:
            done(track_id, result)
    return out


# -- what the store holds ----------------------------------------------------------
def object_bytes(engine: Any, tables: Iterable[str] | None = None) -> tuple[dict[str, int], bool]:
    """Bytes of every table of the schema (or of ``tables``): ``pg_total_relation_size``,
    indexes and TOAST included. Exact."""

    def read(conn: Any) -> dict[str, int]:
        names = [n for (n,) in conn.execute(_TABLES).fetchall()]
        if tables is not None:
            names = [n for n in names if n in set(tables)]
        query = "SELECT pg_total_relation_size(to_regclass(quote_ident(current_schema()) || '.' || quote_ident(%s)))"
        return {n: int(conn.execute(query, (n,)).fetchone()[0] or 0) for n in names}

    sizes: dict[str, int] = engine._run(read)
    return sizes, True


def fixed_bytes(engine: Any, tables: Iterable[str]) -> dict[str, int]:
    """0 for each table: rows deleted on PostgreSQL leave space the table reuses (until
    ``VACUUM FULL``), which a run's share of its size counts."""
    return dict.fromkeys(tables, 0)


def space(engine: Any) -> tuple[int, int, int]:
    """(the database's bytes, 0: PostgreSQL keeps no free list to report, its block size)."""

    def read(conn: Any) -> tuple[int, int, int]:
        size = conn.execute("SELECT pg_database_size(current_database()), current_setting('block_size')").fetchone()
        return int(size[0]), 0, int(size[1])

    result: tuple[int, int, int] = engine._run(read)
    return result


def run_payloads(engine: Any, name: str, table: str) -> tuple[dict[str, tuple[int, int]], int]:
    """Per run of ``table``: (rows, ``pg_column_size`` of its rows) in table ``name``
    (``table`` itself or a side table), and that size summed over all of ``name``'s rows."""

    def read(conn: Any) -> tuple[dict[str, tuple[int, int]], int]:
        if not has_table(conn, name):
            return {}, 0
        t = _I(name)
        whole = sql.SQL("SELECT coalesce(sum(pg_column_size(x.*)), 0) FROM {} AS x").format(t)
        total = int(conn.execute(whole).fetchone()[0])
        if name == SPILL:  # the values of the table's keys past its columns, by their rows' runs
            if not _has_runs(conn, table):
                return {}, total
            query = sql.SQL(
                "SELECT m.{c}, count(*), sum(pg_column_size(s.*)) FROM {t} AS m JOIN {s} AS s "
                'ON s."tbl" = %s AND s."row" = m.{r} GROUP BY m.{c}'
            ).format(c=_I(TRACK_ID), t=_I(table), s=t, r=_I(ROW))
            found = conn.execute(query, (table,)).fetchall()
        elif name == table:
            if not _has_runs(conn, table):
                return {}, total
            query = sql.SQL("SELECT x.{c}, count(*), sum(pg_column_size(x.*)) FROM {t} AS x GROUP BY x.{c}").format(
                c=_I(TRACK_ID), t=t
            )
            found = conn.execute(query).fetchall()
        else:
            query = sql.SQL(
                'SELECT x."track_id", count(*), sum(pg_column_size(x.*)) FROM {} AS x WHERE x."table" = %s '
                'GROUP BY x."track_id"'
            ).format(t)
            found = conn.execute(query, (table,)).fetchall()
        return {k: (int(n), int(b or 0)) for k, n, b in found if k is not None}, total

    result: tuple[dict[str, tuple[int, int]], int] = engine._run(read)
    return result


def stored(engine: Any) -> list[tuple[str, str, int]]:
    """Every stored thing as (hash, kind, bytes): ``asset``, ``artifact`` or ``orphan``."""

    def read(conn: Any) -> list[tuple[str, str, int]]:
        out: list[tuple[str, str, int]] = []
        if has_table(conn, ASSETS_TABLE):
            query = sql.SQL("SELECT key, octet_length(value) FROM {}").format(_I(ASSETS_TABLE))
            out += [(k, "asset", int(n or 0)) for k, n in conn.execute(query).fetchall()]
        if has_table(conn, CHUNKS):
            known: Any = sql.SQL("'orphan'")
            if has_table(conn, BLOBS):
                known = sql.SQL(
                    'CASE WHEN EXISTS (SELECT 1 FROM {} b WHERE b."hash" = c."hash") '
                    "THEN 'artifact' ELSE 'orphan' END"
                ).format(_I(BLOBS))
            query = sql.SQL('SELECT c."hash", {}, sum(octet_length(c."data")) FROM {} c GROUP BY c."hash"').format(
                known, _I(CHUNKS)
            )
            out += [(k, kind, int(n or 0)) for k, kind, n in conn.execute(query).fetchall()]
        return out

    result: list[tuple[str, str, int]] = engine._run(read)
    return result


def referents(engine: Any, keys: Iterable[str]) -> list[tuple[str, str, str | None, str | None]]:
    """What points at each of ``keys`` (as :func:`..sqlite.prune.referents`), found by the
    server: artifact entries, model versions, and text or JSON values (columns and the
    overflow) of experiment tables' rows, once per run."""
    wanted = sorted(set(keys))
    if not wanted:
        return []

    def read(conn: Any) -> list[tuple[str, str, str | None, str | None]]:
        out: set[tuple[str, str, str | None, str | None]] = set()
        if has_table(conn, ARTIFACTS):
            query = sql.SQL('SELECT DISTINCT "hash", "table", "track_id" FROM {} WHERE "hash" = ANY(%s)')
            out.update((h, "artifact", t, r) for h, t, r in conn.execute(query.format(_I(ARTIFACTS)), (wanted,)))
        if has_table(conn, MODELS):
            query = sql.SQL('SELECT "hash", "table", "name" || \':\' || "version" FROM {} WHERE "hash" = ANY(%s)')
            out.update((h, "model", t, v) for h, t, v in conn.execute(query.format(_I(MODELS)), (wanted,)))
        for (table,) in conn.execute(_TABLES).fetchall():
            if is_internal_table(table):
                continue
            columns = conn.execute(_COLUMNS, (table,)).fetchall()
            if ROW not in {c for c, _ in columns}:
                continue  # not an experiment table
            run: Any = sql.SQL("t.{}").format(_I(TRACK_ID)) if TRACK_ID in {c for c, _ in columns} else sql.SQL("NULL")
            parts = []
            for name, kind in columns:
                if name in (TRACK_ID, "timestamp"):
                    continue
                if name == OVERFLOW:
                    parts.append(
                        sql.SQL("SELECT {r}, e.value FROM {t} AS t, jsonb_each_text(t.{c}) AS e").format(
                            r=run, t=_I(table), c=_I(name)
                        )
                    )
                elif kind == "text":
                    parts.append(sql.SQL("SELECT {}, t.{} FROM {} AS t").format(run, _I(name), _I(table)))
                elif kind == "jsonb":
                    parts.append(sql.SQL("SELECT {}, t.{} #>> '{{}}' FROM {} AS t").format(run, _I(name), _I(table)))
            if has_table(conn, SPILL):  # values of keys past the table's columns
                joined = sql.SQL('SELECT {}, s."value_text" FROM {} AS s JOIN {} AS t ON t.{} = s."row"')
                where = sql.SQL(' WHERE s."tbl" = {} AND s."value_text" IS NOT NULL').format(sql.Literal(table))
                parts.append(joined.format(run, _I(SPILL), _I(table), _I(ROW)) + where)
            if parts:
                union: Any = (
                    sql.SQL("SELECT DISTINCT v, r FROM (")
                    + sql.SQL(" UNION ALL ").join(parts)
                    + sql.SQL(") AS s(r, v) WHERE v = ANY(%s)")
                )
                out.update((v, "row", table, r) for v, r in conn.execute(union, (wanted,)).fetchall())
        return sorted(out, key=lambda r: tuple("" if v is None else str(v) for v in r))

    result: list[tuple[str, str, str | None, str | None]] = engine._run(read)
    return result


__all__ = ["fingerprints", "delete_runs", "object_bytes", "fixed_bytes", "space", "run_payloads", "stored", "referents"]
