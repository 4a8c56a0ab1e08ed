"""Structured logs through loguru: a rotating file, stdout and a JSONL dataset, and reading them back.

Every tracked event becomes one line at the custom level ``TRACKING``::

    2026-11-22 21:46:55.290 | TRACKING | __main__:<module>:3!📁!{"accuracy": 0.9, "timestamp": "...", "track_id": "..."}

and, with ``jsonl=``, one JSON object per event (keys at the top level, plus ``level``,
an ISO-8601 ``timestamp`` with timezone, and ``track_id``).

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
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import string
import sys
import time
import warnings
import weakref
from datetime import date, datetime, timedelta
from typing import Any, Iterator, Mapping

from loguru import logger as _global_logger
from loguru._datetime import datetime as _LoguruDatetime

from .frames import frame_from_rows, to_backend
from .schema import sql_type

TRACKING = "TRACKING"
TRACKING_NO = 22  # between INFO (20) and SUCCESS (25)
SEPARATOR = "!📁!"
#: The default ``logs_file_format``: one file a day, named by the local date.
DEFAULT_FILE_FORMAT = "{time:YYYY-MM-DD}.log"
#: How loguru writes a plain ``{time}`` in a file name.
TIME_IN_FILE_NAME = "YYYY-MM-DD_HH-mm-ss_SSSSSS"
LOCK_NAME = ".xetrack.log.lock"  # hidden: read_logs passes over names starting with "."
#: A log file is rotated once it passes this size (bytes).
ROTATION_BYTES = 50 * 1024 * 1024

# a rotated file: stem . number (6 digits or more) suffix
_NUMBERED = re.compile(r"^(.+)\.(\d{6,})(\.[^.]*)?$")
_HEADER = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| (\w+) *\| ")
_SINK_ID = "xetrack_sink"


def _private_logger() -> Any:
    """A loguru logger with a core of its own: the user's handlers (and loguru's default
    stderr handler) never see xetrack's events, and ours never see theirs."""
    try:
        from loguru._logger import Core, Logger

        own = Logger(Core(), None, 0, False, False, False, False, True, [], {})
    except Exception:  # pragma: no cover - a loguru whose internals changed
        # Shared core: our handlers filter on the sink id, and the level is added once.
        own = _global_logger
    try:
        own.level(TRACKING)
    except ValueError:
        own.level(TRACKING, no=TRACKING_NO, color="<cyan><bold>", icon="📁")
    return own


_LOGGER = _private_logger()


# -- writing --------------------------------------------------------------------------
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
    parts = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            parts.append((literal, None))
            continue
        if field != "time":
            shown = "{}" if field == "" else f"{{{field}}}"
            raise _bad_pattern(pattern, f"names {shown}, and only {{time}} is known in a file name")
        if conversion is not None:
            raise _bad_pattern(pattern, f"converts {{time!{conversion}}}")
        if "{" in spec or "}" in spec:
            raise _bad_pattern(pattern, f"nests a field in {{time:{spec}}}")
        # a plain {time} (or {time:!UTC}) as loguru writes it in file names
        parts.append((literal, TIME_IN_FILE_NAME + spec if spec in ("", "!UTC") else spec))
    compiled = tuple(parts)
    try:  # loguru's own check of the time tokens
        name = _format_name(compiled, _clock())
    except Exception as exc:
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


# -- formatting -----------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


dumps = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode


_offsets: dict[str, str] = {}


def _offset_text(offset: Any) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def iso_timestamp(local: str) -> str:
    """``'2026-11-22 10:30:00.123456'`` (local time) -> ``'2026-11-22T10:30:00.123456+01:00'``."""
    minute = local[:16]
    offset = _offsets.get(minute)
    if offset is None:
        try:
            offset = _offset_text(datetime.fromisoformat(local).astimezone().utcoffset())
        except (ValueError, OverflowError, OSError):
            return local
        if len(_offsets) > 1024:
            _offsets.clear()
        _offsets[minute] = offset
    return f"{local[:10]}T{local[11:]}{offset}"


def jsonl_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """The JSONL object of a row: ``timestamp``, ``level``, the keys, then ``track_id``."""
    event: dict[str, Any] = {"timestamp": None, "level": TRACKING}
    event.update(row)
    stamp = row.get("timestamp")
    event["timestamp"] = iso_timestamp(stamp) if isinstance(stamp, str) else stamp
    if "track_id" in event:
        event["track_id"] = event.pop("track_id")
    return event


def _location(record: Mapping[str, Any]) -> str:
    return f"{record['name']}:{record['function']}:{record['line']}"


