"""Run metadata's SQL on a SQLite file (the sqlite and duckdb engines): tags, run names,
recorded kinds and table descriptions (:mod:`xetrack.meta` checks the values).

:mod:`.pg_meta` has the same functions for PostgreSQL and runs these very statements
(plain SQL both engines read; it swaps the ``?`` placeholders for ``%s``):
:func:`set_tags`, :func:`delete_tag`, :func:`tags_of`, :func:`tag_keys`,
:func:`set_run_name`, :func:`run_names`, :func:`has_run_names`, :func:`put_kinds`,
:func:`recorded_keys`, :func:`describe`, :func:`descriptions`, :func:`copy_rows`,
:func:`put_copied`, :func:`read`, :func:`write`.

On SQLite, a change of tags, names or kinds bumps the run summary's ``gen`` (as a change
of ``xetrack_runs`` does), so cached ``runs()``/``search()`` frames go stale. Under
Tracker.SKIP_INSERT (no file) writes keep nothing and reads find nothing.

>>> from xetrack.store import open_engine, IN_MEMORY
>>> engine = open_engine(IN_MEMORY)
>>> set_tags(engine, [("default", "fierce-pudu-1649", "team", "vision")])
>>> tags_of(engine, "default", "fierce-pudu-1649")
[('team', 'vision')]
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Sequence

from ...schema import quote
from .. import sqlite_engine
from ..base import Engine, Roles, has_table, rows_if_table
from ..tables import DESCRIPTIONS, KINDS, RUN_NAMES, SUMMARY_STATE, TAGS


#: The column prefix of tags in runs()/search()/compare(), as in MLflow's filter syntax.
TAG_PREFIX = "tags."
RUN_NAME = "run_name"
DDL = {
    TAGS: f'CREATE TABLE IF NOT EXISTS {quote(TAGS)} ("table" TEXT NOT NULL, "track_id" TEXT NOT NULL, '
          '"key" TEXT NOT NULL, "value" TEXT, PRIMARY KEY ("table", "track_id", "key"))',
    RUN_NAMES: f'CREATE TABLE IF NOT EXISTS {quote(RUN_NAMES)} ("table" TEXT NOT NULL, "track_id" TEXT NOT NULL, '
           '"run_name" TEXT NOT NULL, PRIMARY KEY ("table", "track_id"))',
    KINDS: f'CREATE TABLE IF NOT EXISTS {quote(KINDS)} ("table" TEXT NOT NULL, "column" TEXT NOT NULL, '
           '"kind" TEXT NOT NULL, "key" TEXT, PRIMARY KEY ("table", "column"))',
    DESCRIPTIONS: f'CREATE TABLE IF NOT EXISTS {quote(DESCRIPTIONS)} ("table" TEXT PRIMARY KEY, "description" TEXT)',
}
#: The columns ``xetrack.copy`` carries over, per side table (TARGET's own rows win).
COPY_COLUMNS = {
    TAGS: ("table", "track_id", "key", "value"),
    RUN_NAMES: ("table", "track_id", "run_name"),
    KINDS: ("table", "column", "kind", "key"),
    DESCRIPTIONS: ("table", "description"),
}

# The statements, shared with pg_meta: names quoted, values bound, never user text.
SET_TAGS = (f'INSERT INTO {quote(TAGS)} ("table", "track_id", "key", "value") VALUES (?, ?, ?, ?) '
            'ON CONFLICT ("table", "track_id", "key") DO UPDATE SET "value" = excluded."value"')
FIND_TAG = f'SELECT 1 FROM {quote(TAGS)} WHERE "table" = ? AND "track_id" = ? AND "key" = ?'
DELETE_TAG = f'DELETE FROM {quote(TAGS)} WHERE "table" = ? AND "track_id" = ? AND "key" = ?'
TAGS_OF = f'SELECT "key", "value" FROM {quote(TAGS)} WHERE "table" = ? AND "track_id" = ? ORDER BY "key"'
TAG_KEYS = f'SELECT DISTINCT "key" FROM {quote(TAGS)} WHERE "table" = ? ORDER BY "key"'
SET_RUN_NAME = (f'INSERT INTO {quote(RUN_NAMES)} ("table", "track_id", "run_name") VALUES (?, ?, ?) '
                'ON CONFLICT ("table", "track_id") DO UPDATE SET "run_name" = excluded."run_name"')
RUN_NAMES_OF = f'SELECT "track_id", "run_name" FROM {quote(RUN_NAMES)} WHERE "table" = ?'
HAS_RUN_NAMES = f'SELECT 1 FROM {quote(RUN_NAMES)} WHERE "table" = ? LIMIT 1'
_K = quote(KINDS)  # the row already there, named in full: PostgreSQL finds a bare "key" ambiguous
PUT_KINDS = (f'INSERT INTO {_K} ("table", "column", "kind", "key") VALUES (?, ?, ?, ?) ON CONFLICT ("table", "column") DO ')
REPLACE_KINDS = (PUT_KINDS + f'UPDATE SET "kind" = excluded."kind", "key" = coalesce(excluded."key", {_K}."key") '
                 f'WHERE {_K}."kind" <> excluded."kind" OR excluded."key" IS NOT {_K}."key"')
KEEP_KINDS = PUT_KINDS + "NOTHING"
RECORDED_KEYS = f'SELECT "column", "kind", "key" FROM {_K} WHERE "table" = ?'
DESCRIBE = (f'INSERT INTO {quote(DESCRIPTIONS)} ("table", "description") VALUES (?, ?) '
            'ON CONFLICT ("table") DO UPDATE SET "description" = excluded."description"')
UNDESCRIBE = f'DELETE FROM {quote(DESCRIPTIONS)} WHERE "table" = ?'
DESCRIPTIONS_OF = f'SELECT "table", "description" FROM {quote(DESCRIPTIONS)}'


def columns_in(sql: str, columns: Sequence[str]) -> str:
    """``sql`` (ending in a WHERE clause) narrowed to ``"column" IN (?, ...)``, one mark per column."""
    return sql + f' AND "column" IN ({", ".join("?" for _ in columns)})'


def copy_select(name: str) -> str:
    """The read of one table's rows of side table ``name`` (its :data:`COPY_COLUMNS`)."""
    return f'SELECT {", ".join(quote(c) for c in COPY_COLUMNS[name])} FROM {quote(name)} WHERE "table" = ?'


