"""Pruning runs and measuring what a SQLite file holds (the sqlite and duckdb engines):
:mod:`xetrack.prune` and :mod:`xetrack.usage` decide, these functions read and delete.
:mod:`..postgres.prune` has the same functions for PostgreSQL.

- :func:`delete_runs`: each run's rows and side rows (lifecycle, predictions, artifact
  entries, tags, name) in one write transaction of its own, so that a kill leaves every
  run whole or gone; a run whose :func:`fingerprints` moved since the caller chose it
  (new rows, a new start) is left alone.
- :func:`object_bytes`, :func:`space`, :func:`run_payloads`, :func:`stored`,
  :func:`referents`: what ``xt du`` and a dry run count. Bytes per table come from
  SQLite's ``dbstat`` virtual table where it is compiled in (exact page sizes), else
  from the values' sizes (an estimate).

>>> from xetrack.store import open_engine, IN_MEMORY
>>> engine = open_engine(IN_MEMORY)
>>> engine.ensure_table("default")
>>> delete_runs(engine, "default", [("fierce-pudu-1649", None)])
[0]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ...schema import ASSETS_TABLE, TIMESTAMP, TRACK_ID, is_internal_table, quote
from ..base import Engine, has_table, rowid_alias
from ..tables import ARTIFACTS, BLOBS, CHUNKS, MODELS, RUN_SIDE_TABLES, RUNS
from . import spill
from .engine import sqlite_of

Row = tuple[Any, ...]
#: Columns summed per SELECT when sizing rows (SQLite's result limit is 2,000 columns).
_BATCH = 400
#: What a row costs beyond its values: cell header, rowid and record header (an estimate).
_ROW_OVERHEAD = 6


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [c for (c,) in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))]


def _fingerprint_sql(table: str, columns: Sequence[str], one: bool, runs: bool) -> str:
    rowid, t, tid = rowid_alias(columns), quote(table), quote(TRACK_ID)
    where = f" WHERE {tid} = ?" if one else f" WHERE {tid} IS NOT NULL"
    rows = f"SELECT {tid} AS tid, count(*) AS n, max({rowid}) AS top FROM {t}{where} GROUP BY {tid}"
    if not runs:
        return f"SELECT tid, n, top, NULL, NULL, NULL, NULL FROM ({rows})"
    return (
        f'SELECT g.tid, g.n, g.top, r."status", r."start", r."end", r."pid" FROM ({rows}) AS g '
        f'LEFT JOIN {quote(RUNS)} AS r ON r."track_id" = g.tid AND r."table" = ?'
    )


def fingerprints(engine: Engine, table: str) -> dict[str, Row]:
    """track_id -> (rows, largest rowid, status, start, end, pid) of every run of ``table``
    with rows, read in one statement: what :func:`delete_runs` finds again before it
    deletes (any write to the run since changes it)."""
    sq = sqlite_of(engine)
    if sq is None:
        return {}
    with sq.reading() as conn:
        columns = _columns(conn, table)
        if TRACK_ID not in {c.lower() for c in columns}:
            return {}
        runs = has_table(conn, RUNS)
        found = conn.execute(_fingerprint_sql(table, columns, False, runs), (table,) if runs else ()).fetchall()
    return {r[0]: tuple(r[1:]) for r in found}


def delete_runs(
    engine: Engine,
    table: str,
    runs: Sequence[tuple[str, Row | None]],
    done: Callable[[str, int | None], None] | None = None,
) -> list[int | None]:
    """Delete each ``(track_id, fingerprint)`` run: its rows of ``table`` and its side rows,
    one write transaction per run (``BEGIN IMMEDIATE``: writers wait, and a busy file is
    waited out). With a fingerprint, the run is first found again inside the transaction
    and left whole (None) when it differs; None deletes whatever the run holds. Returns the
    rows deleted per run; ``done(track_id, rows)`` is called after each commit."""
    sq = sqlite_of(engine)
    if sq is None:
        return [0 for _ in runs]
    out: list[int | None] = []
    for track_id, expected in runs:

        def body(conn: sqlite3.Connection, track_id: str = track_id, expected: Row | None = expected) -> int | None:
            columns = _columns(conn, table)
            has_rows = TRACK_ID in {c.lower() for c in columns}
            if expected is not None:
                if not has_rows:
                    return None
                runs_table = has_table(conn, RUNS)
                binds = (track_id, table) if runs_table else (track_id,)
                now = conn.execute(_fingerprint_sql(table, columns, True, runs_table), binds).fetchone()
                if now is None or tuple(now[1:]) != tuple(expected):
                    return None  # written since it was chosen: left whole
            deleted = 0
            if has_rows:
                clause = f" WHERE {quote(TRACK_ID)} = ?"
                spill.delete_rows(conn, table, clause, [track_id])  # the values of keys past its columns
                deleted = conn.execute(f"DELETE FROM {quote(table)}{clause}", (track_id,)).rowcount
            for side in RUN_SIDE_TABLES:
                if has_table(conn, side):
                    conn.execute(f'DELETE FROM {quote(side)} WHERE "track_id" = ? AND "table" = ?', (track_id, table))
            return deleted

        result = sq.write(body)
        out.append(result)
        if done is not None:
            done(track_id, result)
    return out


# -- what the file holds ---------------------------------------------------------
def _dbstat(conn: sqlite3.Connection, name: str) -> int | None:
    """The bytes of the pages of one b-tree (a table or an index), None without dbstat."""
    try:
        row = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ? AND aggregate = 1", (name,)).fetchone()
    except sqlite3.OperationalError:  # no such table: dbstat (SQLite built without it)
        return None
    return int(row[0] or 0)


def object_bytes(engine: Engine, tables: Iterable[str] | None = None) -> tuple[dict[str, int], bool]:
    """Bytes of every table of the file (or of ``tables``), its indexes included, and
    whether they are exact (``dbstat``'s page sizes) or estimated from the values' sizes
    (a SQLite built without ``dbstat``)."""
    sq = sqlite_of(engine)
    if sq is None:
        return {}, True
    with sq.reading() as conn:
        sql = "SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index') AND rootpage > 0"
        owner: dict[str, str] = dict(conn.execute(sql).fetchall())
        wanted = set(owner.values()) if tables is None else set(tables) & set(owner.values())
        out = dict.fromkeys(sorted(wanted), 0)
        if _dbstat(conn, "sqlite_master") is None:
            for name in out:
                out[name] = sum(_estimate(conn, name).values())
            return out, False
        for name, tbl in owner.items():
            if tbl in out:
                out[tbl] += _dbstat(conn, name) or 0
    return out, True


def fixed_bytes(engine: Engine, tables: Iterable[str]) -> dict[str, int]:
    """Bytes of each of ``tables`` that stay however many of its rows go: the root page of
    the table and of each of its indexes."""
    sq = sqlite_of(engine)
    if sq is None:
        return {}
    wanted = set(tables)
    out = dict.fromkeys(sorted(wanted), 0)
    with sq.reading() as conn:
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        for (tbl,) in conn.execute(
            "SELECT tbl_name FROM sqlite_master WHERE type IN ('table', 'index') AND rootpage > 0"
        ).fetchall():
            if tbl in wanted:
                out[tbl] += size
    return out


def _estimate(conn: sqlite3.Connection, table: str) -> dict[Any, int]:
    return {k: v for k, (_, v) in _payloads(conn, table, None, None).items()}


def space(engine: Engine) -> tuple[int, int, int]:
    """(the database's bytes, the bytes of its free pages, its page size)."""
    sq = sqlite_of(engine)
    if sq is None:
        return 0, 0, 0
    with sq.reading() as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        count = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int(size) * int(count), int(size) * int(free), int(size)


def _bytes_of(expr: str) -> str:
    """About the bytes SQLite's record format gives the value of ``expr`` (SQL)."""
    return (
        f"CASE typeof({expr}) WHEN 'null' THEN 1 WHEN 'integer' THEN 5 WHEN 'real' THEN 9 "
        f"ELSE length(CAST({expr} AS BLOB)) + 2 END"
    )


def _value_bytes(column: str) -> str:
    return f"sum({_bytes_of(quote(column))})"


def _payloads(conn: sqlite3.Connection, name: str, key: str | None, table: str | None) -> dict[Any, tuple[int, int]]:
    """key value -> (rows, estimated bytes of their values and cells) of table ``name``,
    grouped by column ``key`` (None: one group); with ``table``, only rows whose
    ``"table"`` is it (a side table)."""
    columns = _columns(conn, name)
    if not columns:
        return {}
    group = quote(key) if key is not None else "NULL"
    where = ' WHERE "table" = ?' if table is not None else ""
    binds = (table,) if table is not None else ()
    out: dict[Any, list[int]] = {}
    for start in range(0, len(columns), _BATCH):
        part = columns[start : start + _BATCH]
        sums = ", ".join(_value_bytes(c) for c in part)
        sql = f"SELECT {group}, count(*), {sums} FROM {quote(name)}{where} GROUP BY {group}"
        for row in conn.execute(sql, binds):
            entry = out.setdefault(row[0], [int(row[1]), int(row[1]) * _ROW_OVERHEAD])
            entry[1] += sum(int(v or 0) for v in row[2:])
    return {k: (v[0], v[1]) for k, v in out.items()}


def _spill_payloads(conn: sqlite3.Connection, table: str) -> tuple[dict[str, tuple[int, int]], int]:
    """:func:`run_payloads` of the spill: per run of ``table``, its spill rows (each
    counted with its key); the whole spill, every table's, is what pages are shared by."""

    def cell(alias: str) -> str:  # a spill row: its value, key and table name, and its cell
        parts = " + ".join(_bytes_of(alias + quote(c)) for c in ("value", "key", "tbl"))
        return f"sum({parts} + {_ROW_OVERHEAD + 5})"

    whole = conn.execute(f"SELECT {cell('')} FROM {quote(spill.SPILL)}").fetchone()[0]
    if TRACK_ID not in {c.lower() for c in _columns(conn, table)} or not spill.spilled_keys(conn, table):
        return {}, int(whole or 0)
    query = (
        f"SELECT m.{quote(TRACK_ID)}, count(*), {cell('s.')} FROM {quote(table)} AS m "
        f"CROSS JOIN {quote(spill.SPILL)} AS s "
        f'ON s."tbl" = ? AND s."row" = m.{quote(spill.LINK)} GROUP BY m.{quote(TRACK_ID)}'
    )
    per = {k: (int(n), int(b or 0)) for k, n, b in conn.execute(query, (table,)) if k is not None}
    return per, int(whole or 0)


def run_payloads(engine: Engine, name: str, table: str) -> tuple[dict[str, tuple[int, int]], int]:
    """Per run of experiment table ``table``: (rows, estimated bytes) of its rows in table
    ``name`` (``table`` itself, or a side table), and the estimated bytes of all of
    ``name``'s rows (what a share of the table's pages is reckoned against)."""
    sq = sqlite_of(engine)
    if sq is None:
        return {}, 0
    with sq.reading() as conn:
        if not has_table(conn, name):
            return {}, 0
        if name == spill.SPILL:  # the values of the table's keys past its columns, by their rows' runs
            return _spill_payloads(conn, table)
        if name == table:
            if TRACK_ID not in {c.lower() for c in _columns(conn, name)}:
                whole = _payloads(conn, name, None, None)
                return {}, sum(v for _, v in whole.values())
            per = _payloads(conn, name, TRACK_ID, None)
            return {k: v for k, v in per.items() if k is not None}, sum(v for _, v in per.values())
        per = _payloads(conn, name, "track_id", table)
        whole = _payloads(conn, name, None, None)
        return {k: v for k, v in per.items() if k is not None}, sum(v for _, v in whole.values())


def stored(engine: Engine) -> list[tuple[str, str, int]]:
    """Every stored thing as (hash, kind, bytes): ``asset`` (a logged object), ``artifact``
    (an artifact's chunks) or ``orphan`` (chunks of an upload without a header)."""
    sq = sqlite_of(engine)
    if sq is None:
        return []
    out: list[tuple[str, str, int]] = []
    with sq.reading() as conn:
        if has_table(conn, ASSETS_TABLE):
            out += [
                (k, "asset", int(n or 0))
                for k, n in conn.execute(f"SELECT key, length(value) FROM {quote(ASSETS_TABLE)}")
            ]
        if has_table(conn, CHUNKS):
            headers = has_table(conn, BLOBS)
            known = (
                f'CASE WHEN EXISTS (SELECT 1 FROM {quote(BLOBS)} b WHERE b."hash" = c."hash") '
                "THEN 'artifact' ELSE 'orphan' END"
                if headers
                else "'orphan'"
            )
            sql = f'SELECT c."hash", {known}, sum(length(c."data")) FROM {quote(CHUNKS)} c GROUP BY c."hash"'
            out += [(k, kind, int(n or 0)) for k, kind, n in conn.execute(sql)]
    return out


def referents(engine: Engine, keys: Iterable[str]) -> list[tuple[str, str, str | None, str | None]]:
    """What points at each of ``keys``: (hash, kind, table, track_id) with kind ``artifact``
    (an entry), ``model`` (a version: track_id is ``name:version``) or ``row`` (a value of
    a row of an experiment table; track_id None in a table without runs). Rows are
    reported once per run."""
    wanted = set(keys)
    sq = sqlite_of(engine)
    if sq is None or not wanted:
        return []
    out: set[tuple[str, str, str | None, str | None]] = set()
    lengths = {len(k) for k in wanted}
    with sq.reading() as conn:
        if has_table(conn, ARTIFACTS):
            sql = f'SELECT DISTINCT "hash", "table", "track_id" FROM {quote(ARTIFACTS)}'
            out.update((r[0], "artifact", r[1], r[2]) for r in conn.execute(sql) if r[0] in wanted)
        if has_table(conn, MODELS):
            sql = f'SELECT "hash", "table", "name" || \':\' || "version" FROM {quote(MODELS)}'
            out.update((r[0], "model", r[1], r[2]) for r in conn.execute(sql) if r[0] in wanted)
        tables = [
            n
            for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not is_internal_table(n)
        ]
        for table in tables:
            columns = _columns(conn, table)
            lowered = [c.lower() for c in columns]
            if not columns:
                continue
            at = lowered.index(TRACK_ID) if TRACK_ID in lowered else None
            skip = {i for i, c in enumerate(lowered) if c in (TRACK_ID, TIMESTAMP)}
            cursor = conn.execute(f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)}")
            while batch := cursor.fetchmany(10_000):
                for row in batch:
                    run = row[at] if at is not None else None
                    for i, value in enumerate(row):
                        if type(value) is str and len(value) in lengths and value in wanted and i not in skip:
                            out.add((value, "row", table, run))
            if spill.LINK.lower() in lowered and spill.spilled_keys(conn, table):  # objects under spilled keys
                run_of = f"m.{quote(TRACK_ID)}" if at is not None else "NULL"
                cursor = conn.execute(
                    f'SELECT s."value", {run_of} FROM {quote(table)} AS m CROSS JOIN {quote(spill.SPILL)} AS s '
                    f'ON s."tbl" = ? AND s."row" = m.{quote(spill.LINK)} WHERE typeof(s."value") = ?',
                    (table, "text"),
                )
                while batch := cursor.fetchmany(10_000):
                    out.update((v, "row", table, run) for v, run in batch if len(v) in lengths and v in wanted)
    return sorted(out, key=lambda r: tuple("" if v is None else str(v) for v in r))


__all__ = ["fingerprints", "delete_runs", "object_bytes", "fixed_bytes", "space", "run_payloads", "stored", "referents"]
