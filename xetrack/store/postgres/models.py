"""The model registry on the PostgreSQL engine: the same two tables as on SQLite
(:mod:`xetrack.models`), in PostgreSQL's SQL.

>>> Tracker("postgresql://ana@db-host/exp").register_model("iris", model)  # doctest: +SKIP
1

Version numbers are taken with the registry table locked against other registrations
(``SHARE ROW EXCLUSIVE``, which readers do not wait for), so two processes registering
at once get two numbers. The functions taking ``conn`` run inside :func:`write`'s
transaction. The functions taking the engine are :mod:`.sqlite_models`'s set
(:func:`kind_of`, :func:`add_version`, :func:`move_alias`, :func:`remove_alias`,
:func:`versions`, :func:`listing`, :func:`referencing`), called by :mod:`xetrack.models`.
Identifiers are ``psycopg.sql.Identifier``; values are bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from psycopg import sql

from ...schema import ASSETS_TABLE
from ..tables import BLOBS, MODEL_ALIASES, MODEL_COLUMNS, MODELS
from .blobs import has_table, rows
from .sql import create_side_tables

T = TypeVar("T")
#: The most bytes one ``bytea`` value holds in PostgreSQL.
VALUE_LIMIT = 2**30 - 1


_CREATE_LOCK = 0x7865746D  # pg_advisory_xact_lock key: one CREATE of these tables at a time
_I = sql.Identifier
_DDL = (
    sql.SQL(
        'CREATE TABLE IF NOT EXISTS {} ("name" TEXT NOT NULL, "version" BIGINT NOT NULL, "hash" TEXT NOT NULL, '
        '"kind" TEXT NOT NULL, "track_id" TEXT, "table" TEXT, "description" TEXT, "created" TEXT NOT NULL, '
        'PRIMARY KEY ("name", "version"))'
    ).format(_I(MODELS)),
    sql.SQL(
        'CREATE TABLE IF NOT EXISTS {} ("name" TEXT NOT NULL, "alias" TEXT NOT NULL, "version" BIGINT NOT NULL, '
        'PRIMARY KEY ("name", "alias"))'
    ).format(_I(MODEL_ALIASES)),
)


def write(engine: Any, body: Callable[[Any], T], what: str) -> T:
    """``body(conn)`` in one transaction with the registry's tables created. A connection
    the server dropped mid-way raises a clear error rather than write twice (a version
    number is not repeatable)."""

    def inner(conn: Any) -> T:
        if not has_table(conn, MODEL_ALIASES):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
            for statement in _DDL:
                conn.execute(statement)
        return body(conn)

    result: T = engine._run(lambda conn: engine._transact(conn, MODELS, inner), lambda conn: None, what)
    return result


def stored_kind(conn: Any, key: str) -> str | None:
    """``'asset'`` or ``'artifact'`` when ``key`` names stored bytes, else None."""
    for kind, table, column in (("asset", ASSETS_TABLE, "key"), ("artifact", BLOBS, "hash")):
        if (
            has_table(conn, table)
            and conn.execute(sql.SQL("SELECT 1 FROM {} WHERE {} = %s").format(_I(table), _I(column)), (key,)).fetchone()
        ):
            return kind
    return None


def kind_of(engine: Any, key: str) -> str | None:
    """``'asset'`` or ``'artifact'`` when ``key`` names stored bytes, else None."""
    kind: str | None = engine._run(lambda conn: stored_kind(conn, key))
    return kind


def put_asset(conn: Any, key: str, data: bytes) -> None:
    """Store a pickled model in the asset table once (as ``log()`` stores objects)."""
    if not has_table(conn, ASSETS_TABLE):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (0x78657472,))  # the engine's create lock
        create_side_tables(conn)
    conn.execute(
        sql.SQL("INSERT INTO {} (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING").format(_I(ASSETS_TABLE)),
        (key, data),
    )


def next_version(conn: Any, name: str) -> int:
    """Inside :func:`write`: the next number of ``name``, other registrations held off."""
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(_I(MODELS)))
    row = conn.execute(
        sql.SQL('SELECT coalesce(max("version"), 0) + 1 FROM {} WHERE "name" = %s').format(_I(MODELS)), (name,)
    ).fetchone()
    return int(row[0])


def insert_version(conn: Any, row: Sequence[Any]) -> None:
    """One version (``MODEL_COLUMNS`` order)."""
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)").format(
            _I(MODELS), sql.SQL(", ").join(map(_I, MODEL_COLUMNS))
        ),
        tuple(row),
    )


def point(conn: Any, name: str, alias: str, version: int, replace: bool = True) -> int:
    """Point ``alias`` at ``version`` (``replace=False``: only when the alias is free)."""
    action = 'DO UPDATE SET "version" = excluded."version"' if replace else "DO NOTHING"
    pointed: int = conn.execute(
        sql.SQL(
            'INSERT INTO {} ("name", "alias", "version") VALUES (%s, %s, %s) ON CONFLICT ("name", "alias") ' + action
        ).format(_I(MODEL_ALIASES)),
        (name, alias, version),
    ).rowcount
    return pointed


def drop_alias(conn: Any, name: str, alias: str) -> bool:
    dropped: int = conn.execute(
        sql.SQL('DELETE FROM {} WHERE "name" = %s AND "alias" = %s').format(_I(MODEL_ALIASES)), (name, alias)
    ).rowcount
    return dropped > 0


def versions_in(conn: Any, name: str) -> tuple[list[tuple[Any, ...]], dict[str, int], list[str]]:
    """``[(version, hash, kind)]``, ``{alias: version}`` of ``name``, and every registered name."""
    if not has_table(conn, MODELS):
        return [], {}, []
    versions = conn.execute(
        sql.SQL('SELECT "version", "hash", "kind" FROM {} WHERE "name" = %s ORDER BY "version"').format(_I(MODELS)),
        (name,),
    ).fetchall()
    aliases = (
        dict(
            conn.execute(
                sql.SQL('SELECT "alias", "version" FROM {} WHERE "name" = %s ORDER BY "alias"').format(
                    _I(MODEL_ALIASES)
                ),
                (name,),
            ).fetchall()
        )
        if has_table(conn, MODEL_ALIASES)
        else {}
    )
    names = (
        []
        if versions
        else [
            n
            for (n,) in conn.execute(
                sql.SQL('SELECT DISTINCT "name" FROM {} ORDER BY "name"').format(_I(MODELS))
            ).fetchall()
        ]
    )
    return [tuple(v) for v in versions], aliases, names


def versions(engine: Any, name: str) -> tuple[list[tuple[Any, ...]], dict[str, int], list[str]]:
    """``name``'s ``[(version, hash, kind)]``, ``{alias: version}`` and (when it has none)
    every registered name."""
    found: tuple[list[tuple[Any, ...]], dict[str, int], list[str]] = engine._run(lambda conn: versions_in(conn, name))
    return found


def add_version(
    engine: Any, name: str, key: str, kind: str, data: bytes | None, alias: str | None, details: Sequence[Any]
) -> int | None:
    """Record the next version of ``name`` in one transaction and return its number.

    ``data``: a pickle to store under ``key`` first (refused past PostgreSQL's value
    limit); None when ``key`` is already stored, and then None comes back, with nothing
    written, if it was removed meanwhile. ``details``: ``(track_id, table, description, created)``.
    """
    if data is not None and len(data) > VALUE_LIMIT:
        raise ValueError(
            f"Object {key} pickles to {len(data):,} bytes, more than PostgreSQL's limit of {VALUE_LIMIT:,} "
            "bytes per value; nothing was written. Save it to a file and log that with "
            "tracker.log_artifact(path) (stored in chunks, any size), then "
            "tracker.register_model(name, hash) if it is a model"
        )

    def body(conn: Any) -> int | None:
        version = next_version(conn, name)  # first: a gc waits for us, or we for it
        if data is not None:
            put_asset(conn, key, data)
        elif stored_kind(conn, key) is None:
            return None
        insert_version(conn, (name, version, key, kind, *details))
        if alias is not None:
            point(conn, name, alias, version)
        return version

    return write(engine, body, f"version of model {name!r}")


def move_alias(engine: Any, name: str, alias: str, version: int, check: Callable[..., Any]) -> None:
    """Point ``alias`` of ``name`` at ``version`` in one transaction, after
    ``check(versions, aliases, names)`` (which raises to refuse) saw :func:`versions`."""

    def body(conn: Any) -> None:
        check(*versions_in(conn, name))
        point(conn, name, alias, version)

    write(engine, body, f"alias {alias!r} of model {name!r}")


def remove_alias(engine: Any, name: str, alias: str) -> bool:
    """Remove an alias; whether it existed."""
    return write(engine, lambda conn: drop_alias(conn, name, alias), f"alias {alias!r} of model {name!r}")


def listing(engine: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every version as ``(name, version, hash, kind, size, track_id, description, created)``
    by name and number, and every ``(name, alias, version)`` by alias."""
    found = all_versions(engine)
    if not found:
        return [], []
    by_kind = {k: [v[2] for v in found if v[3] == k] for k in ("asset", "artifact")}
    stored = sizes(engine, by_kind["asset"], by_kind["artifact"])
    return (
        [
            (name, number, key, kind, stored.get((kind, key), 0), track_id, description, created)
            for name, number, key, kind, track_id, _, description, created in found
        ],
        all_aliases(engine),
    )