def log_line(record: Mapping[str, Any]) -> bytes:
    """The text line of a record, as the file and stdout sinks write it."""
    level = record["level"].name
    if level == TRACKING:
        row = record["extra"]["event"]
        stamp = row.get("timestamp")
        when = stamp[:23] if isinstance(stamp, str) else record["time"].strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
        return f"{when} | {TRACKING} | {_location(record)}{SEPARATOR}{dumps(row)}\n".encode("utf-8")
    when = record["time"].strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
    # continuation lines are indented, so each record starts a line with a header
    message = str(record["message"]).replace("\n", "\n    ")
    text = f"{when} | {level: <8} | {_location(record)} - {message}\n"
    if record["exception"] is not None:
        import traceback

        exc = record["exception"]
        trace = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
        text += "    " + trace.rstrip("\n").replace("\n", "\n    ") + "\n"
    return text.encode("utf-8")


def _text_sink(target: Any) -> Any:
    def sink(message: Any) -> None:
        target.write(log_line(message.record))

    return sink


# -- the logger object ----------------------------------------------------------------
#: Handlers of loggers whose tracker the garbage collector took. Its finalizer can run in
#: the middle of loguru's own add() or remove(), whose lock remove() would wait on for
#: ever; so it only queues them here, and the next logger opened or closed removes them.
_STALE_HANDLERS: list[int] = []


def _collected(handler_ids: list[int], targets: list[Any]) -> None:
    """The finalizer of a tracker with sinks: close its files, queue its handlers.

    The handlers left meanwhile write nothing: their filter matches only the collected
    logger's id, and no logger opens with that id before :func:`_remove_stale` ran."""
    _STALE_HANDLERS.extend(handler_ids)
    handler_ids.clear()
    for target in targets:
        target.close()


def _remove_stale() -> None:
    while _STALE_HANDLERS:
        try:
            _LOGGER.remove(_STALE_HANDLERS.pop())
        except (ValueError, IndexError):
            pass


def _close_sinks(handler_ids: list[int], targets: list[Any]) -> None:
    _remove_stale()
    for handler_id in handler_ids:
        try:
            _LOGGER.remove(handler_id)
        except ValueError:
            pass
    handler_ids.clear()
    for target in targets:
        target.close()


