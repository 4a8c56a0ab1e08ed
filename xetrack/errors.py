"""Exceptions xetrack raises. Each names what was expected and what was given."""

from __future__ import annotations

import sqlite3


class XetrackError(Exception):
    """Base class of every error xetrack raises on purpose."""


class TableNotFoundError(XetrackError, ValueError):
    """A table was asked for that the database does not have."""


class NotFoundError(XetrackError, KeyError):
    """A stored thing (an artifact, a model version or alias) was asked for that does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ColumnNotFoundError(NotFoundError):
    """A column was asked for that the table does not have."""


class DatabaseError(XetrackError, ValueError):
    """The file is not a SQLite database, or it is damaged."""


class IntegrityError(DatabaseError):
    """Stored bytes no longer match the hash they were stored under; they are not returned."""


class ColumnLimitError(XetrackError, ValueError):
    """A write would pass SQLite's limit on the number of columns in a table."""


class DiskFullError(XetrackError, OSError):
    """A write found no room on the disk (``errno.ENOSPC``); nothing of that call was written.

    Its message names the database file. Once there is room again, the same Tracker
    or Reader writes on.
    """

    def __str__(self) -> str:  # OSError would print "[Errno 28] ...: 'path'", naming the file twice
        return str(self.strerror) if self.strerror else super().__str__()


class DatabaseBusyError(XetrackError, TimeoutError, sqlite3.OperationalError):
    """Another process held the database's write lock for longer than this one waits;
    nothing of the call was written. ``path`` names the file, ``waited`` the seconds.

    It is still a ``sqlite3.OperationalError``, as SQLite's own "database is locked" was,
    so code that catches that keeps working.
    """

    def __init__(self, path: str | None, waited: float) -> None:
        where = repr(path) if path is not None else "the in-memory database"
        super().__init__(
            f"The database {where} is busy: another process held its write lock for more than "
            f"{waited:g} s. Nothing of this call was written; try again once that writer is done."
        )
        self.path, self.waited = path, waited


def damage(exc: BaseException) -> str | None:
    """SQLite's own words when ``exc`` says a file is damaged ("database disk image is
    malformed", "file is not a database"), else None. (Its subclasses say other things:
    a lock, a missing table, a constraint.)"""
    if type(exc) is sqlite3.DatabaseError:
        return str(exc)
    return None
