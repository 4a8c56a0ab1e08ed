"""What one SQLite build allows (a value's bytes, a table's columns), read from the
connection; and the clear refusal of a pickled object past it."""

from __future__ import annotations

import sqlite3
from typing import Any


def value_limit(conn: sqlite3.Connection) -> int:
    """The most bytes one value may hold in this SQLite build (1 GB by default)."""
    return sqlite_limit(conn, "SQLITE_LIMIT_LENGTH", 1_000_000_000)


def sqlite_limit(conn: sqlite3.Connection, name: str, default: int) -> int:
    """``conn.getlimit(sqlite3.<name>)``, or ``default`` (SQLite's own default for that
    limit) on Python 3.10, whose ``sqlite3`` has neither ``getlimit`` nor the
    ``SQLITE_LIMIT_*`` constants (both came with 3.11)."""
    getlimit = getattr(conn, "getlimit", None)
    if getlimit is None:
        return default
    return int(getlimit(getattr(sqlite3, name)))


def check_pickle_size(conn: sqlite3.Connection, key: str, data: Any) -> None:
    """A pickled object is one value: past SQLite's limit, say what to do instead."""
    limit = value_limit(conn)
    if len(data) > limit:
        raise ValueError(
            f"Object {key} pickles to {len(data):,} bytes, more than SQLite's limit of {limit:,} "
            "bytes per value; nothing was written. Save it to a file and log that with "
            "tracker.log_artifact(path) (stored in chunks, any size), then "
            "tracker.register_model(name, hash) if it is a model"
        )
