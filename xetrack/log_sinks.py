"""Where log lines are written: a file shared by processes (:class:`AppendFile`), the
rotating file of a ``logs_path`` folder (:class:`RotatingLogFile`) named by a
``logs_file_format`` pattern, and stdout (:class:`StdoutSink`).

The log files of a ``logs_path`` folder are named by ``logs_file_format``, a loguru
file-name pattern (default ``{time:YYYY-MM-DD}.log``, one file a day); rotated ones keep
the name's stem with a number: ``2026-12-06.000001.log``.

Many processes may write one folder or one JSONL file at once. Each line is written with
one ``os.write`` on a descriptor opened with ``O_APPEND``: on Linux (and other POSIX
systems) a write to a regular file in append mode lands whole at the end of the file,
so lines never interleave and none is lost. loguru's ``enqueue=True`` is not needed (it
only serializes one process tree). Rotation is done under an ``fcntl.flock`` lock file,
so two processes never rotate at once; a process still holding the old file notices at
its next write and reopens.

``ROTATION_BYTES``, ``_clock`` and ``_next_midnight`` are read in this module (at each
write, or each file opened): a test that changes them patches this module.
"""

from __future__ import annotations

import fcntl
import os
import re
import string
import sys
import time
from datetime import date, datetime, timedelta
from typing import Any

from loguru._datetime import datetime as _LoguruDatetime

#: The default ``logs_file_format``: one file a day, named by the local date.
DEFAULT_FILE_FORMAT = "{time:YYYY-MM-DD}.log"
#: How loguru writes a plain ``{time}`` in a file name.
TIME_IN_FILE_NAME = "YYYY-MM-DD_HH-mm-ss_SSSSSS"
LOCK_NAME = ".xetrack.log.lock"  # hidden: read_logs passes over names starting with "."
#: A log file is rotated once it passes this size (bytes).
ROTATION_BYTES = 50 * 1024 * 1024


