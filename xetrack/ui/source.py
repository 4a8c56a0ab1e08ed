"""The store a dashboard serves: Readers lent to requests, and the file watched.

Requests run at once, each on a Reader of its own: a Reader's connection answers one
query at a time, so :class:`Source` keeps, per table, the Readers no request is using,
opens another while fewer than ``MAX_READERS`` are open, and past that makes a request
wait for one to come back (``WAIT_SECONDS`` at most, then 503). No lock is held while a
request works. The Readers share the process's cache of ``runs()``/``search()`` answers,
which is keyed by the file's signature: a request on an unchanged file costs a lookup,
whichever Reader it gets.

Before each request the file is looked at (``os.stat`` and its 100-byte header): a file
deleted or moved answers 410 with a message that says so; a file replaced by another
(a new inode: a script that recreated ``exp.db``) is served from then on, on new
Readers; a file shorter than its header says is answered as truncated.

>>> source = Source(lambda table: Reader("exp.db", table=table, persist_summary=False))  # doctest: +SKIP
>>> with source.borrow("default") as reader:  # doctest: +SKIP
...     reader.runs()
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseError, TableNotFoundError, XetrackError, damage

if TYPE_CHECKING:
    from .reading import ReaderFactory, TableReader

#: Readers of one table open at once; a request past that waits for one.
MAX_READERS = 8
#: How long a request waits for a Reader before it is answered 503.
WAIT_SECONDS = 30.0
#: How many more looks (20 ms apart) a file shorter than its header says gets before it is
#: called truncated: SQLite grows a file by writing page 1, which holds the new size, first.
TRUNCATION_CHECKS = 5
#: While someone used the dashboard within ``KEEP_WARM`` seconds, a background thread
#: brings the runs of the tables they looked at up to date every ``WARM_EVERY`` seconds.
WARM_EVERY, KEEP_WARM = 2.0, 120.0


class FileGone(XetrackError):
    """The served file was deleted or moved while the dashboard served it (410)."""


class Busy(XetrackError):
    """Every Reader stayed busy for ``WAIT_SECONDS`` (503)."""


def local_file(reader: Any) -> str | None:
    """The path of the SQLite file ``reader`` reads, or None (PostgreSQL, in memory)."""
    path = getattr(getattr(reader, "store", None), "path", None)
    return path if isinstance(path, str) and os.path.isfile(path) else None


def identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of ``path``; None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def truncation(path: str) -> str | None:
    """Why ``path`` is shorter than its own header says, or None. SQLite's header gives
    the page size (bytes 16-17) and, when valid (bytes 92-95 equal the change counter at
    24-27), the database's size in pages (28-31); a file cut short holds fewer bytes."""
    try:
        with open(path, "rb", buffering=0) as handle:
            head = handle.read(100)
        size = os.path.getsize(path)
    except OSError:
        return None
    if len(head) < 100 or not head.startswith(b"SQLite format 3\0"):
        return None  # not ours to judge: opening it says what it is
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    if head[92:96] != head[24:28] or not pages:
        return None
    if size < page * pages:
        return f"it holds {size:,} bytes where its header says {page * pages:,}"
    return None


