"""The roles of columns (param or metric: ``xetrack_kinds``) on a SQLite connection,
read and written inside the engine's own transactions (store/sqlite/engine.py records a
new key's role with its column)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ..base import Roles, rows_if_table
from ..meta_sql import DDL, KEEP_KINDS, REPLACE_KINDS, recorded_keys_with
from ..tables import KINDS
from .summary import bump


def read_roles(conn: sqlite3.Connection, table: str, columns: Sequence[str] | None = None) -> dict[str, str]:
    """column -> 'param'/'metric' recorded for ``table`` (of ``columns`` only, when given),
    read on the engine's connection."""
    return {
        c: k
        for c, k, _ in recorded_keys_with(
            lambda _e, _n, sql, binds: rows_if_table(conn, sql, binds), None, table, columns
        )
    }


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
