"""The model registry: named, numbered model versions on the content-addressed store.

- ``xetrack_models``: name, version, hash, kind, track_id, table, description, created.
  ``kind`` is ``asset`` (a pickled object in the asset store, loaded by unpickling) or
  ``artifact`` (bytes logged with ``log_artifact``, loaded as bytes).
- ``xetrack_model_aliases``: name, alias, version. An alias such as ``production``
  points at exactly one version of a name; setting it again moves it.

Versions are numbered 1, 2, 3... per name, inside the write transaction that records
them, so two processes registering at once get two different numbers.

On PostgreSQL the same tables are written through :mod:`xetrack.store.pg_models`
(numbers taken with the registry table locked against other registrations).

A model is named ``'iris'`` (the latest version), ``'iris:3'`` (version 3) or
``'iris@production'`` (the version the alias points at). ``@latest`` is the latest.
"""

from __future__ import annotations

import io
import re
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from .assets import compress_asset, decode_asset, is_asset_hash, pickle_asset, verify_asset
from .errors import NotFoundError
from .schema import ASSETS_TABLE, INTERNAL_PREFIX, quote
from .store import blobs, sqlite_engine
from .store.base import close_matches

if TYPE_CHECKING:
    import pandas as pd

    from .store.sqlite import SQLiteEngine

MODELS = INTERNAL_PREFIX + "models"
ALIASES = INTERNAL_PREFIX + "model_aliases"
LATEST = "latest"
COLUMNS = ("name", "version", "aliases", "hash", "kind", "size", "track_id", "description", "created")

#: The most bytes one ``bytea`` value holds in PostgreSQL.
PG_VALUE_LIMIT = 2**30 - 1
MODELS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {quote(MODELS)} ("
    '"name" TEXT NOT NULL, "version" INTEGER NOT NULL, "hash" TEXT NOT NULL, "kind" TEXT NOT NULL, '
    '"track_id" TEXT, "table" TEXT, "description" TEXT, "created" TEXT NOT NULL, '
    'PRIMARY KEY ("name", "version"))',
    f"CREATE TABLE IF NOT EXISTS {quote(ALIASES)} ("
    '"name" TEXT NOT NULL, "alias" TEXT NOT NULL, "version" INTEGER NOT NULL, PRIMARY KEY ("name", "alias"))',
)
_LABEL = re.compile(r"[^\s:@/\\][^:@/\\]*\Z")


def check_label(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"A model {what} must be a str, got {value!r}")
    if value != value.strip() or not _LABEL.match(value):
        raise ValueError(
            f"Model {what} {value!r} must be non-empty text without ':', '@', '/', '\\' or "
            "surrounding spaces"
        )
    return value


def check_alias(alias: Any) -> str:
    check_label(alias, "alias")
    if alias == LATEST or alias.isdigit():
        raise ValueError(f"{alias!r} cannot be an alias: '@latest' always means the latest version, and a "
                         "number reads as a version")
    return alias


def check_version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int):
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        else:
            raise TypeError(f"A model version must be a positive int, got {version!r}")
    if version < 1:
        raise ValueError(f"Model versions start at 1, got {version}")
    return version


def _pg(engine: Any) -> Any:
    """:mod:`.store.pg_models` when ``engine`` is PostgreSQL, else None."""
    if engine.dialect != "postgres":
        return None
    from .store import pg_models

    return pg_models


def _create(conn: sqlite3.Connection) -> None:
    for statement in MODELS_DDL:
        conn.execute(statement)


