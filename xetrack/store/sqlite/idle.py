"""Connections kept idle between the owners of a file, so that a sweep's next run does
not pay for the last one's close.

A sweep opens a Tracker per run. Opening a ``sqlite3`` connection costs little; closing
the last one on a file costs a checkpoint plus the removal of the -wal and -shm files,
which the next run's connection then makes again: about 1 ms a run, more than the run's
rows. So when an owner is done (``close()``, or collected), :meth:`FileGuard.release
<xetrack.store.sqlite.guard.FileGuard.release>` hands its connection here instead:

- :func:`park` first checkpoints the WAL into the file and cuts the WAL to nothing
  (``TRUNCATE``, without waiting: when another connection is reading, it checkpoints what
  it can and leaves the WAL as it is). The file then holds every row the run logged, as
  after a real close: it can be copied, moved or uploaded at once. And the -wal and -shm
  files it keeps beside it hold no page and no frame: whatever becomes of the file while
  the connection waits (deleted, replaced, and another process making a new one under
  the name, which shares that -shm with it), nothing of the old file can reach the new
  one. What it saves is the connection's setup and teardown: a close's checkpoint costs
  as much, and it also deletes the -wal and -shm files, which the next run makes again.
- :func:`take` gives it to the next owner that opens the file the same way, while the file
  is as it was left: the same device, inode, size and modification time. Anything else
  (the file replaced, overwritten in place, or written by another process) and the
  connection is closed and a new one opened: a connection's page cache must never
  outlive a change made behind SQLite's back.
- At most ``IDLE_MAX`` connections are idle in a process (the least recently parked goes
  first), each for at most ``IDLE_SECONDS``: a daemon thread closes the ones nobody took,
  so the -wal and -shm files go away soon after the last owner, as they did.
- DuckDB's turn on a file closes its idle ones first (:func:`drop`), a forked child never
  uses its parent's, and all are closed at exit.

Closing one whose file was deleted, moved away or replaced: SQLite does not checkpoint
into a file that moved, nor delete its -wal. When the park could not cut the -wal (a
reader was busy) and it is still as the park left it, its frames (all in the old file
already) would replay into whatever file is under the name now, so it is cut first
(:func:`_retire`); a -wal written since belongs to whoever wrote it.

Locks: a guard's lock is taken before this module's ``_lock``, never after, except without
waiting (closing another file's oldest connection, the reaper).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Protocol


class FileGuard(Protocol):
    """What this module uses of a file's guard (:class:`xetrack.store.sqlite.guard.FileGuard`,
    which imports this module): the file's path, and the lock its owners take."""

    @property
    def path(self) -> str | None: ...
    @property
    def lock(self) -> threading.RLock: ...


#: Connections kept idle in a process, over every file (each holds three descriptors).
IDLE_MAX = 4
#: Seconds an idle connection waits for a new owner before it is closed.
IDLE_SECONDS = 2.0


class _Idle:
    __slots__ = ("guard", "conn", "key", "file", "wal", "since")

    def __init__(self, guard: FileGuard, conn: sqlite3.Connection, key: Hashable) -> None:
        path = guard.path or ""
        self.guard, self.conn, self.key = guard, conn, key
        self.file = state(path)
        self.wal = state(path + "-wal")
        self.since = time.monotonic()


# Every idle connection of the process, least recently parked first.
_idle: OrderedDict[int, _Idle] = OrderedDict()
_lock = threading.Lock()
_exiting = False
_reaper: threading.Thread | None = None
# Held by the reaper while it is inside SQLite (closing connections). A fork takes it
# first: a child forked while another thread holds one of SQLite's own mutexes would
# wait on it for ever.
_working = threading.Lock()


def state(path: str) -> tuple[int, int, int, int] | None:
    """What ``path`` names now: (device, inode, size, mtime), or None when nothing is there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


#: id(connection) -> (device, inode) of the file its path named when it was opened.
_opened_as: dict[int, tuple[int, int] | None] = {}


def opened(conn: sqlite3.Connection, file: tuple[int, int] | None) -> None:
    """Remember which file (device, inode) a new connection opened: a connection of a file
    that was since replaced at the same path is never kept for the path's next owner."""
    _opened_as[id(conn)] = file


def forget(conn: sqlite3.Connection) -> None:
    _opened_as.pop(id(conn), None)


def park(guard: FileGuard, conn: sqlite3.Connection, key: Hashable) -> None:
    """Keep ``conn`` (on ``guard``'s file, under its lock) for the next owner; or close it
    when it can't be kept: in a transaction, or on a file its path no longer names."""
    now = state(guard.path or "")
    if _exiting or conn.in_transaction or now is None or _opened_as.get(id(conn)) != now[:2]:
        forget(conn)
        conn.close()
        return
    try:
        checkpoint(conn)
    except sqlite3.Error:  # a read-only or damaged file: nothing to keep it for
        forget(conn)
        conn.close()
        return
    one = _Idle(guard, conn, key)
    if one.file is None:  # the file is gone already
        _retire(one)
        return
    with _lock:
        while len(_idle) >= IDLE_MAX and _evict_oldest(guard):
            pass
        if len(_idle) < IDLE_MAX:
            _idle[id(conn)] = one
            _start_reaper()
            return
    forget(conn)
    conn.close()  # every idle one is in use elsewhere: this one goes