class TrackerLogger:
    """``tracker.logger``: messages and events written to the tracker's log sinks.

    >>> from xetrack import Tracker
    >>> tracker = Tracker(Tracker.SKIP_INSERT, logs_stdout=True)  # doctest: +SKIP
    >>> tracker.logger.info("training starts")  # doctest: +SKIP
    >>> tracker.logger.monitor({"latency": 0.12, "prediction": 1})  # doctest: +SKIP
    """

    def __init__(
        self,
        tracker: Any,
        logs_path: Any = None,
        logs_stdout: bool = False,
        jsonl: Any = None,
        logs_file_format: str | None = None,
    ) -> None:
        # Checked even without logs_path: a bad pattern fails at construction.
        compile_file_name(logs_file_format)
        self._owner = weakref.ref(tracker)  # the Tracker owns its logger, not the other way
        self.logs_path = None if logs_path is None else os.fspath(logs_path)
        #: The file-name pattern of the files in ``logs_path`` (the default when None is given).
        self.logs_file_format = DEFAULT_FILE_FORMAT if logs_file_format is None else logs_file_format
        self.logs_stdout = bool(logs_stdout)
        self.jsonl = None if jsonl is None else os.fspath(jsonl)
        self._handler_ids: list[int] = []
        self._targets: list[Any] = []
        self._jsonl: AppendFile | None = None  # written directly: a dataset, not a log
        self._bound = _LOGGER.bind(**{_SINK_ID: id(self)})
        self._events = self._bound.opt(depth=2)
        self._via = 0  # frames between the user and Tracker.log (monitor, experiment)
        self._open()
        self._finalizer = weakref.finalize(tracker, _collected, self._handler_ids, self._targets)

    @property
    def _tracker(self) -> Any:
        tracker = self._owner()
        if tracker is None:
            raise ReferenceError(
                "The Tracker this logger belongs to no longer exists, so there is nothing to "
                "log into: keep the Tracker in a variable (tracker = Tracker(...); "
                "tracker.logger.monitor(...))"
            )
        return tracker

    @property
    def has_sinks(self) -> bool:
        """True when anything is written anywhere: a folder, stdout or a JSONL file."""
        return bool(self.logs_path or self.logs_stdout or self.jsonl)

    def _open(self) -> None:
        _remove_stale()  # before any add(): a collected logger's handlers go first
        # Open every file first: an unwritable path fails here, at construction.
        text_targets: list[Any] = []
        jsonl_target = None
        try:
            if self.logs_path is not None:
                text_targets.append(RotatingLogFile(self.logs_path, self.logs_file_format))
            if self.logs_stdout:
                text_targets.append(StdoutSink())
            if self.jsonl is not None:
                jsonl_target = AppendFile(self.jsonl, "JSONL")
        except BaseException:
            for target in text_targets:
                target.close()
            raise
        mine = id(self)

        def ours(record: Mapping[str, Any]) -> bool:
            return record["extra"].get(_SINK_ID) == mine

        for target in text_targets:
            self._targets.append(target)
            self._handler_ids.append(
                _LOGGER.add(
                    _text_sink(target), level="DEBUG", format="{message}", filter=ours, colorize=False, catch=False
                )
            )
        self._text = bool(text_targets)
        if jsonl_target is not None:
            self._targets.append(jsonl_target)
        self._jsonl = jsonl_target
        self._closed = False

    def close(self) -> None:
        """Remove the handlers and close the files (the next event reopens them)."""
        _close_sinks(self._handler_ids, self._targets)
        self._targets.clear()
        self._jsonl = None
        self._text = False
        self._closed = True

    def _ready(self) -> None:
        if self._closed and self.has_sinks:
            self._open()

    # -- events -------------------------------------------------------------------
    def track(self, row: Mapping[str, Any]) -> None:
        """Write one stored row as a TRACKING event (called by ``Tracker.log``)."""
        if self._closed:
            self._ready()
        if self._jsonl is not None:
            self._jsonl.write((dumps(jsonl_event(row)) + "\n").encode("utf-8"))
        if self._text:
            events = self._events if not self._via else self._bound.opt(depth=2 + self._via)
            events.log(TRACKING, "", event=row)

    def track_many(self, keys: tuple[str, ...], values: list[tuple[Any, ...]]) -> None:
        """Write the rows of one ``log_batch`` as TRACKING events, one line each."""
        if self._closed:
            self._ready()
        rows = [dict(zip(keys, value)) for value in values]
        if self._jsonl is not None:  # one write: the batch's lines land together
            self._jsonl.write("".join([dumps(jsonl_event(row)) + "\n" for row in rows]).encode("utf-8"))
        if self._text:
            log = (self._events if not self._via else self._bound.opt(depth=2 + self._via)).log
            for row in rows:
                log(TRACKING, "", event=row)

    # -- messages -----------------------------------------------------------------
    def _message(self, level: str, message: Any, *args: Any, **kwargs: Any) -> None:
        if not self.has_sinks:
            return
        if self._closed:
            self._ready()
        if not self._text:
            return  # the JSONL file holds events only
        self._bound.opt(depth=2).log(level, str(message), *args, **kwargs)

    def debug(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._message("DEBUG", message, *args, **kwargs)

    def info(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._message("INFO", message, *args, **kwargs)

    def warning(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._message("WARNING", message, *args, **kwargs)

    def error(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._message("ERROR", message, *args, **kwargs)

    def monitor(self, data: Any) -> int:
        """Log a dict, or every row of a DataFrame, as events of this run; returns the
        number of rows. Each row gets the run's params, ``timestamp`` and ``track_id``,
        is stored like ``tracker.log`` (nothing with ``SKIP_INSERT``) and written to the
        sinks as one structured line.

        >>> tracker.logger.monitor(pd.DataFrame({"latency": [0.1, 0.2]}))  # doctest: +SKIP
        2
        """
        tracker = self._tracker
        records = None if isinstance(data, Mapping) else _records(data)
        if records is None and not isinstance(data, Mapping):
            raise TypeError(f"monitor() takes a dict or a DataFrame, got {type(data).__name__}: {data!r:.80}")
        self._via = 1  # the lines point at the caller of monitor()
        try:
            if records is None:
                tracker.log(data)
                return 1
            return tracker.log_batch(records)
        finally:
            self._via = 0

    def experiment(self, data: Mapping[Any, Any]) -> dict[str, Any]:
        """Log ``data`` (a model's evaluation and params) as one event of this run, and
        write a readable multi-line summary at INFO level. Returns the row as stored.

        >>> tracker.logger.experiment({"model": "rf", "accuracy": 0.91})  # doctest: +SKIP
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"experiment() takes a dict, got {type(data).__name__}: {data!r:.80}")
        self._via = 1
        try:
            row = self._tracker.log(data)
        finally:
            self._via = 0
        if self.has_sinks:
            width = max((len(k) for k in row), default=0)
            lines = [f"experiment {row.get('track_id', '')}"]
            lines += [f"{key:<{width}} : {value}" for key, value in row.items() if key != "track_id"]
            if self._closed:
                self._ready()
            if self._text:
                self._bound.opt(depth=1).log("INFO", "\n".join(lines))
        return row

    experiemnt = experiment  # the spelling in the original README


def _records(data: Any) -> list[dict[Any, Any]] | None:
    """The rows of a pandas or polars DataFrame as dicts, or None for anything else."""
    to_dict = getattr(data, "to_dict", None)
    if callable(to_dict) and hasattr(data, "columns"):  # pandas
        return data.to_dict(orient="records")
    to_dicts = getattr(data, "to_dicts", None)
    if callable(to_dicts):  # polars
        return to_dicts()
    if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
        return data
    return None


# -- reading back -----------------------------------------------------------------------
def _lines(path: str) -> Iterator[tuple[int, str, bool]]:
    """``(number, text, complete)`` of each line, streamed; the last may lack its newline."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            complete = raw.endswith(b"\n")
            yield number, raw.rstrip(b"\r\n").decode("utf-8", errors="replace"), complete


def _skip(path: str, number: int, complete: bool, why: str) -> None:
    kind = "a corrupt" if complete else "a truncated last"
    warnings.warn(f"{path}, line {number}: skipped {kind} line ({why})", stacklevel=4)


def _parse_object(text: str) -> dict[str, Any] | None:
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _frame(events: list[dict[str, Any]]) -> Any:
    names: dict[str, None] = {}
    for event in events:
        names.update(dict.fromkeys(event))
    order = list(names)
    decltypes = []
    for name in order:
        kinds = {sql_type(e.get(name)) for e in events} - {None}
        if kinds == {"INTEGER", "REAL"}:
            kinds = {"REAL"}
        decltypes.append(kinds.pop() if len(kinds) == 1 else "TEXT")  # none, or mixed
    rows = [tuple(e.get(n) for n in order) for e in events]
    if "BOOLEAN" in decltypes:  # the converter reads booleans as SQLite stores them, 1/0
        flags = [d == "BOOLEAN" for d in decltypes]
        rows = [tuple(int(v) if f and v is not None else v for v, f in zip(row, flags)) for row in rows]
    return to_backend(frame_from_rows(order, decltypes, rows))


def _order_key(name: str) -> tuple[str, str, float]:
    """Among files written in the same clock tick: a stem's rotated files by number, then
    the file of that stem being written."""
    numbered = _NUMBERED.match(name)
    if numbered:
        return numbered.group(1), numbered.group(3) or "", int(numbered.group(2))
    stem, suffix = os.path.splitext(name)
    return stem, suffix, float("inf")


def _is_dataset(path: str) -> bool:
    """A JSONL dataset kept in the log folder (its first line is a JSON object)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(1) == b"{"
    except OSError:
        return False


def log_files(path: str | os.PathLike[str]) -> list[str]:
    """A log file, or the files of a log folder, oldest first.

    A folder's files are every regular file whose name does not start with ``.`` (the
    lock file is hidden), by modification time, then by name (a stem's rotated files by
    number, before the one being written): rotated files come before the current one,
    yesterday's before today's. Files of earlier versions (``xetrack.log``) are read too;
    a JSONL dataset kept in the folder is passed over."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No logs at {path!r}")
    if not os.path.isdir(path):
        return [path]
    found = []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if not entry.is_file():
                    continue
                modified = entry.stat().st_mtime_ns
            except OSError:  # removed meanwhile
                continue
            if not _is_dataset(entry.path):
                found.append((modified, _order_key(entry.name), entry.name, entry.path))
    return [file for *_, file in sorted(found)]


def read_logs(path: str | os.PathLike[str]) -> Any:
    """Every TRACKING event of a log file, or of the files of a folder (see :func:`log_files`),
    one row each, as a DataFrame."""
    events: list[dict[str, Any]] = []
    for file in log_files(path):
        for number, text, complete in _lines(file):
            if not text.strip() or text[0].isspace():
                continue  # blank, or the continuation of a multi-line message
            header = _HEADER.match(text)
            if header is None:
                _skip(file, number, complete, "not a log line")
                continue
            if header.group(1) != TRACKING:
                continue  # info, warnings...: messages, not events
            _, sep, payload = text.partition(SEPARATOR)
            event = _parse_object(payload) if sep else None
            if event is None:
                _skip(file, number, complete, "the event is not a JSON object")
                continue
            events.append(event)
    return _frame(events)


def read_jsonl(path: str | os.PathLike[str]) -> Any:
    """Every line of a JSONL file, one row each, as a DataFrame."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No JSONL file at {path!r}")
    events: list[dict[str, Any]] = []
    for number, text, complete in _lines(path):
        if not text.strip():
            continue
        event = _parse_object(text)
        if event is None:
            _skip(path, number, complete, "not a JSON object")
            continue
        events.append(event)
    return _frame(events)


__all__ = ["TrackerLogger", "read_logs", "read_jsonl", "TRACKING", "ROTATION_BYTES", "DEFAULT_FILE_FORMAT"]
