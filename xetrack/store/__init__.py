"""Where rows live: one small :class:`Engine` interface, one module per engine."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .base import Engine
from .features import Features

if TYPE_CHECKING:
    from .features import RunsSideSQL
    from .sqlite.engine import SQLiteEngine

IN_MEMORY = ":memory:"
SKIP_INSERT = "SKIP_INSERT"
ENGINES = ("sqlite", "duckdb")


def open_engine(
    db: str | os.PathLike[str], engine: str = "sqlite", *, create: bool = True, make_folders: bool = False
) -> Engine:
    """Open ``db`` with the named engine. ``create=False`` refuses to create a missing file;
    ``make_folders`` (a Tracker's) creates the missing folders above a new file.

    A ``postgresql://`` (or ``postgres://``) URL opens the PostgreSQL engine
    (docs/postgres.md); ``engine`` then stays ``'sqlite'``, the default, or says
    ``'postgres'``; ``'duckdb'`` reads through DuckDB's postgres scanner.
    """
    from .postgres.connect import is_url

    if is_url(db):
        if engine not in ("sqlite", "postgres", "duckdb"):
            hint = f"; to choose the table, pass table={engine!r}" if isinstance(engine, str) else ""
            raise ValueError(f"Unknown engine {engine!r}: choose 'sqlite' (or 'postgres') or 'duckdb'{hint}")
        from .postgres.connect import psycopg_module

        psycopg_module()  # without the driver: the error names the pip command
        if engine == "duckdb":  # reads through DuckDB's postgres scanner
            from .duckdb.postgres import PostgresDuckDBEngine

            return PostgresDuckDBEngine(str(db), create=create)
        from .postgres.engine import PostgresEngine

        return PostgresEngine(str(db), create=create)
    if engine not in ENGINES:
        hint = f"; to choose the table, pass table={engine!r}" if isinstance(engine, str) else ""
        raise ValueError(f"Unknown engine {engine!r}: choose 'sqlite' or 'duckdb'{hint}")
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
            from .sqlite.faults import check_writable

            check_writable(path, make_folders)
        path_or_none = path
    if engine == "duckdb":
        from .duckdb.engine import DuckDBEngine

        return DuckDBEngine(path_or_none, create=create)
    from .sqlite.engine import SQLiteEngine

    return SQLiteEngine(path_or_none, create=create)


def shown(db: object) -> object:
    """``db`` as a Tracker or Reader shows it: a PostgreSQL URL without its password."""
    from .postgres.connect import is_url, redact

    return redact(db) if is_url(db) else db  # type: ignore[arg-type]


def sqlite_engine(engine: Engine) -> SQLiteEngine | None:
    """The engine when it keeps a SQLite file; None for SKIP_INSERT; NotImplementedError,
    naming what to use instead, for a PostgreSQL store (backup is SQLite's).

    Side tables (artifacts, models) are plain SQL on that file; on PostgreSQL their SQL
    is in ``pg_blobs``, ``pg_models`` and ``pg_gc``.
    """
    from .sqlite.engine import SQLiteEngine

    if isinstance(engine, SQLiteEngine):
        return engine
    if engine.dialect == "postgres":
        raise NotImplementedError(
            f"{engine.path} is a PostgreSQL store: backup copies SQLite files only. Back the "
            "server up with PostgreSQL's own tools (pg_dump), or take a SQLite snapshot with "
            "'xt copy URL snapshot.db' (docs/postgres.md)"
        )
    return None


def _sqlite_features() -> Features:
    from .sqlite import (
        artifacts,
        blobs,
        copy,
        copy_side,
        gc,
        meta,
        models,
        prune,
        run_copy,
        run_sql,
        runs_side,
        summary,
    )

    return Features(
        models=models,
        meta=meta,
        blobs=blobs,
        artifacts=artifacts,
        runs_side=runs_side,
        gc=gc,
        copy=copy,
        copy_side=copy_side,
        run_copy=run_copy,
        run_sql=run_sql,
        summary=summary,
        prune=prune,
    )


def _postgres_features() -> Features:
    # The run queries read an in-memory SQLite copy of the table (run_mirror.py).
    from . import run_mirror
    from .postgres import artifacts, blobs, copy, copy_side, gc, meta, models, prune, runs_side

    return Features(
        models=models,
        meta=meta,
        blobs=blobs,
        artifacts=artifacts,
        # Its functions take a PostgresEngine, not any Engine: this bundle is only ever
        # given one (features() picks it by the engine's dialect).
        runs_side=cast("RunsSideSQL", runs_side),
        gc=gc,
        copy=copy,
        copy_side=copy_side,
        run_copy=run_mirror,
        prune=prune,
    )


#: The engine package that holds each dialect's side-table SQL (loaded when first asked:
#: PostgreSQL's needs psycopg, an extra). The sqlite and duckdb engines share one.
FEATURES_BY_DIALECT: dict[str, Callable[[], Features]] = {
    "sqlite": _sqlite_features,
    "postgres": _postgres_features,
}


@functools.cache
def dialect_features(dialect: str) -> Features:
    """The modules of one dialect's engine package, one per feature."""
    return FEATURES_BY_DIALECT[dialect]()


def features(engine: Engine) -> Features:
    """The modules that hold ``engine``'s side-table SQL, one per feature
    (:mod:`xetrack.store.features` says what each offers).

    >>> features(open_engine(IN_MEMORY)).models.__name__
    'xetrack.store.sqlite.models'
    """
    return dialect_features(engine.dialect)


# -- what the layers above reach of an engine package, without importing one ----------
def is_url(db: object) -> bool:
    """Whether ``db`` is a ``postgresql://`` (or ``postgres://``) URL."""
    from .postgres.connect import is_url as url

    return url(db)


def hide_passwords(text: str) -> str:
    """``text`` with the password of every PostgreSQL URL in it replaced."""
    from .postgres.connect import hide_passwords as hide

    return hide(text)


def backup(engine: Engine, dest: str | os.PathLike[str], overwrite: bool = False) -> str:
    """Copy ``engine``'s SQLite file to ``dest`` with SQLite's online backup API
    (store/sqlite/backup.py); returns the path written. A PostgreSQL store is refused
    with what to use instead."""
    from .sqlite.backup import backup as sqlite_backup

    sq = sqlite_engine(engine)
    if sq is None:
        raise ValueError("Tracker.SKIP_INSERT keeps no file to back up")
    return sqlite_backup(sq, dest, overwrite)


def duckdb_shell_setup() -> Any:
    """The DuckDB shell's setup (``xt duckdb``): its module of the bundled sqlite scanner's
    path, the DuckDB version and the setup SQL (store/duckdb/extension.py)."""
    from .duckdb import extension

    return extension


__all__ = [
    "Engine",
    "Features",
    "features",
    "dialect_features",
    "is_url",
    "hide_passwords",
    "backup",
    "duckdb_shell_setup",
    "open_engine",
    "shown",
    "sqlite_engine",
    "IN_MEMORY",
    "SKIP_INSERT",
    "ENGINES",
]
