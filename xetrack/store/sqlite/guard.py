"""One guard per database file per process: Python's SQLite and DuckDB's take turns.

Python's ``sqlite3`` and DuckDB's sqlite scanner each carry their own copy of the
SQLite library. POSIX file locks belong to the process, not to a library, so two
copies holding one file in one process do not see each other's locks. When DuckDB's
copy closes the file it believes it was the last user: it checkpoints, deletes the
WAL, and its ``close()`` drops every lock the process held on the file. A ``sqlite3``
connection still open then works from a stale WAL index, and its next checkpoint
writes old pages over new ones: rows are lost and the file is malformed. (SQLite's
documented "multiple copies of SQLite in one program" hazard.)

The guard rules that out by construction, with two invariants:

1. **Every** ``sqlite3`` connection xetrack opens on a file is opened through
   :meth:`FileGuard.connect`, which keeps a strong reference to its :class:`Slot`.
   The guard, not the lifetime of whatever object uses the connection, knows what is
   open: a Tracker dropped without ``close()`` whose connection waits in a reference
   cycle for the garbage collector is still on the list.
2. DuckDB reaches the file only inside :meth:`FileGuard.duckdb`, which holds the
   guard's lock and first closes every connection on that list. The DuckDB engine
   attaches the file inside that block and detaches it before leaving, so no DuckDB
   object that outlives the block can reach the file (see :mod:`xetrack.store.duckdb.engine`).

Owners find their slot emptied and reopen lazily. A finalizer releases the slots of an
owner that is garbage collected. Connections opened by the user's own code
(``sqlite3.connect``, ``SqliteDict``) are out of reach: docs/concepts.md says not to hold
one across DuckDB reads.

An owner that is done hands its connection back with :meth:`FileGuard.release`: it
is kept idle for the next owner of the file (see :mod:`xetrack.store.sqlite.idle`); DuckDB's
turn closes those too.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from . import idle


class Slot:
    """One ``sqlite3`` connection an owner uses; the guard may close it between uses.

    ``conn`` is None while closed. Only code holding the guard's lock opens or closes it.
    ``key`` says how the connection was opened (None: it is never kept idle).
    """

    __slots__ = ("conn", "pid", "key", "__weakref__")

    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.pid = 0
        self.key: Hashable | None = None


class FileGuard:
    """The lock of one file in this process, and every ``sqlite3`` connection on it."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._open: set[Slot] = set()  # strong references: closed only by the guard or owner
        #: What the engines of this process know of the file's tables (their schema cache).
        self.tables: dict[str, Any] = {}

    def connect(
        self, slot: Slot, opener: Callable[[], sqlite3.Connection], key: Hashable | None = None
    ) -> sqlite3.Connection:
        """Open ``slot``'s connection (under the lock) and keep it on the list: an idle
        connection opened with the same ``key``, else a new one from ``opener``."""
        with self.lock:
            conn = idle.take(self, key) if key is not None else None
            if conn is None:
                named = idle.state(self.path) if self.path is not None else None  # before the open
                conn = opener()
                if named is None and self.path is not None:  # the open made the file
                    named = idle.state(self.path)
                idle.opened(conn, named[:2] if named else None)
            slot.conn, slot.pid, slot.key = conn, os.getpid(), key
            self._open.add(slot)
            return conn

    def close(self, *slots: Slot) -> None:
        """Close these slots' connections now (their owners reopen on next use)."""
        self._let_go(slots, keep=False)

    def release(self, *slots: Slot) -> None:
        """The owner is done with these slots: a connection opened with a key is kept idle
        for the next owner (:mod:`xetrack.store.sqlite.idle`), any other is closed."""
        self._let_go(slots, keep=True)

    def _let_go(self, slots: tuple[Slot, ...], keep: bool) -> None:
        with self.lock:
            pid = os.getpid()
            for slot in slots:
                conn, slot.conn = slot.conn, None
                self._open.discard(slot)
                if conn is None or slot.pid != pid:
                    continue  # a parent's connection in a forked child is never touched
                if keep and slot.key is not None and self.path is not None:
                    idle.park(self, conn, slot.key)
                else:
                    idle.forget(conn)
                    conn.close()

    def open_count(self) -> int:
        """How many ``sqlite3`` connections owners hold on the file (for tests)."""
        with self.lock:
            return sum(1 for slot in self._open if slot.conn is not None)

    def idle_count(self) -> int:
        """How many connections on the file are kept idle (for tests)."""
        return idle.count(self)

    @contextmanager
    def duckdb(self) -> Iterator[None]:
        """Hold the file for DuckDB: every ``sqlite3`` connection on it is closed first,
        idle ones included, and none can open until the block ends."""
        with self.lock:
            self.close(*list(self._open))
            idle.drop(self)
            yield


atexit.register(idle.at_exit)


_guards: dict[str, FileGuard] = {}
_guards_lock = threading.Lock()


def guard_for(path: str | None) -> FileGuard:
    """The process-wide guard of a file; a private one for an in-memory database."""
    if path is None:
        return FileGuard(None)
    key = os.path.realpath(path)
    with _guards_lock:
        guard = _guards.get(key)
        if guard is None:
            guard = _guards[key] = FileGuard(key)
        return guard


@contextmanager
def holding(*paths: str) -> Iterator[None]:
    """Hold the guards of these files (in a fixed order, so two holders never deadlock)
    while code of ours uses a ``sqlite3`` connection that is not on a guard's list."""
    guards = sorted({id(g): g for g in map(guard_for, paths)}.values(), key=lambda g: g.path or "")
    with ExitStack() as stack:
        for guard in guards:
            stack.enter_context(guard.lock)
        yield


def close_when_collected(owner: object, guard: FileGuard, *slots: Slot) -> weakref.finalize[..., object]:
    """Release ``slots`` when ``owner`` is garbage collected (or at exit)."""
    return weakref.finalize(owner, guard.release, *slots)


_inherited: list[sqlite3.Connection] = []  # a parent's connections in a forked child; never used


def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time would never be released in the child.
    # The parent's connections are kept (not closed: closing could disturb the parent)
    # and forgotten: owners see the new pid and open their own.
    global _guards_lock
    _guards_lock = threading.Lock()
    _inherited.extend(idle.after_fork())
    for guard in _guards.values():
        guard.lock = threading.RLock()
        for slot in guard._open:
            if slot.conn is not None:
                _inherited.append(slot.conn)
            slot.conn = None
        guard._open.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