# ------------------------------------------------------------------- writing
def register(
    engine: Any,
    table: str,
    track_id: str,
    name: Any,
    model_or_hash: Any,
    alias: Any = None,
    description: Any = None,
    compress: bool = False,
) -> int:
    """Record version N+1 of ``name``; returns N+1 (0 under Tracker.SKIP_INSERT: nothing kept)."""
    from .runs import now

    check_label(name, "name")
    if alias is not None:
        check_alias(alias)
    if description is not None and not isinstance(description, str):
        raise TypeError(f"description must be a str or None, got {description!r}")
    pg = _pg(engine)
    sq = None if pg is not None else sqlite_engine(engine)
    data = None
    if isinstance(model_or_hash, str):
        key = model_or_hash
        kind = pg.kind_of(engine, key) if pg is not None and is_asset_hash(key) else (
            None if sq is None else _stored_kind(sq, key))
        if kind is None:
            raise ValueError(
                f"{key!r} is not the hash of an object or artifact stored in {getattr(sq or engine, 'path', None)!r}. "
                "Pass the model itself to store it, or the hash that log() or log_artifact() returned"
            )
    else:
        key, data = pickle_asset(model_or_hash, name)
        if compress:  # Tracker(compress=True); the key stays the pickle's hash
            data = compress_asset(data)
        kind = "asset"
    if pg is not None:
        return _register_pg(engine, pg, table, track_id, name, key, kind, data, alias, description)
    if sq is None:
        return 0

    def body(conn: sqlite3.Connection) -> int:
        _create(conn)
        if data is not None:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {quote(ASSETS_TABLE)} (key TEXT PRIMARY KEY, value BLOB)")
            blobs.check_pickle_size(conn, key, data)
            conn.execute(f"INSERT OR IGNORE INTO {quote(ASSETS_TABLE)} (key, value) VALUES (?, ?)", (key, data))
        elif _stored_kind_in(conn, key) is None:  # removed since we looked
            raise ValueError(f"{key!r} was removed from the store while registering {name!r}; nothing was written")
        version = conn.execute(
            f'SELECT coalesce(max("version"), 0) + 1 FROM {quote(MODELS)} WHERE "name" = ?', (name,)
        ).fetchone()[0]
        conn.execute(
            f"INSERT INTO {quote(MODELS)} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, version, key, kind, track_id, table, description, now()),
        )
        if alias is not None:
            _point(conn, name, alias, version)
        return version

    return sq.write(body)


def _register_pg(engine: Any, pg: Any, table: str, track_id: str, name: str, key: str, kind: str,
                 data: bytes | None, alias: str | None, description: str | None) -> int:
    """:func:`register` on PostgreSQL (the SQL is in :mod:`.store.pg_models`)."""
    from .runs import now

    if data is not None and len(data) > PG_VALUE_LIMIT:
        raise ValueError(
            f"Object {key} pickles to {len(data):,} bytes, more than PostgreSQL's limit of {PG_VALUE_LIMIT:,} "
            "bytes per value; nothing was written. Save it to a file and log that with "
            "tracker.log_artifact(path) (stored in chunks, any size), then "
            "tracker.register_model(name, hash) if it is a model"
        )

    def body(conn: Any) -> int:
        version = pg.next_version(conn, name)  # first: a gc waits for us, or we for it
        if data is not None:
            pg.put_asset(conn, key, data)
        elif pg.stored_kind(conn, key) is None:  # removed since we looked
            raise ValueError(f"{key!r} was removed from the store while registering {name!r}; nothing was written")
        pg.insert_version(conn, (name, version, key, kind, track_id, table, description, now()))
        if alias is not None:
            pg.point(conn, name, alias, version)
        return version

    return pg.write(engine, body, f"version of model {name!r}")


def _point(conn: sqlite3.Connection, name: str, alias: str, version: int) -> None:
    conn.execute(
        f'INSERT INTO {quote(ALIASES)} ("name", "alias", "version") VALUES (?, ?, ?) '
        'ON CONFLICT ("name", "alias") DO UPDATE SET "version" = excluded."version"',
        (name, alias, version),
    )


def set_alias(engine: Any, name: Any, version: Any, alias: Any) -> None:
    """Point ``alias`` of ``name`` at ``version``, moving it from the version it named."""
    check_label(name, "name")
    version = check_version(version)
    check_alias(alias)
    pg = _pg(engine)
    if pg is not None:
        def point(conn: Any) -> None:
            _pick(name, version, None, *pg.versions_in(conn, name))  # a clear error when it does not exist
            pg.point(conn, name, alias, version)

        return pg.write(engine, point, f"alias {alias!r} of model {name!r}")
    sq = sqlite_engine(engine)
    if sq is None:
        return

    def body(conn: sqlite3.Connection) -> None:
        _create(conn)
        _resolve(conn, name, version=version)  # a clear error when it does not exist
        _point(conn, name, alias, version)

    sq.write(body)


def delete_alias(engine: Any, name: Any, alias: Any) -> bool:
    """Remove an alias; returns whether it existed."""
    check_label(name, "name")
    check_label(alias, "alias")
    pg = _pg(engine)
    if pg is not None:
        return pg.write(engine, lambda conn: pg.drop_alias(conn, name, alias), f"alias {alias!r} of model {name!r}")
    sq = sqlite_engine(engine)
    if sq is None:
        return False

    def body(conn: sqlite3.Connection) -> bool:
        _create(conn)
        cur = conn.execute(f'DELETE FROM {quote(ALIASES)} WHERE "name" = ? AND "alias" = ?', (name, alias))
        return cur.rowcount > 0

    return sq.write(body)


