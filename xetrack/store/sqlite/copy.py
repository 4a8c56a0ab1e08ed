"""The SQLite end of a copy: the SQL behind :mod:`xetrack.copy`.

Two kinds of calls live here:

- a copy between two files (:mod:`xetrack.copy.files`) works on two ``sqlite3``
  connections: SOURCE's, read in one snapshot, and TARGET's, written in ONE
  transaction. The calls of the "file to file" section open, lock (the files' guards:
  :func:`holding`) and close them, and run every statement; the layer above holds the
  connections as opaque handles. PostgreSQL has no such calls: they are typed by
  :class:`~xetrack.store.features.SQLiteFileCopySQL`, reached as
  ``dialect_features("sqlite").copy``.
- a copy with a PostgreSQL end (:mod:`xetrack.copy.postgres`) works on engines; for the
  SQLite end it calls the functions of the "engine end" section, whose twins of the same
  names and signatures are in :mod:`xetrack.store.postgres.copy`
  (:class:`~xetrack.store.features.CopySQL`, ``features(engine).copy``).

>>> from xetrack.store import features, open_engine
>>> engine = open_engine(":memory:")
>>> features(engine).copy.stored_pairs(engine, "default", ["run-1"], None)
set()
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ...schema import ASSETS_TABLE, BASE_COLUMNS, TIMESTAMP, TRACK_ID, is_internal_table, quote
from ..base import AssetWrites, has_table, rowid_alias
from ..logical_types import logical_types
from ..tables import RUN_COLUMNS, RUNS
from . import spill
from .busy import immediate, retry_busy, transact
from .column_types import read_types, record_types
from .ddl import RUNS_DDL
from .guard import holding as _hold

if TYPE_CHECKING:  # mypy checks this module against the protocols xetrack.copy uses it by
    from ..features import SQLiteFileCopySQL
    from . import copy as _this

    _checked: SQLiteFileCopySQL = _this

#: Objects copied per transaction of TARGET, at most (and at most this many bytes).
ASSETS_PER_BATCH = 1000
ASSET_BYTES_PER_BATCH = 64 * 2**20

Row = tuple[Any, ...]


# ============================================================== engine end (xetrack.copy.postgres)
def pages(engine: Any, table: str, size: int) -> Iterator[tuple[tuple[str, ...], list[Row]]]:
    """(key names, rows) in table order, the spilled keys after the columns (:mod:`.spill`),
    ``size`` rows at a time, values as logged: each page one read past the last page's
    rowid (bounded memory), its rows and their spill rows in one snapshot."""
    types = engine.column_types(table)
    names = tuple(types)
    keys = set(engine.spilled(table))
    own = [n for n in names if n not in keys]
    rowid = rowid_alias(own)
    cols = ", ".join(quote(n) for n in [*own, *([spill.LINK] if keys else [])])
    fixed = [(j, types[n]) for j, n in enumerate(names) if types[n] in ("BOOLEAN", "REAL")]
    last = None
    while True:
        after = "" if last is None else f" WHERE {rowid} > ?"
        sql = f"SELECT {rowid}, {cols} FROM {quote(table)}{after} ORDER BY {rowid} LIMIT {int(size)}"
        with engine.reading() as conn, spill.snapshot(conn):
            rows = conn.execute(sql, () if last is None else (last,)).fetchall()
            if keys:
                links = [row[-1] for row in rows]
                extra = spill.columns(links, [n for n in names if n in keys], spill.values_for(conn, table, links))
                rows = [(*row[:-1], *(v[i] for v in extra.values())) for i, row in enumerate(rows)]
        if not rows:
            return
        last = rows[-1][0]
        yield names, [_as_logged(row[1:], fixed) if fixed else row[1:] for row in rows]


def _as_logged(row: Sequence[Any], fixed: Sequence[tuple[int, str]]) -> Row:
    """A SQLite row as the values were logged: 0/1 of a BOOLEAN column as bools, an int
    of a REAL one as a float (what the SQLite engine's reads show). ``fixed``: the
    (index, logical type) of those columns."""
    out = list(row)
    for j, kind in fixed:
        value = out[j]
        if type(value) is int:
            if kind == "BOOLEAN" and value in (0, 1):
                out[j] = bool(value)
            elif kind == "REAL":
                out[j] = float(value)
    return tuple(out)


def stored_pairs(engine: Any, table: str, track_ids: Sequence[str], between: tuple[str, str] | None) -> set[Row]:
    """The ``(track_id, timestamp)`` pairs of the table's rows of these runs; with
    ``between`` (first, last), only those whose timestamp lies in it."""
    if not track_ids:
        return set()
    marks = ", ".join("?" for _ in track_ids)
    span = f" AND {quote(TIMESTAMP)} BETWEEN ? AND ?" if between else ""
    return set(
        map(
            tuple,
            engine.query(
                f"SELECT {quote(TRACK_ID)}, {quote(TIMESTAMP)} FROM {quote(table)} "
                f"WHERE {quote(TRACK_ID)} IN ({marks}){span}",
                [*track_ids, *(between or ())],
            ),
        )
    )


def run_rows(engine: Any, table: str) -> list[Row]:
    """The lifecycle rows (``RUN_COLUMNS`` order) of ``table``'s runs; none without any."""
    cols = ", ".join(quote(c) for c in RUN_COLUMNS)
    rows: list[Row] = engine.query(f'SELECT {cols} FROM {quote(RUNS)} WHERE "table" = ?', (table,))
    return rows


def run_statuses(engine: Any, table: str) -> dict[str, str]:
    """track_id -> status of ``table``'s lifecycle rows."""
    return dict(engine.query(f'SELECT "track_id", "status" FROM {quote(RUNS)} WHERE "table" = ?', (table,)))


def put_run(engine: Any, table: str, row: Sequence[Any]) -> None:
    """Insert or replace one lifecycle row (``RUN_COLUMNS`` order)."""

    def body(conn: sqlite3.Connection) -> None:
        conn.execute(RUNS_DDL)
        conn.execute(f"INSERT OR REPLACE INTO {quote(RUNS)} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tuple(row))

    engine.write(body)


# ============================================================== file to file (xetrack.copy.files)
@contextmanager
def holding(*paths: str) -> Iterator[None]:
    """Hold the guards of these files, in this process, for the whole copy: DuckDB in
    another thread waits instead of closing connections under it (:mod:`.guard`)."""
    with _hold(*paths):
        yield


@contextmanager
def snapshot(reader: Any) -> Iterator[sqlite3.Connection]:
    """SOURCE's connection (the Reader's), inside one read transaction for the whole copy."""
    src = reader.conn
    src.execute("BEGIN")
    try:
        yield src
    finally:
        if src.in_transaction:
            src.execute("COMMIT")


def source_tables(src: sqlite3.Connection) -> list[str]:
    """The experiment tables of the file, in creation order."""
    rows = src.execute("SELECT name FROM main.sqlite_master WHERE type = 'table' ORDER BY rowid").fetchall()
    return [name for (name,) in rows if not is_internal_table(name)]


def columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """``[(name, declared type)]`` in table order, then the keys past the table's columns
    (:mod:`.spill`, with no declared type), the spill's link column left out; none for a
    missing table. A copy carries both kinds of keys alike: :func:`row_pages` reads them,
    :func:`ensure_table` and :func:`insert_rows` place them by TARGET's own room."""
    rows = conn.execute("SELECT name, type FROM main.pragma_table_info(?)", (table,)).fetchall()
    out = [(name, decl or "") for name, decl in rows if name != spill.LINK]
    if len(out) < len(rows):
        have = {name.lower() for name, _ in out}
        out += [(key, "") for key in spill.spilled_keys(conn, table) if key.lower() not in have]
    return out


def count(conn: sqlite3.Connection, table: str) -> int:
    (rows,) = conn.execute(f"SELECT count(*) FROM main.{quote(table)}").fetchone()
    return int(rows)


def source_types(src: sqlite3.Connection, table: str, declared: list[tuple[str, str]]) -> dict[str, str]:
    """The logical types of ``table``'s columns in SOURCE (:mod:`.column_types`)."""
    return logical_types(dict(declared), read_types(src, table))


def has_assets(conn: sqlite3.Connection) -> bool:
    return has_table(conn, ASSETS_TABLE)


def open_target(path: str, timeout: float) -> sqlite3.Connection:
    """A connection with the store's settings: WAL, synchronous=NORMAL, a busy timeout,
    and the two temp tables a table copy deduplicates with (:func:`reset_seen`)."""
    from ...errors import DatabaseError
    from .faults import check_writable, fault

    check_writable(path)  # a read-only file or folder: PermissionError naming it
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.OperationalError as exc:  # e.g. its folder does not exist
        raise OSError(f"Cannot open {path!r} to copy into: {exc}") from None
    try:
        retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone(), timeout, path)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS xt_runs (track_id TEXT PRIMARY KEY) WITHOUT ROWID")
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS xt_seen (track_id TEXT NOT NULL, timestamp TEXT NOT NULL,"
            " PRIMARY KEY (track_id, timestamp)) WITHOUT ROWID"
        )
    except sqlite3.DatabaseError as exc:
        conn.close()
        clear = fault(exc, path, timeout)
        if clear is not None and not isinstance(clear, DatabaseError):
            raise clear from None  # busy, out of disk, read-only
        if "not a database" not in str(exc) and "malformed" not in str(exc):
            raise  # SQLite's own message says it
        raise DatabaseError(f"{path!r} is not a SQLite database or is damaged ({exc})") from None
    return conn


def close(conn: sqlite3.Connection) -> None:
    conn.close()


def all_or_nothing(dst: sqlite3.Connection, path: str, body: Callable[[], Any], timeout: float) -> Any:
    """``body()`` as ONE transaction of TARGET (``BEGIN IMMEDIATE``, waiting up to
    ``timeout`` for other writers); rolled back on any error, a fault of the file (out of
    disk, read-only) raised as its clear error."""
    from ...errors import DatabaseError
    from .faults import fault

    try:
        with immediate(dst, timeout, path):  # the body runs once
            return body()
    except BaseException as exc:
        clear = fault(exc, path) if isinstance(exc, sqlite3.Error) else None
        if clear is None or isinstance(clear, DatabaseError):
            raise  # a damaged file may be SOURCE as well as TARGET: SQLite's words stand
        raise clear from None


def transaction(conn: sqlite3.Connection, body: Callable[[], Any], timeout: float) -> Any:
    """``body`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back and retried when busy;
    inside the copy's one transaction (:func:`all_or_nothing`), just ``body``."""
    if conn.in_transaction:
        return body()
    return transact(conn, body, timeout)


def ensure_table(
    dst: sqlite3.Connection,
    table: str,
    wanted: list[tuple[str, str]],
    types: dict[str, str] | None = None,
    preferred: Collection[str] = (),
) -> dict[str, str]:
    """Under the write lock: create the table and add its missing keys, as the store does:
    columns while the table has room, the rest spilled (:func:`.spill.split`, with
    ``preferred``, lower-cased, taking the columns kept for params and steps).

    ``types``: SOURCE's logical types, which widen TARGET's as the values would: an
    untyped column takes SOURCE's type, an INTEGER one becomes REAL when SOURCE's is.

    Returns lower-cased name -> the target's spelling of every key (spilled ones too).
    """
    own = [name for (name,) in dst.execute("SELECT name FROM main.pragma_table_info(?)", (table,))]
    width, linked = len(own), spill.LINK in own
    declared = dict(columns(dst, table))
    existing = {name.lower(): name for name in declared}
    if not existing:
        base = ", ".join(f"{quote(n)} {t}" for n, t in BASE_COLUMNS.items())
        dst.execute(f"CREATE TABLE IF NOT EXISTS main.{quote(table)} ({base})")
        index = quote(f"ix_{table}_{TRACK_ID}")
        dst.execute(f"CREATE INDEX IF NOT EXISTS main.{index} ON {quote(table)} ({quote(TRACK_ID)})")
        existing = {name.lower(): name for name in BASE_COLUMNS}
        declared, width, linked = dict(BASE_COLUMNS), len(BASE_COLUMNS), False
    missing = {name.lower(): (name, decl) for name, decl in wanted if name.lower() not in existing}
    if missing:
        fit, rest = _placed(dst, table, width, linked, [n for n, _ in missing.values()], preferred)
        for name in fit:
            decl = missing[name.lower()][1]
            dst.execute(f"ALTER TABLE main.{quote(table)} ADD COLUMN {quote(name)} {decl}".rstrip())
            existing[name.lower()] = name
            declared[name] = decl.upper()
        if rest:  # keys past TARGET's columns: spilled there, by its own rules
            if not linked:
                spill.add_link(dst, table)
            spill.register(dst, table, rest)
            existing.update((name.lower(), name) for name in rest)
    if types:
        proposed = {existing[name.lower()]: kind for name, kind in types.items() if name.lower() in existing}
        record_types(dst, table, proposed, {name: decl.upper() for name, decl in declared.items()})
    return existing


def _placed(
    dst: sqlite3.Connection, table: str, width: int, linked: bool, names: list[str], preferred: Collection[str]
) -> tuple[list[str], list[str]]:
    """(the keys that become columns, the keys spilled) of ``names``, which TARGET's table
    (``width`` columns) lacks; refuses when the table has no room left for its link."""
    from ...errors import ColumnLimitError
    from .limits import sqlite_limit

    limit = sqlite_limit(dst, "SQLITE_LIMIT_COLUMN", 2000)  # 2000: SQLite's default
    fit, rest = spill.split(limit, width, linked, names, preferred)
    if rest and not linked and width + 1 > limit:
        raise ColumnLimitError(
            f"Table {table!r} of the target has {width} columns, SQLite's limit of {limit}, and no room left "
            f"for the link that keys past it need ({', '.join(rest[:5])}{', ...' if len(rest) > 5 else ''}). "
            "Nothing was copied: copy into another file"
        )
    return fit, rest


def params_of(conn: sqlite3.Connection, table: str) -> list[str]:
    """The keys of ``table`` the file records as params (``xetrack_kinds``): with the
    steps, the keys that take the columns a table keeps for them (:func:`ensure_table`)."""
    from .roles import read_roles

    return [key for key, role in read_roles(conn, table).items() if role == "param"]


# -- one table's rows --------------------------------------------------------------
def reset_seen(src: sqlite3.Connection, dst: sqlite3.Connection, table: str, track_id: str, chunk: int) -> None:
    """Fill ``temp.xt_runs`` with SOURCE's track_ids of ``table`` and empty
    ``temp.xt_seen``: deduplication runs in TARGET's connection, on disk."""
    dst.execute("DELETE FROM temp.xt_runs")
    dst.execute("DELETE FROM temp.xt_seen")
    cursor = src.execute(
        f"SELECT DISTINCT {quote(track_id)} FROM main.{quote(table)} WHERE {quote(track_id)} IS NOT NULL"
    )
    while True:
        rows = cursor.fetchmany(chunk)
        if not rows:
            break
        dst.executemany("INSERT OR IGNORE INTO temp.xt_runs (track_id) VALUES (?)", rows)


def row_pages(src: sqlite3.Connection, table: str, names: Sequence[str], size: int) -> Iterator[list[Row]]:
    """SOURCE's rows of ``table`` (keys ``names``, spilled ones too) in rowid order,
    ``size`` at a time."""
    lower = {key.lower(): key for key in spill.spilled_keys(src, table)}
    spilled = {i: lower[n.lower()] for i, n in enumerate(names) if n.lower() in lower}
    if not spilled:
        yield from _column_pages(src, table, names, size)
        return
    own = [n for i, n in enumerate(names) if i not in spilled]
    for page in _column_pages(src, table, [*own, spill.LINK], size):
        links = [row[-1] for row in page]
        found = spill.values_for(src, table, links)
        values = list(spill.columns(links, list(spilled.values()), found).items())
        at = {i: values[j][1] for j, i in enumerate(spilled)}
        out = []
        for r, row in enumerate(page):
            wide = iter(row)
            out.append(tuple(at[i][r] if i in at else next(wide) for i in range(len(names))))
        yield out


def _column_pages(src: sqlite3.Connection, table: str, names: Sequence[str], size: int) -> Iterator[list[Row]]:
    rowid = rowid_alias(names)
    cols = ", ".join(quote(n) for n in names)
    base = f"SELECT {rowid}, {cols} FROM main.{quote(table)}"
    last = None
    while True:
        params: tuple[Any, ...]
        if last is None:
            sql, params = f"{base} ORDER BY {rowid} LIMIT ?", (size,)
        else:
            sql, params = f"{base} WHERE {rowid} > ? ORDER BY {rowid} LIMIT ?", (last, size)
        rows = src.execute(sql, params).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield [row[1:] for row in rows]


def catch_up(dst: sqlite3.Connection, table: str, target: dict[str, str], mark: int | None) -> int:
    """Under the write lock: add TARGET's rows of the runs in ``xt_runs`` past rowid
    ``mark`` (None: all of them) to ``xt_seen``; returns how many were added."""
    rowid = rowid_alias(target.values())
    track_id, timestamp = quote(target[TRACK_ID]), quote(target[TIMESTAMP])
    select = (
        f"SELECT {track_id}, {timestamp} FROM main.{quote(table)} WHERE {track_id} IN"
        f" (SELECT track_id FROM temp.xt_runs) AND {timestamp} IS NOT NULL"
    )
    params: tuple[Any, ...] = ()
    if mark is not None:
        select += f" AND {rowid} > ?"
        params = (mark,)
    return max(0, dst.execute(f"INSERT OR IGNORE INTO temp.xt_seen {select}", params).rowcount)


def unseen(dst: sqlite3.Connection, rows: list[Row], tid: int, ts: int) -> list[Row]:
    """The rows whose (track_id, timestamp), at positions ``tid`` and ``ts``, ``xt_seen`` lacks."""
    exists = "SELECT 1 FROM temp.xt_seen WHERE track_id = ? AND timestamp = ?"
    return [r for r in rows if not dst.execute(exists, (r[tid], r[ts])).fetchone()]


def top(dst: sqlite3.Connection, table: str, target: dict[str, str]) -> int:
    """TARGET's highest rowid of ``table`` (0 when empty): the next :func:`catch_up`'s mark."""
    rowid = rowid_alias(target.values())
    return dst.execute(f"SELECT max({rowid}) FROM main.{quote(table)}").fetchone()[0] or 0


def insert_rows(
    dst: sqlite3.Connection, table: str, names: tuple[str, ...], rows: list[Row], cache: dict[Any, Any]
) -> None:
    """INSERT ``rows`` (values in ``names`` order, TARGET's spellings): the values of
    TARGET's columns into its table, those of its spilled keys into the spill under new
    links (:func:`.spill.insert_rows`); ``cache`` keeps the plan per names."""
    plan = cache.get(names)
    if plan is None:
        lower = {key.lower(): key for key in spill.spilled_keys(dst, table)}
        at = {i: lower[n.lower()] for i, n in enumerate(names) if n.lower() in lower}
        wide = [i for i in range(len(names)) if i not in at]
        cols = [names[i] for i in wide] + ([spill.LINK] if at else [])
        marks = ", ".join("?" * len(cols))
        sql = f"INSERT INTO main.{quote(table)} ({', '.join(quote(n) for n in cols)}) VALUES ({marks})"
        plan = cache[names] = (sql, wide, at)
    sql, wide, at = plan
    if at:
        spill.insert_rows(dst, table, sql, rows, wide, at)
    else:
        dst.executemany(sql, rows)


def count_references(dst: sqlite3.Connection, refs: Counter[str]) -> None:
    """Count one more reference per row pointing at each stored asset, as ``log()`` does."""
    if not refs or not has_table(dst, ASSETS_TABLE):
        return
    from .assets import write_assets as _write_assets

    _write_assets(dst, AssetWrites(refs=refs))


# -- assets --------------------------------------------------------------------------
def copy_assets(src: sqlite3.Connection, dst: sqlite3.Connection, timeout: float) -> int:
    """Copy the objects TARGET lacks; returns how many. Reference counts follow the rows."""
    from .assets import create_asset_tables as _create_asset_tables

    copied = 0
    batch: list[tuple[str, bytes]] = []
    size = 0

    def flush() -> None:
        nonlocal copied, batch, size

        def body() -> int:
            _create_asset_tables(dst)
            sql = f"INSERT OR IGNORE INTO main.{quote(ASSETS_TABLE)} (key, value) VALUES (?, ?)"
            return sum(dst.execute(sql, item).rowcount for item in batch)

        copied += transaction(dst, body, timeout)
        batch, size = [], 0

    target_has_assets = has_table(dst, ASSETS_TABLE)
    last = None
    while True:
        page_sql = f"SELECT rowid, key FROM main.{quote(ASSETS_TABLE)}"
        page = src.execute(
            page_sql + (" WHERE rowid > ?" if last is not None else "") + f" ORDER BY rowid LIMIT {ASSETS_PER_BATCH}",
            () if last is None else (last,),
        ).fetchall()
        if not page:
            break
        last = page[-1][0]
        for _, key in page:
            if (
                target_has_assets
                and dst.execute(f"SELECT 1 FROM main.{quote(ASSETS_TABLE)} WHERE key = ?", (key,)).fetchone()
            ):
                continue  # content-addressed: the same key holds the same bytes
            (value,) = src.execute(f"SELECT value FROM main.{quote(ASSETS_TABLE)} WHERE key = ?", (key,)).fetchone()
            batch.append((key, value))
            size += len(value) if isinstance(value, (bytes, str)) else 0
            if size >= ASSET_BYTES_PER_BATCH or len(batch) >= ASSETS_PER_BATCH:
                flush()
                target_has_assets = True
    if batch:
        flush()
    return copied
