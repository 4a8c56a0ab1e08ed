"""Run metadata beside the wide tables: tags, run names, recorded kinds, descriptions.

Four side tables (``xetrack_*`` names are reserved), every piece of their SQL here:

- ``xetrack_tags``: (table, track_id, key) -> value. Labels that can change after the run;
- ``xetrack_run_names``: (table, track_id) -> run_name, a display name next to the id;
- ``xetrack_kinds``: (table, column) -> ``param`` or ``metric``, recorded when written,
  so ``runs()`` does not have to guess from the values;
- ``xetrack_descriptions``: table -> description.

Any change to the first three through these functions bumps the run summary's ``gen``
(as a change of ``xetrack_runs`` does), so cached ``runs()``/``search()`` frames go stale.

>>> from xetrack import Tracker, Reader
>>> t = Tracker(Tracker.IN_MEMORY)
>>> t.set_tag("team", "vision")
>>> get_tags(t._engine, "default", t.track_id)
{'team': 'vision'}
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Mapping

from .schema import INTERNAL_PREFIX, quote

TAGS = INTERNAL_PREFIX + "tags"
NAMES = INTERNAL_PREFIX + "run_names"
KINDS = INTERNAL_PREFIX + "kinds"
DESCRIPTIONS = INTERNAL_PREFIX + "descriptions"
KIND_VALUES = ("param", "metric")
#: The column prefix of tags in runs()/search()/compare(), as in MLflow's filter syntax.
TAG_PREFIX = "tags."
RUN_NAME = "run_name"

_DDL = {
    TAGS: f'CREATE TABLE IF NOT EXISTS {quote(TAGS)} ("table" TEXT NOT NULL, "track_id" TEXT NOT NULL, '
          '"key" TEXT NOT NULL, "value" TEXT, PRIMARY KEY ("table", "track_id", "key"))',
    NAMES: f'CREATE TABLE IF NOT EXISTS {quote(NAMES)} ("table" TEXT NOT NULL, "track_id" TEXT NOT NULL, '
           '"run_name" TEXT NOT NULL, PRIMARY KEY ("table", "track_id"))',
    KINDS: f'CREATE TABLE IF NOT EXISTS {quote(KINDS)} ("table" TEXT NOT NULL, "column" TEXT NOT NULL, '
           '"kind" TEXT NOT NULL, "key" TEXT, PRIMARY KEY ("table", "column"))',
    DESCRIPTIONS: f'CREATE TABLE IF NOT EXISTS {quote(DESCRIPTIONS)} ("table" TEXT PRIMARY KEY, "description" TEXT)',
}


#: The columns ``xetrack.copy`` carries over, per side table (TARGET's own rows win). The
#: recorded kinds come along, so a metric logged once stays a metric in TARGET.
COPY_COLUMNS = {
    TAGS: ("table", "track_id", "key", "value"),
    NAMES: ("table", "track_id", "run_name"),
    KINDS: ("table", "column", "kind", "key"),
    DESCRIPTIONS: ("table", "description"),
}


def copy_between(src: Any, dst: Any, table: str) -> int:
    """Carry ``table``'s rows of :data:`COPY_COLUMNS` from engine ``src`` to ``dst``, on
    any engines (a copy with a PostgreSQL side); rows ``dst`` already holds are kept.
    Returns how many side tables had rows to carry."""
    carried = 0
    for name, cols in COPY_COLUMNS.items():
        names = ", ".join(quote(c) for c in cols)
        rows = _read(src, name, f'SELECT {names} FROM {quote(name)} WHERE "table" = ?', (table,))
        if rows:
            marks = ", ".join("?" for _ in cols)
            _write(dst, name, f"INSERT INTO {quote(name)} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING", rows)
            carried += 1
    return carried


def copy_sql(name: str) -> tuple[str, str]:
    """(the DDL, an INSERT OR IGNORE of :data:`COPY_COLUMNS`) of side table ``name``."""
    cols = COPY_COLUMNS[name]
    names = ", ".join(quote(c) for c in cols)
    return _DDL[name], f"INSERT OR IGNORE INTO main.{quote(name)} ({names}) VALUES ({', '.join('?' * len(cols))})"


def _on_postgres(engine: Any) -> bool:
    return getattr(engine, "dialect", "sqlite") == "postgres"


def _write(engine: Any, name: str, sql: str, rows: list[tuple[Any, ...]]) -> None:
    from .store import sqlite_engine

    if _on_postgres(engine):  # the same tables on the server; no run summary there to bump
        from .store import pg_side

        if rows:
            pg_side.meta_write(engine, _DDL[name], sql, rows)
        return
    sq = sqlite_engine(engine)
    if sq is None or not rows:  # SKIP_INSERT: nothing is stored
        return

    def body(conn: sqlite3.Connection) -> None:
        conn.execute(_DDL[name])
        before = conn.total_changes
        conn.executemany(sql, rows)
        if name != DESCRIPTIONS and conn.total_changes != before:
            bump(conn)

    sq.write(body)


def bump(conn: sqlite3.Connection) -> None:
    """Bump every table's summary gen: cached runs()/search() frames go stale, as they do
    on a change of ``xetrack_runs``. Without a summary there is nothing cached by gen."""
    from .summary import STATE

    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (STATE,)).fetchone():
        conn.execute(f'UPDATE {quote(STATE)} SET "gen" = "gen" + 1')


def _read(engine: Any, name: str, sql: str, binds: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    from .store import sqlite_engine

    if _on_postgres(engine):
        from .store import pg_side

        return pg_side.meta_read(engine, sql, list(binds))
    sq = sqlite_engine(engine)
    if sq is None:
        return []
    with sq._guard.lock:
        conn = sq._live()
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is None:
            return []
        return conn.execute(sql, list(binds)).fetchall()


def _text(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty str, got {value!r}")
    return value


# ---------------------------------------------------------------------- tags
def set_tags(engine: Any, table: str, track_id: str, tags: Mapping[Any, Any]) -> None:
    """Set (or overwrite) tags of one run; values are kept as text, as MLflow keeps them."""
    if not isinstance(tags, Mapping):
        raise TypeError(f"tags must be a dict, got {type(tags).__name__}")
    rows = []
    for key, value in tags.items():
        _text("A tag key", key)
        if value is None or not isinstance(value, (str, int, float, bool)):
            raise TypeError(f"Tag {key!r}: the value must be a str, int, float or bool, got {value!r}")
        rows.append((table, track_id, key, str(value)))
    _write(engine, TAGS, f'INSERT INTO {quote(TAGS)} ("table", "track_id", "key", "value") VALUES (?, ?, ?, ?) '
           'ON CONFLICT ("table", "track_id", "key") DO UPDATE SET "value" = excluded."value"', rows)


def delete_tag(engine: Any, table: str, track_id: str, key: str) -> bool:
    """Remove one tag; True when it existed."""
    if not _read(engine, TAGS, f'SELECT 1 FROM {quote(TAGS)} WHERE "table" = ? AND "track_id" = ? AND "key" = ?',
                 (table, track_id, key)):
        return False
    _write(engine, TAGS, f'DELETE FROM {quote(TAGS)} WHERE "table" = ? AND "track_id" = ? AND "key" = ?',
           [(table, track_id, key)])
    return True


def get_tags(engine: Any, table: str, track_id: str) -> dict[str, str]:
    """The tags of one run, by key."""
    rows = _read(engine, TAGS, f'SELECT "key", "value" FROM {quote(TAGS)} WHERE "table" = ? AND "track_id" = ? '
                 'ORDER BY "key"', (table, track_id))
    return dict(rows)


def tag_keys(engine: Any, table: str) -> list[str]:
    """Every tag key used in ``table``, sorted."""
    return [k for (k,) in _read(engine, TAGS, f'SELECT DISTINCT "key" FROM {quote(TAGS)} WHERE "table" = ? '
                                'ORDER BY "key"', (table,))]


# ------------------------------------------------------------------ run names
def set_run_name(engine: Any, table: str, track_id: str, run_name: str) -> None:
    """Give a run its display name (MLflow's ``run_name``)."""
    _text("run_name", run_name)
    _write(engine, NAMES, f'INSERT INTO {quote(NAMES)} ("table", "track_id", "run_name") VALUES (?, ?, ?) '
           'ON CONFLICT ("table", "track_id") DO UPDATE SET "run_name" = excluded."run_name"',
           [(table, track_id, run_name)])


def run_names(engine: Any, table: str) -> dict[str, str]:
    """track_id -> run_name of ``table``."""
    return dict(_read(engine, NAMES, f'SELECT "track_id", "run_name" FROM {quote(NAMES)} WHERE "table" = ?', (table,)))


def has_run_names(engine: Any, table: str) -> bool:
    return bool(_read(engine, NAMES, f'SELECT 1 FROM {quote(NAMES)} WHERE "table" = ? LIMIT 1', (table,)))


# ---------------------------------------------------------------------- kinds
def record_kinds(
    engine: Any, table: str, params: Iterable[str] = (), metrics: Iterable[str] = (),
    keys: Mapping[str, str] | None = None,
) -> None:
    """Record columns as params or metrics. A param is always recorded (it came through
    ``params=``/``set_params``); a metric only where nothing is recorded yet. ``keys``:
    column -> the key another tool named it by (an MLflow import keeps ``train/loss``)."""
    keys = keys or {}
    sql = (f'INSERT INTO {quote(KINDS)} ("table", "column", "kind", "key") VALUES (?, ?, ?, ?) '
           'ON CONFLICT ("table", "column") DO ')
    # Read first: a file's later runs log the keys its first runs recorded, and a read
    # takes no write lock (the writes below change nothing then).
    params, metrics = list(params), list(metrics)
    known = recorded_keys(engine, table, [*params, *metrics])
    p = [(table, c, "param", keys.get(c)) for c in params
         if known.get(c, ("",))[0] != "param" or keys.get(c) not in (None, known[c][1])]
    m = [(table, c, "metric", keys.get(c)) for c in metrics if c not in known]
    if p:
        k = quote(KINDS)  # the row already there, named in full: PostgreSQL finds a bare "key" ambiguous
        _write(engine, KINDS, sql + f'UPDATE SET "kind" = excluded."kind", "key" = coalesce(excluded."key", {k}."key") '
               f'WHERE {k}."kind" <> excluded."kind" OR excluded."key" IS NOT {k}."key"', p)
    if m:
        _write(engine, KINDS, sql + "NOTHING", m)


def kinds(engine: Any, table: str) -> dict[str, str]:
    """column -> ``param``/``metric`` as recorded; empty for files written before 0.8."""
    return {c: k for c, (k, _) in recorded_keys(engine, table).items()}


def recorded_keys(engine: Any, table: str, columns: Iterable[str] | None = None) -> dict[str, tuple[str, str | None]]:
    """column -> (kind, the original key or None); of ``columns`` only, when given."""
    sql = f'SELECT "column", "kind", "key" FROM {quote(KINDS)} WHERE "table" = ?'
    if columns is None:
        rows = _read(engine, KINDS, sql, (table,))
    else:
        wanted = list(columns)
        rows = []
        for start in range(0, len(wanted), 500):  # bound the number of bound values
            part = wanted[start:start + 500]
            rows += _read(engine, KINDS, sql + f' AND "column" IN ({", ".join("?" for _ in part)})', (table, *part))
    return {c: (k, key) for c, k, key in rows}


# --------------------------------------------------------------- descriptions
def describe_table(engine: Any, table: str, text: str | None) -> None:
    """Keep ``text`` as the table's description (None removes it)."""
    if text is None:
        _write(engine, DESCRIPTIONS, f'DELETE FROM {quote(DESCRIPTIONS)} WHERE "table" = ?', [(table,)])
        return
    if not isinstance(text, str):
        raise TypeError(f"description must be a str, got {type(text).__name__}")
    _write(engine, DESCRIPTIONS, f'INSERT INTO {quote(DESCRIPTIONS)} ("table", "description") VALUES (?, ?) '
           'ON CONFLICT ("table") DO UPDATE SET "description" = excluded."description"', [(table, text)])


def descriptions(engine: Any) -> dict[str, str]:
    """table -> description."""
    return dict(_read(engine, DESCRIPTIONS, f'SELECT "table", "description" FROM {quote(DESCRIPTIONS)}'))


# ------------------------------------------------------------ runs() columns
def summary_columns(engine: Any, table: str) -> tuple[bool, list[str]]:
    """(whether the table has run names, its tag keys): the extra runs() columns."""
    return has_run_names(engine, table), tag_keys(engine, table)


def wrap_select(sql: str, base: list[str], rest: list[str], names: bool, keys: list[str], table: str,
                binds: list[Any]) -> tuple[str, list[Any]]:
    """The runs SELECT ``sql`` (columns ``base`` then ``rest``) with ``run_name`` after
    ``track_id`` and a ``tags.<key>`` column per key at the end."""
    cols = [f"s.{quote(base[0])}"]
    extra: list[Any] = []
    if names:
        cols.append(f'(SELECT n."run_name" FROM {quote(NAMES)} AS n WHERE n."table" = ? '
                    f'AND n."track_id" = s."track_id") AS {quote(RUN_NAME)}')
        extra.append(table)
    cols += [f"s.{quote(c)}" for c in base[1:] + rest]
    for key in keys:
        cols.append(f'(SELECT g."value" FROM {quote(TAGS)} AS g WHERE g."table" = ? AND g."track_id" = s."track_id" '
                    f'AND g."key" = ?) AS {quote(TAG_PREFIX + key)}')
        extra += [table, key]
    return f"SELECT {', '.join(cols)} FROM ({sql}) AS s", [*extra, *binds]
