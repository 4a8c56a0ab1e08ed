"""Run metadata on PostgreSQL: the same functions as :mod:`.sqlite_meta` (tags, run
names, recorded kinds, descriptions), running its statements on the server through
:func:`.pg_side.meta_write` and :func:`.pg_side.meta_read` (``%s`` placeholders, a
null-safe compare). There is no run summary on the server, so nothing to bump.

>>> tags_of(engine, "default", "fierce-pudu-1649")  # doctest: +SKIP
[('team', 'vision')]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .. import meta_sql as sq
from ..tables import DESCRIPTIONS, KINDS, RUN_NAMES, TAGS
from .side import meta_read, meta_write


def write(engine: Any, name: str, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Create side table ``name`` if needed, then run ``sql`` once per row, in one transaction."""
    if rows:
        meta_write(engine, sq.DDL[name], sql, rows)


def read(engine: Any, name: str, sql: str, binds: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``sql``; none when side table ``name`` was never created."""
    return meta_read(engine, sql, list(binds))


def set_tags(engine: Any, rows: Sequence[tuple[str, str, str, str]]) -> None:
    """Set (or overwrite) tags given as ``(table, track_id, key, value)``."""
    write(engine, TAGS, sq.SET_TAGS, rows)


def delete_tag(engine: Any, table: str, track_id: str, key: str) -> bool:
    """Remove one tag; True when it existed."""
    if not read(engine, TAGS, sq.FIND_TAG, (table, track_id, key)):
        return False
    write(engine, TAGS, sq.DELETE_TAG, [(table, track_id, key)])
    return True


def tags_of(engine: Any, table: str, track_id: str) -> list[tuple[str, str]]:
    """``(key, value)`` of one run's tags, by key."""
    return read(engine, TAGS, sq.TAGS_OF, (table, track_id))


def tag_keys(engine: Any, table: str) -> list[str]:
    """Every tag key used in ``table``, sorted."""
    return [k for (k,) in read(engine, TAGS, sq.TAG_KEYS, (table,))]


def set_run_name(engine: Any, table: str, track_id: str, run_name: str) -> None:
    write(engine, RUN_NAMES, sq.SET_RUN_NAME, [(table, track_id, run_name)])


def run_names(engine: Any, table: str) -> list[tuple[str, str]]:
    """``(track_id, run_name)`` of ``table``."""
    return read(engine, RUN_NAMES, sq.RUN_NAMES_OF, (table,))


def has_run_names(engine: Any, table: str) -> bool:
    return bool(read(engine, RUN_NAMES, sq.HAS_RUN_NAMES, (table,)))


def put_kinds(engine: Any, rows: Sequence[tuple[str, str, str, str | None]], replace: bool) -> None:
    """Record ``(table, column, kind, key)`` rows; ``replace=False`` keeps what is recorded."""
    write(engine, KINDS, sq.REPLACE_KINDS if replace else sq.KEEP_KINDS, rows)


def recorded_keys(engine: Any, table: str, columns: Sequence[str] | None = None) -> list[tuple[str, str, Any]]:
    """``(column, kind, key)`` recorded for ``table``; of ``columns`` only, when given."""
    return sq.recorded_keys_with(read, engine, table, columns)


def describe(engine: Any, table: str, text: str | None) -> None:
    """Keep ``text`` as the table's description (None removes it)."""
    if text is None:
        write(engine, DESCRIPTIONS, sq.UNDESCRIBE, [(table,)])
    else:
        write(engine, DESCRIPTIONS, sq.DESCRIBE, [(table, text)])


def descriptions(engine: Any) -> list[tuple[str, str]]:
    """``(table, description)`` of every described table."""
    return read(engine, DESCRIPTIONS, sq.DESCRIPTIONS_OF)


def copy_rows(engine: Any, name: str, table: str) -> list[tuple[Any, ...]]:
    """``table``'s rows of side table ``name`` (its ``COPY_COLUMNS``), for a copy."""
    return read(engine, name, sq.copy_select(name), (table,))


def put_copied(engine: Any, name: str, rows: Sequence[Sequence[Any]]) -> None:
    """Add copied rows of side table ``name``; rows already there are kept."""
    write(engine, name, sq.copy_insert(name), rows)


__all__ = [
    "set_tags",
    "delete_tag",
    "tags_of",
    "tag_keys",
    "set_run_name",
    "run_names",
    "has_run_names",
    "put_kinds",
    "recorded_keys",
    "describe",
    "descriptions",
    "copy_rows",
    "put_copied",
    "read",
    "write",
]
