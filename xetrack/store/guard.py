"""One guard per database file per process.

Python's ``sqlite3`` and DuckDB's sqlite scanner each carry their own copy of the
SQLite library. POSIX file locks belong to the process, not to a library, so two
copies holding one file in one process do not see each other's locks: when DuckDB's
copy closes the file it believes it was the last user, checkpoints and deletes the
WAL under the other copy's feet, and rows are lost. (This is SQLite's documented
"multiple copies of SQLite in one program" hazard, reproduced here while building
xetrack.)

The guard makes the two take turns: before DuckDB touches the file, every
``sqlite3`` connection this process holds on it is closed (they reopen lazily), and
DuckDB's own handle is closed again when its result is fully fetched. It also
serializes threads that share one connection.
"""

from __future__ import annotations

import os
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator, Protocol


class HoldsSQLite(Protocol):
    def release_connection(self) -> None: ...


class FileGuard:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._holders: weakref.WeakSet[HoldsSQLite] = weakref.WeakSet()

    def register(self, holder: HoldsSQLite) -> None:
        self._holders.add(holder)

    @contextmanager
    def duckdb(self) -> Iterator[None]:
        """Hold the file for DuckDB: no ``sqlite3`` connection of this process stays open."""
        with self.lock:
            for holder in list(self._holders):
                holder.release_connection()
            yield


_guards: dict[str, FileGuard] = {}
_guards_lock = threading.Lock()


def guard_for(path: str | None) -> FileGuard:
    """The process-wide guard of a file; a private one for in-memory databases."""
    if path is None:
        return FileGuard()
    key = os.path.realpath(path)
    with _guards_lock:
        guard = _guards.get(key)
        if guard is None:
            guard = _guards[key] = FileGuard()
        return guard


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time would never be released in the child.
    global _guards_lock
    _guards_lock = threading.Lock()
    for guard in _guards.values():
        guard.lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)
