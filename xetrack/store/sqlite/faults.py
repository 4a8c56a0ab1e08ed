"""What a failed SQLite call means for the user: one clear error that names the file.

SQLite says "database or disk is full", "disk I/O error" or "attempt to write a
readonly database" without saying which file, and a failed write of the WAL on a full
disk may come as either of the first two. :func:`fault` turns such an
``sqlite3.Error`` into the error a user can act on:

- no room (``SQLITE_FULL``, or ``SQLITE_IOERR`` while the disk or the process's file
  size limit is at its end): :class:`~xetrack.errors.DiskFullError` (an ``OSError``
  with ``errno.ENOSPC``);
- any other I/O error: ``OSError`` with ``errno.EIO``;
- a file or folder this process may not write: ``PermissionError``;
- a file that is no SQLite database, or a damaged one: :class:`~xetrack.errors.DatabaseError`.

SQLite rolls back the statement or transaction that failed, so nothing of that call is
written. After an I/O error the engine's connection is closed (it reopens on next use):
SQLite may hold a connection in an error state until it is reopened.

:func:`check_writable` refuses a read-only file or folder before a Tracker starts, and
:func:`read_target` lets a Reader read a file in a folder it may not write.
"""

from __future__ import annotations

import errno
import functools
import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote as url_quote

from ...errors import DatabaseBusyError, DatabaseError, DiskFullError
from .busy import is_busy

F = TypeVar("F", bound=Callable[..., Any])

#: An I/O error with less room than this left (on the disk, or under RLIMIT_FSIZE) is
#: taken for a full disk: SQLite writes the WAL a page or a few at a time.
_NEARLY_FULL = 4 * 2**20
_SIDE_FILES = ("-wal", "-shm", "-journal")


def error_name(exc: BaseException) -> str:
    """SQLite's extended error name (``SQLITE_IOERR_WRITE``), or '' before Python 3.11."""
    return getattr(exc, "sqlite_errorname", None) or ""


def is_disk_full(exc: BaseException, path: str | None = None) -> bool:
    name, text = error_name(exc), str(exc).lower()
    if name == "SQLITE_FULL" or "database or disk is full" in text:
        return True
    return is_io_error(exc) and path is not None and _no_room(path)


def is_io_error(exc: BaseException) -> bool:
    return error_name(exc).startswith("SQLITE_IOERR") or "disk i/o error" in str(exc).lower()


def is_read_only(exc: BaseException) -> bool:
    name, text = error_name(exc), str(exc).lower()
    return name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) or (
        "readonly database" in text or "unable to open database file" in text
    )


def is_damaged(exc: BaseException) -> bool:
    name, text = error_name(exc), str(exc).lower()
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or ("malformed" in text or "not a database" in text)


def _no_room(path: str) -> bool:
    """Whether the disk of ``path``, or this process's file size limit, is (nearly) used up."""
    try:
        stats = os.statvfs(_folder(path))
        free = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail
        if free * stats.f_frsize < _NEARLY_FULL:
            return True
    except (OSError, AttributeError):  # no statvfs/geteuid on Windows
        pass
    try:
        import resource
    except ImportError:  # Windows
        return False
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft == resource.RLIM_INFINITY:
        return False
    sizes = [os.path.getsize(p) for p in (path, *(path + s for s in _SIDE_FILES)) if os.path.exists(p)]
    return bool(sizes) and max(sizes) + _NEARLY_FULL > soft


def fault(exc: BaseException, path: str | None, timeout: float = 0.0) -> Exception | None:
    """The clear error for ``exc`` raised on the database ``path``; None when SQLite's own
    error says enough (a constraint, bad SQL). A file still busy after ``timeout`` s of
    SQLite's own waiting is a :class:`DatabaseBusyError`.

    An ``OSError`` carries ``path`` as its ``filename``, so ``str()`` names the file.
    """
    if not isinstance(exc, sqlite3.Error):
        return None
    where = repr(path) if path is not None else "the in-memory database"
    if is_disk_full(exc, path):
        return DiskFullError(
            errno.ENOSPC,
            f"The disk is full: could not write to {where}, and nothing of this call was "
            f"written. Free some space (or raise the file size limit) and try again. ({exc})",
            path,
        )
    if is_io_error(exc):
        return OSError(
            errno.EIO, f"Disk I/O error writing the database; nothing of this call was written ({exc})", path
        )
    if is_read_only(exc):
        return PermissionError(
            errno.EACCES,
            "Cannot write to the database: this process may not write the file, or create "
            f"its -wal and -shm files in its folder ({exc})",
            path,
        )
    if is_busy(exc):
        return exc if isinstance(exc, DatabaseBusyError) else DatabaseBusyError(path, timeout)
    if is_damaged(exc):
        return DatabaseError(f"{where} is not a SQLite database or is damaged ({exc})")
    return None