def _stored_kind(sq: "SQLiteEngine", key: str) -> str | None:
    with sq._guard.lock:
        return _stored_kind_in(sq._live(), key)


def _stored_kind_in(conn: sqlite3.Connection, key: str) -> str | None:
    if not is_asset_hash(key):
        return None
    for kind, table, column in (("asset", ASSETS_TABLE, "key"), ("artifact", blobs.BLOBS, "hash")):
        try:
            if conn.execute(f"SELECT 1 FROM {quote(table)} WHERE {quote(column)} = ?", (key,)).fetchone():
                return kind
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
    return None


# ------------------------------------------------------------------- reading
@dataclass
class Version:
    name: str
    version: int
    hash: str
    kind: str

    @property
    def label(self) -> str:
        return f"Model {self.name}:{self.version} ({self.hash})"


def parse(spec: Any) -> tuple[str, int | None, str | None]:
    """``'iris'`` -> (iris, None, None); ``'iris:3'`` -> (iris, 3, None); ``'iris@prod'`` -> (iris, None, prod)."""
    if not isinstance(spec, str):
        raise TypeError(f"Name a model as 'name', 'name:version' or 'name@alias', got {spec!r}")
    name, version, alias = spec, None, None
    if "@" in spec:
        name, _, alias = spec.partition("@")
        check_label(alias, "alias")
    elif ":" in spec:
        name, _, number = spec.partition(":")
        if not number.isdigit() or int(number) < 1:
            raise ValueError(f"{spec!r}: the version after ':' must be a number from 1 up, as in 'iris:3'")
        version = int(number)
    return check_label(name, "name"), version, alias


def resolve(engine: Any, spec: Any) -> Version:
    name, version, alias = parse(spec)
    pg = _pg(engine)
    if pg is not None:
        return _pick(name, version, alias, *pg.versions(engine, name))
    sq = sqlite_engine(engine)
    if sq is None:
        raise NotFoundError(f"No model {spec!r}: nothing is stored with Tracker.SKIP_INSERT")
    with sq._guard.lock:
        return _resolve(sq._live(), name, version, alias)


def _resolve(conn: sqlite3.Connection, name: str, version: int | None = None, alias: str | None = None) -> Version:
    try:
        versions = conn.execute(
            f'SELECT "version", "hash", "kind" FROM {quote(MODELS)} WHERE "name" = ? ORDER BY "version"', (name,)
        ).fetchall()
        aliases = dict(conn.execute(
            f'SELECT "alias", "version" FROM {quote(ALIASES)} WHERE "name" = ? ORDER BY "alias"', (name,)
        ).fetchall())
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        versions, aliases = [], {}
    names = []
    if not versions:
        try:
            names = [n for (n,) in conn.execute(f'SELECT DISTINCT "name" FROM {quote(MODELS)} ORDER BY "name"')]
        except sqlite3.OperationalError:
            pass
    return _pick(name, version, alias, versions, aliases, names)


def _pick(name: str, version: int | None, alias: str | None, versions: list[Any], aliases: dict[str, int],
          names: list[str]) -> Version:
    """The version a spec names, from ``name``'s ``(version, hash, kind)`` rows and
    aliases; ``names`` (every registered name) is for the message when it has none."""
    if not versions:
        listed = ", ".join(names) if names else "none is registered"
        raise NotFoundError(f"No model named {name!r}.{close_matches(name, names)} Models: {listed}")
    by_number = {v: (h, k) for v, h, k in versions}
    shown = ", ".join(str(v) for v in by_number)
    pointers = ", ".join(f"{a} -> {v}" for a, v in aliases.items()) or "none"
    if alias is not None and alias != LATEST:
        if alias not in aliases:
            raise NotFoundError(
                f"Model {name!r} has no alias {alias!r}.{close_matches(alias, list(aliases))} "
                f"Aliases: {pointers}; versions: {shown}"
            )
        version = aliases[alias]
    if version is None:
        version = versions[-1][0]
    if version not in by_number:
        raise NotFoundError(f"Model {name!r} has no version {version}. Versions: {shown}; aliases: {pointers}")
    key, kind = by_number[version]
    return Version(name, version, key, kind)


