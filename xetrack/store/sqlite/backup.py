"""A consistent copy of a live database file, through SQLite's online backup API.

``cp`` of a file in WAL mode copies only what was checkpointed into the main file: the
rows still in ``-wal`` (everything logged since the last checkpoint) are not in the copy,
and a copy taken mid-write can be torn. The backup API reads the database the way any
SQLite reader does, inside one read transaction, so it sees one snapshot that holds every
committed row, WAL included, while other processes keep writing.

The copy is written to a temporary file beside ``dest``, switched to the rollback journal
(so it is one self-contained file, with no ``-wal`` to carry along), synced, and only then
renamed to ``dest``: a half-written backup never appears under that name.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import SQLiteEngine


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def backup(engine: SQLiteEngine, dest: str | os.PathLike[str], overwrite: bool = False) -> str:
    """Copy the file ``engine`` holds to ``dest``: every table, side table and asset, as of
    one moment. Returns ``dest``. An existing ``dest`` is refused unless ``overwrite``."""
    if engine.path is None:
        raise ValueError("An in-memory database has no file to back up")
    target = os.fspath(dest)
    if not target:
        raise ValueError("The backup needs a destination path")
    if os.path.isdir(target):
        raise IsADirectoryError(f"Backup destination {target!r} is a directory: name the file to write")
    if os.path.exists(target):
        if _same_file(target, engine.path):
            raise ValueError(f"Backup destination {target!r} is the database itself")
        if not overwrite:
            raise FileExistsError(f"Backup destination {target!r} exists: choose another path, or pass overwrite=True")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Backup destination folder {folder!r} does not exist")
    # SQLite creates the file, with the umask's permissions (mkstemp's would be 0600).
    temp = os.path.join(folder, f".{os.path.basename(target)}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        copy = sqlite3.connect(temp, isolation_level=None)
        try:
            with engine.reading() as conn:
                # pages=-1: one step, one read transaction, so concurrent writers never
                # restart it and the copy is one snapshot.
                conn.backup(copy, pages=-1)
            # The copied header says WAL; the rollback journal makes the copy one file.
            copy.execute("PRAGMA journal_mode=DELETE").fetchone()
        finally:
            copy.close()
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        _publish(temp, target, overwrite)
    except BaseException:
        for leftover in (temp, temp + "-journal", temp + "-wal", temp + "-shm"):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
        raise
    _sync_folder(folder)
    return target


def _publish(temp: str, target: str, overwrite: bool) -> None:
    """Rename the finished copy to ``target``, never replacing a file unless ``overwrite``."""
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)  # fails if target appeared meanwhile: no clobbering
    except FileExistsError:
        raise FileExistsError(
            f"Backup destination {target!r} exists: choose another path, or pass overwrite=True"
        ) from None
    except OSError:  # a file system without hard links
        if os.path.exists(target):
            raise FileExistsError(f"Backup destination {target!r} exists") from None
        os.replace(temp, target)
        return
    os.unlink(temp)


def _sync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["backup"]