def copy_insert(name: str) -> str:
    """The insert of rows of :data:`COPY_COLUMNS` that keeps rows already there."""
    cols = COPY_COLUMNS[name]
    return (f'INSERT INTO {quote(name)} ({", ".join(quote(c) for c in cols)}) '
            f'VALUES ({", ".join("?" for _ in cols)}) ON CONFLICT DO NOTHING')


def copy_sql(name: str) -> tuple[str, str]:
    """(the DDL, an INSERT OR IGNORE of :data:`COPY_COLUMNS`) of side table ``name``, on
    a SQLite connection whose main database is the copy's target."""
    cols = COPY_COLUMNS[name]
    names = ", ".join(quote(c) for c in cols)
    return DDL[name], f"INSERT OR IGNORE INTO main.{quote(name)} ({names}) VALUES ({', '.join('?' * len(cols))})"


# --------------------------------------------------------------- the two executors
def write(engine: Engine, name: str, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Create side table ``name`` if needed, then run ``sql`` once per row, in one write
    transaction; bumps the run summary's gen when a row of any but descriptions changed."""
    sq = sqlite_engine(engine)
    if sq is None or not rows:  # SKIP_INSERT: nothing is stored
        return

    def body(conn: sqlite3.Connection) -> None:
        conn.execute(DDL[name])
        before = conn.total_changes
        conn.executemany(sql, rows)
        if name != DESCRIPTIONS and conn.total_changes != before:
            bump(conn)

    sq.write(body)


def read(engine: Engine, name: str, sql: str, binds: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``sql``; none when side table ``name`` was never created."""
    sq = sqlite_engine(engine)
    if sq is None:
        return []
    with sq.reading() as conn:
        if not has_table(conn, name):
            return []
        return conn.execute(sql, list(binds)).fetchall()


def bump(conn: sqlite3.Connection) -> None:
    """Bump every table's summary gen: cached runs()/search() frames go stale, as they do
    on a change of ``xetrack_runs``. Without a summary there is nothing cached by gen."""
    pass  # the run summary's own table (SQLite only)

    if has_table(conn, SUMMARY_STATE):
        conn.execute(f'UPDATE {quote(SUMMARY_STATE)} SET "gen" = "gen" + 1')


# ------------------------------------------------------------------ the operations
def set_tags(engine: Engine, rows: Sequence[tuple[str, str, str, str]]) -> None:
    """Set (or overwrite) tags given as ``(table, track_id, key, value)``."""
    write(engine, TAGS, SET_TAGS, rows)


def delete_tag(engine: Engine, table: str, track_id: str, key: str) -> bool:
    """Remove one tag; True when it existed."""
    if not read(engine, TAGS, FIND_TAG, (table, track_id, key)):
        return False
    write(engine, TAGS, DELETE_TAG, [(table, track_id, key)])
    return True


def tags_of(engine: Engine, table: str, track_id: str) -> list[tuple[str, str]]:
    """``(key, value)`` of one run's tags, by key."""
    return read(engine, TAGS, TAGS_OF, (table, track_id))


def tag_keys(engine: Engine, table: str) -> list[str]:
    """Every tag key used in ``table``, sorted."""
    return [k for (k,) in read(engine, TAGS, TAG_KEYS, (table,))]


def set_run_name(engine: Engine, table: str, track_id: str, run_name: str) -> None:
    write(engine, RUN_NAMES, SET_RUN_NAME, [(table, track_id, run_name)])


def run_names(engine: Engine, table: str) -> list[tuple[str, str]]:
    """``(track_id, run_name)`` of ``table``."""
    return read(engine, RUN_NAMES, RUN_NAMES_OF, (table,))


def has_run_names(engine: Engine, table: str) -> bool:
    return bool(read(engine, RUN_NAMES, HAS_RUN_NAMES, (table,)))


def put_kinds(engine: Engine, rows: Sequence[tuple[str, str, str, str | None]], replace: bool) -> None:
    """Record ``(table, column, kind, key)`` rows; ``replace=False`` keeps what is recorded."""
    write(engine, KINDS, REPLACE_KINDS if replace else KEEP_KINDS, rows)


def read_roles(conn: sqlite3.Connection, table: str, columns: Sequence[str] | None = None) -> dict[str, str]:
    """column -> 'param'/'metric' recorded for ``table`` (of ``columns`` only, when given),
    read on the engine's connection."""
    return {c: k for c, k, _ in _recorded_keys(lambda _e, _n, sql, binds: rows_if_table(conn, sql, binds),
                                               None, table, columns)}


def write_roles(conn: sqlite3.Connection, table: str, roles: Roles) -> dict[str, str]:
    """Inside a write transaction (the rows' own): record ``roles`` (a param replaces what
    is recorded, a metric is kept only where nothing is); returns them, as this process
    may now take them to be recorded. The upserts decide under the write lock, so there
    is nothing to read first."""
    params = [(table, c, "param", None) for c, role in roles.items() if role == "param"]
    metrics = [(table, c, "metric", None) for c, role in roles.items() if role != "param"]
    before = conn.total_changes
    try:
        _upsert_roles(conn, params, metrics)
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        conn.execute(DDL[KINDS])  # the first roles of the file
        _upsert_roles(conn, params, metrics)
    if conn.total_changes != before:
        bump(conn)
    return dict(roles)


def _upsert_roles(conn: sqlite3.Connection, params: list[tuple[Any, ...]], metrics: list[tuple[Any, ...]]) -> None:
    if params:
        conn.executemany(REPLACE_KINDS, params)
    if metrics:
        conn.executemany(KEEP_KINDS, metrics)


def recorded_keys(engine: Engine, table: str, columns: Sequence[str] | None = None) -> list[tuple[str, str, Any]]:
    """``(column, kind, key)`` recorded for ``table``; of ``columns`` only, when given."""
    return _recorded_keys(read, engine, table, columns)


def _recorded_keys(reader: Any, engine: Any, table: str, columns: Sequence[str] | None) -> list[tuple[str, str, Any]]:
    if columns is None:
        return reader(engine, KINDS, RECORDED_KEYS, (table,))
    rows: list[tuple[str, str, Any]] = []
    for start in range(0, len(columns), 500):  # bound the number of bound values
        part = list(columns[start:start + 500])
        rows += reader(engine, KINDS, columns_in(RECORDED_KEYS, part), (table, *part))
    return rows


def describe(engine: Engine, table: str, text: str | None) -> None:
    """Keep ``text`` as the table's description (None removes it)."""
    if text is None:
        write(engine, DESCRIPTIONS, UNDESCRIBE, [(table,)])
    else:
        write(engine, DESCRIPTIONS, DESCRIBE, [(table, text)])


def descriptions(engine: Engine) -> list[tuple[str, str]]:
    """``(table, description)`` of every described table."""
    return read(engine, DESCRIPTIONS, DESCRIPTIONS_OF)


def copy_rows(engine: Engine, name: str, table: str) -> list[tuple[Any, ...]]:
    """``table``'s rows of side table ``name`` (its :data:`COPY_COLUMNS`), for a copy."""
    return read(engine, name, copy_select(name), (table,))


def put_copied(engine: Engine, name: str, rows: Sequence[Sequence[Any]]) -> None:
    """Add copied rows of side table ``name``; rows already there are kept."""
    write(engine, name, copy_insert(name), rows)


# ------------------------------------------------------------ runs() columns
def wrap_select(sql: str, base: list[str], rest: list[str], names: bool, keys: list[str], table: str,
                binds: list[Any]) -> tuple[str, list[Any]]:
    """The runs SELECT ``sql`` (columns ``base`` then ``rest``) with ``run_name`` after
    ``track_id`` and a ``tags.<key>`` column per key at the end."""
    cols = [f"s.{quote(base[0])}"]
    extra: list[Any] = []
    if names:
        cols.append(f'(SELECT n."run_name" FROM {quote(RUN_NAMES)} AS n WHERE n."table" = ? '
                    f'AND n."track_id" = s."track_id") AS {quote(RUN_NAME)}')
        extra.append(table)
    cols += [f"s.{quote(c)}" for c in base[1:] + rest]
    for key in keys:
        cols.append(f'(SELECT g."value" FROM {quote(TAGS)} AS g WHERE g."table" = ? AND g."track_id" = s."track_id" '
                    f'AND g."key" = ?) AS {quote(TAG_PREFIX + key)}')
        extra += [table, key]
    return f"SELECT {', '.join(cols)} FROM ({sql}) AS s", [*extra, *binds]


__all__ = ["set_tags", "delete_tag", "tags_of", "tag_keys", "set_run_name", "run_names", "has_run_names",
           "put_kinds", "recorded_keys", "describe", "descriptions", "copy_rows", "put_copied", "read", "write",
           "bump", "copy_sql", "wrap_select"]
