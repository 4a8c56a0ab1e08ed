"""SQLite write transactions, and waiting out a busy file where SQLite's own busy
handler does not wait: the one place that writes ``BEGIN IMMEDIATE``.

Light on purpose (only sqlite3): ``xetrack.copy`` uses it without loading pandas.

>>> conn = sqlite3.connect(":memory:", isolation_level=None)
>>> with immediate(conn):
...     _ = conn.execute("CREATE TABLE t (x)")
>>> transact(conn, lambda: conn.execute("INSERT INTO t VALUES (1)").rowcount, timeout=1.0)
1
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's SQLITE_BUSY (another connection holds the lock), which
    waiting cures; SQLITE_LOCKED (a conflict inside one connection) is not."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    name: str | None = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if name is not None:
        return name.startswith("SQLITE_BUSY")
    return "database is locked" in str(exc) or " busy" in str(exc)  # a DatabaseBusyError


def retry_busy(fn: Callable[[], T], timeout: float, path: str | None = None) -> T:
    """Call ``fn`` again, backing off, while SQLite reports busy, for up to ``timeout`` s;
    then raise :class:`~xetrack.errors.DatabaseBusyError` naming ``path``."""
    from ...errors import DatabaseBusyError

    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or isinstance(exc, DatabaseBusyError):
                raise
            if time.monotonic() > deadline:
                raise DatabaseBusyError(path, timeout) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


@contextmanager
def immediate(conn: sqlite3.Connection, timeout: float | None = None, path: str | None = None) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (the write lock, taken now) ... ``COMMIT``; rolled back on any
    error, which propagates. With ``timeout``, the BEGIN alone waits out a busy file (then
    the body runs once); without, the caller retries the whole transaction."""
    if timeout is None:
        conn.execute("BEGIN IMMEDIATE")
    else:
        retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"), timeout, path)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:  # after an I/O error SQLite may have rolled back already
                pass
        raise


def transact(conn: sqlite3.Connection, body: Callable[[], T], timeout: float, path: str | None = None) -> T:
    """``body()`` in one :func:`immediate` transaction, run again (from the start) while the
    file is busy, for up to ``timeout`` s. ``body`` must be safe to run twice."""

    def attempt() -> T:
        with immediate(conn):
            return body()

    return retry_busy(attempt, timeout, path)