# -- appending to a file ---------------------------------------------------------------
def _write_all(fd: int, data: bytes) -> None:
    """One ``os.write`` for the whole line (atomic with O_APPEND); loop on short writes."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _open_append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _unwritable(path: str, what: str, exc: OSError) -> OSError:
    message = f"Cannot write {what} to {path!r}: {exc.strerror or exc}"
    kind = type(exc) if isinstance(exc, (PermissionError, IsADirectoryError, NotADirectoryError)) else OSError
    return kind(exc.errno, message) if exc.errno else kind(message)


class AppendFile:
    """A file written line by line with O_APPEND, safe to share between processes."""

    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.what = what
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            if os.path.isdir(path):
                raise IsADirectoryError(21, "Is a directory")
            self.fd = _open_append(path)
        except OSError as exc:
            raise _unwritable(path, what, exc) from None

    def write(self, data: bytes) -> None:
        _write_all(self.fd, data)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# -- the name of the log file -------------------------------------------------------------
def _clock() -> float:
    """The time the file names follow (seconds since the epoch); tests replace it."""
    return time.time()


def _local_time(now: float) -> Any:
    """``now`` as loguru's datetime in the local timezone, which formats loguru's tokens."""
    return _LoguruDatetime.fromtimestamp(now).astimezone()


def _next_midnight(now: float) -> float:
    """The first local midnight after ``now`` (seconds since the epoch)."""
    tomorrow = date.fromtimestamp(now) + timedelta(days=1)
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day).timestamp()  # local time
    return midnight if midnight > now else now + 1.0  # (a clock set back in the meantime)


_NamePattern = tuple[tuple[str, "str | None"], ...]


def _bad_pattern(pattern: str, why: str) -> ValueError:
    return ValueError(
        f"logs_file_format {pattern!r} {why}; it is the name of the log files in logs_path: "
        f"text and {{time}} or {{time:FORMAT}} fields (loguru's time tokens), e.g. {DEFAULT_FILE_FORMAT!r}"
    )


def _check_name(pattern: str, name: str) -> str:
    if not name:
        raise _bad_pattern(pattern, "gives an empty file name")
    if "\0" in name:
        raise _bad_pattern(pattern, "gives a file name with a NUL character")
    for sep in filter(None, {"/", os.sep, os.altsep}):
        if sep in name:
            raise _bad_pattern(pattern, f"gives {name!r}, with a path separator {sep!r}")
    if ".." in name:
        raise _bad_pattern(pattern, f"gives {name!r}, with '..'")
    if name.startswith("."):
        raise _bad_pattern(pattern, f"gives {name!r}, a hidden name (read_logs passes over those)")
    return name


def _format_name(parts: _NamePattern, now: float) -> str:
    """The text ``parts`` give at ``now``, in local time: loguru formats the time fields."""
    stamp = _local_time(now)
    pieces = []
    for literal, spec in parts:
        pieces.append(literal)
        if spec is not None:
            pieces.append(format(stamp, spec))
    return "".join(pieces)


def _file_name(pattern: str, parts: _NamePattern, now: float) -> str:
    """The file name the pattern gives at ``now``, checked."""
    return _check_name(pattern, _format_name(parts, now))


def compile_file_name(pattern: Any) -> _NamePattern:
    """Check a ``logs_file_format`` (None: the default) and split it into
    ``(text, time format or None)`` pairs. Fails, with the reason, on a pattern that is not
    a format string, names another field than ``{time}``, or gives no usable file name."""
    if pattern is None:
        pattern = DEFAULT_FILE_FORMAT
    if not isinstance(pattern, str):
        raise TypeError(
            f"logs_file_format must be a str, a file-name pattern such as {DEFAULT_FILE_FORMAT!r}; "
            f"got {type(pattern).__name__}: {pattern!r:.80}"
        )
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise _bad_pattern(pattern, f"is not a format string ({exc})") from None
    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            parts.append((literal, None))
            continue
        if field != "time":
            shown = "{}" if field == "" else f"{{{field}}}"
            raise _bad_pattern(pattern, f"names {shown}, and only {{time}} is known in a file name")
        if conversion is not None:
            raise _bad_pattern(pattern, f"converts {{time!{conversion}}}")
        spec = spec or ""  # a field's format spec ("" when none is given)
        if "{" in spec or "}" in spec:
            raise _bad_pattern(pattern, f"nests a field in {{time:{spec}}}")
        # a plain {time} (or {time:!UTC}) as loguru writes it in file names
        parts.append((literal, TIME_IN_FILE_NAME + spec if spec in ("", "!UTC") else spec))
    compiled = tuple(parts)
    try:  # loguru's own check of the time tokens
        name = _format_name(compiled, _clock())
    except Exception as exc:  # noqa: BLE001 - whatever loguru raises, the pattern is at fault
        raise _bad_pattern(pattern, f"has a time format loguru refuses ({exc})") from None
    _check_name(pattern, name)
    return compiled


class RotatingLogFile(AppendFile):
    """A file in ``folder`` named by ``logs_file_format`` at the time it is opened, again
    at the first write after local midnight, and renamed to ``<stem>.<n><suffix>`` once it
    passes ``ROTATION_BYTES`` (then a file is opened under the name of the moment)."""

    def __init__(self, folder: str, name_format: str | None = None) -> None:
        self.pattern = DEFAULT_FILE_FORMAT if name_format is None else name_format
        self.parts = compile_file_name(self.pattern)
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise NotADirectoryError(f"logs_path {folder!r} is a file: logs_path names a folder")
        self.folder = folder
        self.what = "logs"
        self.fd = -1
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise _unwritable(folder, "logs", exc) from None
        self.lock_path = os.path.join(folder, LOCK_NAME)
        self._open_current(_clock())

    def _open_current(self, now: float) -> None:
        """Open (or create) the file the pattern names at ``now``; close the one held."""
        path = os.path.join(self.folder, _file_name(self.pattern, self.parts, now))
        try:
            if os.path.isdir(path):
                raise IsADirectoryError(21, "Is a directory")
            fd = _open_append(path)
        except OSError as exc:
            raise _unwritable(path, self.what, exc) from None
        if self.fd >= 0:
            os.close(self.fd)
        self.fd, self.path = fd, path
        self.switch_at = _next_midnight(now)

    def write(self, data: bytes) -> None:
        now = _clock()
        if now >= self.switch_at:  # a new day: the name may say so
            self._open_current(now)
        if os.fstat(self.fd).st_size >= ROTATION_BYTES:
            self._rotate()
        _write_all(self.fd, data)

    def _rotate(self) -> None:
        lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            mine = os.fstat(self.fd)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
                if mine.st_size < ROTATION_BYTES:
                    return
                # still ours to rotate
                stem, suffix = os.path.splitext(os.path.basename(self.path))
                number = _next_number(self.folder, stem, suffix)
                os.rename(self.path, os.path.join(self.folder, f"{stem}.{number:06d}{suffix}"))
            # another process rotated (or we just did): write to the file of the moment
            self._open_current(_clock())
        finally:
            os.close(lock)  # releases the flock


def _next_number(folder: str, stem: str, suffix: str) -> int:
    """One more than the highest number of the rotated files of ``stem`` + ``suffix``."""
    numbered = re.compile(rf"^{re.escape(stem)}\.(\d{{6,}}){re.escape(suffix)}$")
    numbers = [int(m.group(1)) for m in map(numbered.match, os.listdir(folder)) if m]
    return max(numbers, default=0) + 1


class StdoutSink:
    """Looks ``sys.stdout`` up at each line, so redirection and capture keep working."""

    what = "stdout"

    def write(self, data: bytes) -> None:
        out = sys.stdout
        out.write(data.decode("utf-8"))
        out.flush()

    def close(self) -> None:
        pass