def same_version(conn: Any, name: str, key: str, created: str) -> int | None:
    """The number of ``name``'s version of ``key`` registered at ``created`` (a copy's match)."""
    row = conn.execute(
        sql.SQL(
            'SELECT "version" FROM {} WHERE "name" = %s AND "hash" = %s AND "created" = %s ORDER BY "version" LIMIT 1'
        ).format(_I(MODELS)),
        (name, key, created),
    ).fetchone()
    return None if row is None else int(row[0])


def all_versions(engine: Any) -> list[tuple[Any, ...]]:
    """Every version (``MODEL_COLUMNS`` order), by name and number."""
    query = sql.SQL('SELECT {} FROM {} ORDER BY "name", "version"').format(
        sql.SQL(", ").join(map(_I, MODEL_COLUMNS)), _I(MODELS)
    )
    return rows(engine, query)


def all_aliases(engine: Any) -> list[tuple[Any, ...]]:
    """Every ``(name, alias, version)``, by alias."""
    return rows(engine, sql.SQL('SELECT "name", "alias", "version" FROM {} ORDER BY "alias"').format(_I(MODEL_ALIASES)))


def sizes(engine: Any, assets: list[str], artifacts: list[str]) -> dict[tuple[str, str], int]:
    """``{(kind, hash): bytes}`` of the stored objects and artifact bytes named."""
    out: dict[tuple[str, str], int] = {}
    for kind, keys, query in (
        (
            "asset",
            assets,
            sql.SQL("SELECT key, octet_length(value) FROM {} WHERE key = ANY(%s)").format(_I(ASSETS_TABLE)),
        ),
        ("artifact", artifacts, sql.SQL('SELECT "hash", "size" FROM {} WHERE "hash" = ANY(%s)').format(_I(BLOBS))),
    ):
        if keys:
            for key, size in rows(engine, query, (keys,)):
                out[kind, key] = size
    return out


def referencing(engine: Any, key: str) -> list[tuple[str, int]]:
    """``(name, version)`` of the versions pointing at ``key``."""
    return rows(
        engine,
        sql.SQL('SELECT "name", "version" FROM {} WHERE "hash" = %s ORDER BY "name", "version"').format(_I(MODELS)),
        (key,),
    )


__all__ = [
    "kind_of",
    "add_version",
    "move_alias",
    "remove_alias",
    "versions",
    "listing",
    "referencing",
    "write",
    "stored_kind",
    "next_version",
    "insert_version",
    "point",
    "all_versions",
]