def listing(engine: Any) -> "pd.DataFrame":
    import pandas as pd

    pg = _pg(engine)
    sq = None if pg is not None else sqlite_engine(engine)
    rows: list[Any] = []
    if pg is not None:
        rows = _listing_pg(engine, pg)
    elif sq is not None and sq.query(f"SELECT 1 FROM {quote(MODELS)} LIMIT 1"):
        aliases: dict[tuple[str, int], list[str]] = {}
        for name, alias, version in sq.query(f'SELECT "name", "alias", "version" FROM {quote(ALIASES)} ORDER BY "alias"'):
            aliases.setdefault((name, version), []).append(alias)
        has_assets = bool(sq.query("SELECT 1 FROM sqlite_master WHERE name = ?", (ASSETS_TABLE,)))
        has_blobs = bool(sq.query("SELECT 1 FROM sqlite_master WHERE name = ?", (blobs.BLOBS,)))
        size = " + ".join(
            [f"coalesce((SELECT length(a.value) FROM {quote(ASSETS_TABLE)} a WHERE a.key = m.hash AND m.kind = 'asset'), 0)"] * has_assets
            + [f"coalesce((SELECT b.size FROM {quote(blobs.BLOBS)} b WHERE b.hash = m.hash AND m.kind = 'artifact'), 0)"] * has_blobs
        ) or "NULL"
        for name, version, key, kind, track_id, description, created, nbytes in sq.query(
            f'SELECT m."name", m."version", m."hash", m."kind", m."track_id", m."description", m."created", {size} '
            f'FROM {quote(MODELS)} m ORDER BY m."name", m."version"'
        ):
            rows.append((name, version, aliases.get((name, version), []), key, kind, nbytes, track_id, description, created))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("version", "size"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _listing_pg(engine: Any, pg: Any) -> list[Any]:
    versions = pg.all_versions(engine)
    if not versions:
        return []
    aliases: dict[tuple[str, int], list[str]] = {}
    for name, alias, number in pg.all_aliases(engine):
        aliases.setdefault((name, number), []).append(alias)
    by_kind = {k: [v[2] for v in versions if v[3] == k] for k in ("asset", "artifact")}
    sizes = pg.sizes(engine, by_kind["asset"], by_kind["artifact"])
    return [(name, number, aliases.get((name, number), []), key, kind, sizes.get((kind, key), 0), track_id,
             description, created)
            for name, number, key, kind, track_id, _, description, created in versions]


def model_bytes(engine: Any, version: Version) -> Iterator[bytes]:
    """The stored bytes of a version, verified: the pickle of an asset, or an artifact's bytes."""
    from .artifacts import keeper

    if version.kind == "artifact":
        return keeper(engine).read_chunks(engine, version.hash, version.label)
    sq = engine if engine.dialect == "postgres" else sqlite_engine(engine)
    data = sq.asset_get(version.hash) if sq is not None else None
    if data is None:
        raise NotFoundError(f"{version.label}: its object is no longer in the asset store")
    return iter([verify_asset(version.hash, decode_asset(data), version.label)])


def open_stream(engine: Any, spec: Any) -> io.BufferedReader:
    """A version's stored bytes as a read-only binary file (streamed for an artifact)."""
    version = resolve(engine, spec)
    if version.kind == "artifact":
        from .artifacts import keeper

        return keeper(engine).open_blob(engine, version.hash, version.label)
    return io.BufferedReader(io.BytesIO(next(model_bytes(engine, version))))


def referencing(engine: Any, key: str) -> list[str]:
    """The versions (``name:version``) that point at a stored hash."""
    pg = _pg(engine)
    if pg is not None:
        return [f"{name}:{version}" for name, version in pg.referencing(engine, key)]
    sq = sqlite_engine(engine)
    if sq is None:
        return []
    rows = sq.query(f'SELECT "name", "version" FROM {quote(MODELS)} WHERE "hash" = ? ORDER BY "name", "version"', (key,))
    return [f"{name}:{version}" for name, version in rows]


def load(engine: Any, spec: Any) -> Any:
    """The model a spec names: unpickled (an object) or bytes (a registered artifact)."""
    version = resolve(engine, spec)
    data = b"".join(model_bytes(engine, version))
    if version.kind == "artifact":
        return data
    import cloudpickle

    return cloudpickle.loads(data)


__all__ = ["register", "set_alias", "delete_alias", "resolve", "listing", "load", "model_bytes", "open_stream", "referencing"]