class Source:
    """One store served read-only: Readers per table, each opened by ``open_reader``
    (the dashboard's Readers leave the file as it is), lent one request at a time."""

    def __init__(self, open_reader: ReaderFactory, table: str = "default") -> None:
        self.open = open_reader
        self.default_table = table
        self._cond = threading.Condition()
        first = open_reader(table)
        self.db = first.db  # as shown: a PostgreSQL URL without its password
        self.path = local_file(first)
        self.identity = identity(self.path) if self.path else None
        self._idle: dict[str, list[TableReader]] = {table: [first]}
        self._count: dict[str, int] = {table: 1}
        self._epoch = 0  # moves when the file is replaced: Readers of an older epoch are closed
        self._closed = False
        self._used = {table: time.monotonic()}  # table -> when a request last read it
        self._warmer: threading.Thread | None = None
        self._stop = threading.Event()

    # -- the file ---------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`FileGone` or :class:`~xetrack.errors.DatabaseError` when the file
        is gone or cut short; start over on new Readers when it was replaced."""
        if self.path is None:
            return
        now = identity(self.path)
        if now is None:
            raise FileGone(
                f"The database file {self.path!r} is gone: it was deleted or moved while the dashboard "
                "served it. Start `xt ui` again on its new path."
            )
        if now != self.identity:
            with self._cond:
                if now != self.identity:
                    logging.getLogger("xetrack.ui").warning("%s was replaced: serving the new file", self.path)
                    self.identity = now
                    self._epoch += 1
                    for readers in self._idle.values():
                        for reader in readers:
                            reader.close()
                    self._idle = {}
                    self._count = {}
                    self._cond.notify_all()
        cut = truncation(self.path)
        for _ in range(TRUNCATION_CHECKS):  # a file growing under a writer: page 1 comes first
            if cut is None:
                return
            time.sleep(0.02)
            cut = truncation(self.path)
        if cut is not None:
            raise DatabaseError(f"The database file {self.path!r} is truncated: {cut}. Restore it from a copy.")

    # -- Readers ----------------------------------------------------------------
    @contextmanager
    def borrow(self, table: str | None = None, use: bool = True) -> Iterator[TableReader]:
        """A Reader of ``table`` (default: the table shown first) for this request alone
        (``use=False``: for the warming thread, which is nobody's use of the table)."""
        self.check()
        name = table or self.default_table
        reader, epoch = self._take(name)
        if use:
            self._used[name] = time.monotonic()
        try:
            yield reader
        except Exception as exc:
            said = damage(exc)
            if said is None:
                raise
            raise DatabaseError(
                f"The database file {self.db!r} is damaged: SQLite says {said!r}. Nothing was changed; "
                "restore it from a copy, or recover what is left with the sqlite3 shell's .recover"
            ) from None
        finally:
            self._give(name, reader, epoch)

    def _take(self, name: str) -> tuple[TableReader, int]:
        deadline = time.monotonic() + WAIT_SECONDS
        with self._cond:
            while True:
                if self._closed:
                    raise Busy("The dashboard is stopping")
                idle = self._idle.get(name)
                if idle:
                    return idle.pop(), self._epoch
                if self._count.get(name, 0) < MAX_READERS:
                    self._count[name] = self._count.get(name, 0) + 1
                    epoch = self._epoch
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy(f"Every reader of table {name!r} stayed busy for {WAIT_SECONDS:g} s: try again")
                self._cond.wait(left)
        try:
            return self._open(name), epoch
        except BaseException:
            with self._cond:
                if epoch == self._epoch:
                    self._count[name] -= 1
                    if not self._count[name]:
                        del self._count[name]  # an unknown table leaves nothing behind
                self._cond.notify_all()
            raise

    def _open(self, name: str) -> TableReader:
        if name != self.default_table:
            with self.borrow(None) as first:  # the table must exist: say which do
                known = [str(t) for t in first.tables()["table"]]
            if name not in known:
                listed = ", ".join(known) or "none"
                raise TableNotFoundError(f"Table {name!r} not found in {self.db!r}. Tables: {listed}")
        return self.open(name)

    def _give(self, name: str, reader: TableReader, epoch: int) -> None:
        with self._cond:
            if epoch == self._epoch and not self._closed:
                self._idle.setdefault(name, []).append(reader)
                self._cond.notify_all()  # one condition for every table: wake the waiter of this one
                return
        reader.close()  # a Reader of the file as it was before it was replaced

    @contextmanager
    def own(self, table: str | None = None) -> Iterator[TableReader]:
        """A Reader opened for one long task (an artifact streamed out, a CSV) and closed
        after it, so that a slow download holds no Reader that requests share."""
        self.check()
        name = table or self.default_table
        if name != self.default_table:
            with self.borrow(name):
                pass  # raises TableNotFoundError for an unknown table
        reader = self.open(name)
        try:
            yield reader
        finally:
            reader.close()

    # -- kept warm ----------------------------------------------------------------
    def keep_warm(self) -> None:
        """Start the thread that keeps the runs of the tables in use computed: at once
        (the first page asks for them right after `xt ui` starts), then after each change
        of the file while someone uses the dashboard, so that a request finds them ready
        in the process's cache rather than computing them itself. The thread holds the
        Source weakly: it ends with it."""
        if self._warmer is None:
            self._warmer = threading.Thread(
                target=_warm, args=(weakref.ref(self), self._stop), name="xetrack-ui-warm", daemon=True
            )
            self._warmer.start()

    def warm_once(self) -> None:
        now = time.monotonic()
        for name, used in list(self._used.items()):
            if now - used > KEEP_WARM or self._closed:
                continue
            try:
                with self.borrow(name, use=False) as reader:
                    reader.search(None)  # the runs page's copy: a lookup when the file is unchanged
                    reader.runs()  # the charts' and run pages' frame
            except Exception:  # noqa: BLE001 - a request meets the same error, and says it
                pass

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._closed = True
            for readers in self._idle.values():
                for reader in readers:
                    reader.close()
            self._idle = {}
            self._cond.notify_all()


def _warm(source: weakref.ref[Source], stop: threading.Event) -> None:
    while not stop.is_set():
        alive = source()
        if alive is None:
            return
        alive.warm_once()
        del alive  # between rounds the Source may go
        stop.wait(WARM_EVERY)


__all__ = ["Busy", "FileGone", "MAX_READERS", "Source", "WAIT_SECONDS", "identity", "local_file", "truncation"]
