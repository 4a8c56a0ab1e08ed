"""Where rows live: one small :class:`Engine` interface, one module per engine."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .base import Engine

if TYPE_CHECKING:
    from .sqlite import SQLiteEngine

IN_MEMORY = ":memory:"
SKIP_INSERT = "SKIP_INSERT"
ENGINES = ("sqlite", "duckdb")


def open_engine(db: str | os.PathLike[str], engine: str = "sqlite", *, create: bool = True) -> Engine:
    """Open ``db`` with the named engine. ``create=False`` refuses to create a missing file."""
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine {engine!r}: choose 'sqlite' or 'duckdb'")
    if not isinstance(db, (str, os.PathLike)):
        raise TypeError(f"db must be a path, Tracker.IN_MEMORY or Tracker.SKIP_INSERT, got {db!r}")
    path = os.fspath(db)
    # Engines load here, not at import: xetrack.store.base and .busy stay free of pandas.
    if path == SKIP_INSERT:
        from .null import NullEngine

        return NullEngine()
    if path == IN_MEMORY:
        path_or_none = None
    else:
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path!r} is a directory, not a database file")
        if create:  # a read-only file or folder is refused now, not at the first write
            from .faults import check_writable

            check_writable(path)
        path_or_none = path
    if engine == "duckdb":
        from .duckdb import DuckDBEngine

        return DuckDBEngine(path_or_none, create=create)
    from .sqlite import SQLiteEngine

    return SQLiteEngine(path_or_none, create=create)


def sqlite_engine(engine: Engine) -> "SQLiteEngine | None":
    """The engine when it keeps a SQLite file (both real engines do); None for SKIP_INSERT.

    Side tables (runs, artifacts, models) are plain SQL on that file.
    """
    from .sqlite import SQLiteEngine

    return engine if isinstance(engine, SQLiteEngine) else None


__all__ = ["Engine", "open_engine", "sqlite_engine", "IN_MEMORY", "SKIP_INSERT", "ENGINES"]