def surfaces_faults(method: F) -> F:
    """Decorate an engine method: a fault of its file is raised as :func:`fault` says.

    After an I/O error (or a full disk) the engine's connections are released, so the
    next call starts from a fresh connection.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise_fault(self, exc)
            raise

    return wrapper  # type: ignore[return-value]


def raise_fault(engine: Any, exc: sqlite3.Error) -> None:
    """Raise the clear error for ``exc`` on ``engine``'s file, if :func:`fault` has one
    (the caller re-raises ``exc`` otherwise). The hot path (``insert``) calls this from
    its own ``except`` instead of paying for a decorator's extra call."""
    clear = fault(exc, engine.path, engine.timeout)
    if clear is None:
        return
    if isinstance(clear, OSError) and not isinstance(clear, (PermissionError, DatabaseBusyError)):
        try:
            engine.release_connection()
        except Exception:  # noqa: BLE001 - the fault is what the user must see
            pass
    raise clear from None


# -- before opening ------------------------------------------------------------------
def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path)) or os.sep


def _writable(path: str) -> bool:
    return os.access(path, os.W_OK)


def _make_folder(folder: str, path: str) -> None:
    """Create the missing folders above a database file, as xetrack 0.7.0's Tracker did
    (``Tracker('results/exp.db')`` in an empty folder). A folder that can't be made is
    one clear error naming it."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        kind: type[OSError]
        code: int | None
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            kind, code, why = NotADirectoryError, errno.ENOTDIR, "a file stands where a folder is needed"
        else:
            kind = PermissionError if isinstance(exc, PermissionError) else OSError
            code, why = exc.errno, exc.strerror or str(exc)
        raise kind(code, f"Cannot create the database's folder {folder!r}: {why}", path) from None


def check_writable(path: str, make_folders: bool = False) -> None:
    """Raise a clear error when a Tracker could not write ``path``: a read-only file, a
    folder where it cannot be created, or one where its -wal and -shm cannot be made.
    ``make_folders`` creates a missing folder (a Tracker's) instead of refusing it.

    The check asks the operating system (``os.access``), so it follows what this
    process may do: root may write a file whose permission bits say read-only.
    """
    folder = _folder(path)
    if not os.path.isdir(folder):
        if not make_folders:
            raise FileNotFoundError(
                errno.ENOENT, f"Cannot create the database: its folder {folder!r} does not exist", path
            )
        _make_folder(folder, path)
    if os.path.exists(path):
        if not _writable(path):
            raise PermissionError(
                errno.EACCES, "Cannot write to the database: the file is read-only for this process", path
            )
        if _writable(folder):
            return
        sides = [path + "-wal", path + "-shm"]
        if all(os.path.exists(p) and _writable(p) for p in sides):
            return  # SQLite can use them where they are
        raise PermissionError(
            errno.EACCES,
            f"Cannot write to the database: its folder {folder!r} is read-only, and SQLite "
            f"needs to create {os.path.basename(path)}-wal and -shm beside it",
            path,
        )
    if not _writable(folder):
        raise PermissionError(
            errno.EACCES, f"Cannot create the database: its folder {folder!r} is read-only for this process", path
        )


def read_target(path: str) -> tuple[str, bool]:
    """The URI a reader opens ``path`` with (never creating a file): read-write when it may
    write, else read-only; and, in a folder where the -shm file can be neither found nor
    made, ``immutable=1``, which reads the file as it is without the WAL index.

    That last case sees no later changes of the file. It is refused when a -wal file
    holds changes that only a -shm file could make readable.
    """
    uri = "file:" + url_quote(os.path.abspath(path))
    folder = _folder(path)
    if _writable(folder) or os.path.exists(path + "-shm"):
        return uri + "?mode=rw", True  # SQLite itself opens read-only a file it may not write
    wal = path + "-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        raise PermissionError(
            errno.EACCES,
            f"Cannot read the database: its folder {folder!r} is read-only and its -wal file "
            "holds changes that need a -shm file beside it. Open it once where it can be "
            "written, or copy the folder",
            path,
        )
    return uri + "?mode=ro&immutable=1", True
