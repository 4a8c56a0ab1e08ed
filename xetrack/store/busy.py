"""Waiting out a busy SQLite file where SQLite's own busy handler does not wait.

Light on purpose (only sqlite3): ``xetrack.copy`` uses it without loading pandas.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Callable


def is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def retry_busy(fn: Callable[[], Any], timeout: float) -> Any:
    """Call ``fn`` again, backing off, while SQLite reports busy, for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