def checkpoint(conn: sqlite3.Connection) -> None:
    """Move the WAL into the file and cut it to nothing, waiting for nobody."""
    waits = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(waits)}")  # an int read from SQLite


def take(guard: FileGuard, key: Hashable) -> sqlite3.Connection | None:
    """Under ``guard``'s lock: its newest idle connection opened with ``key``, if its file
    is as it was left (else that one is closed, and None)."""
    with _lock:
        found = None
        for one in reversed(_idle.values()):
            if one.guard is guard and one.key == key:
                found = one
                break
        if found is None:
            return None
        del _idle[id(found.conn)]
    if state(guard.path or "") != found.file:
        _retire(found)
        return None
    return found.conn


def drop(guard: FileGuard) -> None:
    """Under ``guard``'s lock: close every idle connection of its file."""
    with _lock:
        mine = [key for key, one in _idle.items() if one.guard is guard]
        gone = [_idle.pop(key) for key in mine]
    for one in gone:
        _retire(one)


def count(guard: FileGuard) -> int:
    """How many connections on ``guard``'s file are idle."""
    with _lock:
        return sum(1 for one in _idle.values() if one.guard is guard)


def close_all() -> None:
    """Close every idle connection of the process, each under its file's lock when that
    comes within a second."""
    with _lock:
        gone = list(_idle.values())
        _idle.clear()
    for one in gone:
        held = one.guard.lock.acquire(timeout=1.0)
        try:
            _retire(one)
        finally:
            if held:
                one.guard.lock.release()


def at_exit() -> None:
    global _exiting
    _exiting = True  # owners collected from now on close their connections
    close_all()


def _before_fork() -> None:
    # SQLite keeps one record per open file for every connection of a process, with the
    # locks the process holds. A forked child inherits that record but not the locks
    # (fcntl locks are per process): a connection the child opens on a file that an idle
    # connection here kept open shares the record and takes no real lock, so this process
    # could reset the WAL under the child's commits. Rows were lost so in a mix of
    # test_duckdb_guard.py under load (seed 28: a child's two rows gone from its file).
    # The idle connections close first; an owner's own connection stays its owner's.
    close_all()
    _working.acquire()


def _after_fork_in_parent() -> None:
    _working.release()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent)


def after_fork() -> list[sqlite3.Connection]:
    """In a forked child: forget the parent's idle connections (returned, never to be
    used or closed here) and its reaper."""
    global _lock, _reaper, _working
    _lock = threading.Lock()
    _working = threading.Lock()
    _reaper = None
    inherited = [one.conn for one in _idle.values()]
    _idle.clear()
    return inherited


def _retire(one: _Idle) -> None:
    """Close an idle connection (its file's lock held, or at exit)."""
    path = one.guard.path or ""
    now = state(path)
    if one.wal is not None and (now is None or now[:2] != (one.file or ())[:2]) and state(path + "-wal") == one.wal:
        # The file was deleted, moved away or replaced: the -wal, unwritten since the park
        # checkpointed it, holds only pages of the old file. With no file left under the
        # name it goes, with the -shm; beside a new file it is cut, and replays nothing.
        try:
            if now is None:
                os.unlink(path + "-wal")
                os.unlink(path + "-shm")
            else:
                os.truncate(path + "-wal", 0)
        except OSError:
            pass
    try:
        forget(one.conn)
        one.conn.close()
    except sqlite3.Error:
        pass


def _evict_oldest(parking: FileGuard) -> bool:
    """Under ``_lock``: close the least recently parked connection whose file's lock is free
    now, without waiting for it. False when none could be closed."""
    for key, one in _idle.items():
        guard = one.guard
        if guard is parking or guard.lock.acquire(blocking=False):
            try:
                del _idle[key]
                _retire(one)
            finally:
                if guard is not parking:
                    guard.lock.release()
            return True
    return False


def _start_reaper() -> None:
    """Under ``_lock``: make sure a reaper runs."""
    global _reaper
    if _reaper is None or not _reaper.is_alive():
        _reaper = threading.Thread(target=_reap, name="xetrack-idle-connections", daemon=True)
        _reaper.start()


def _reap() -> None:
    """Close the connections idle for ``IDLE_SECONDS``; end when none is left."""
    global _reaper
    while True:
        with _lock:
            if not _idle or _reaper is not threading.current_thread():
                if _reaper is threading.current_thread():
                    _reaper = None
                return
            now = time.monotonic()
            due = [one for one in _idle.values() if now - one.since >= IDLE_SECONDS]
            wait = max(0.05, IDLE_SECONDS - max(now - one.since for one in _idle.values()))
        with _working:  # a fork waits until these closes are done (see _before_fork)
            for one in due:
                guard = one.guard
                if not guard.lock.acquire(blocking=False):
                    continue  # in use: next round
                try:
                    with _lock:
                        if _idle.get(id(one.conn)) is not one:
                            continue
                        del _idle[id(one.conn)]
                    _retire(one)
                finally:
                    guard.lock.release()
        time.sleep(min(wait, 0.5) if not due else 0.05)  # short naps: IDLE_SECONDS may change
