"""Exceptions xetrack raises. Each names what was expected and what was given."""

from __future__ import annotations


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
