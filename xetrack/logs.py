"""Structured logs through loguru: a rotating file, stdout and a JSONL dataset, and reading them back.

Every tracked event becomes one line at the custom level ``TRACKING``::

    2026-11-22 21:46:55.290 | TRACKING | __main__:<module>:3!📁!{"accuracy": 0.9, "timestamp": "...", "track_id": "..."}

and, with ``jsonl=``, one JSON object per event (keys at the top level, plus ``level``,
an ISO-8601 ``timestamp`` with timezone, and ``track_id``).

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
import sys
import warnings
import weakref
from datetime import datetime
from typing import Any, Iterator, Mapping

from loguru import logger as _global_logger

from .frames import frame_from_rows, to_backend
from .schema import sql_type

TRACKING = "TRACKING"
TRACKING_NO = 22  # between INFO (20) and SUCCESS (25)
SEPARATOR = "!📁!"
LOG_NAME = "xetrack.log"  # the file being written; rotated ones are xetrack.000001.log, ...
LOCK_NAME = ".xetrack.log.lock"
#: A log file is rotated once it passes this size (bytes).
ROTATION_BYTES = 50 * 1024 * 1024

_ROTATED = re.compile(r"^xetrack\.(\d+)\.log$")
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


class RotatingLogFile(AppendFile):
    """``folder/xetrack.log``, renamed to ``xetrack.<n>.log`` once it passes ``ROTATION_BYTES``."""

    def __init__(self, folder: str) -> None:
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise NotADirectoryError(f"logs_path {folder!r} is a file: logs_path names a folder")
        self.folder = folder
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise _unwritable(folder, "logs", exc) from None
        super().__init__(os.path.join(folder, LOG_NAME), "logs")
        self.lock_path = os.path.join(folder, LOCK_NAME)

    def write(self, data: bytes) -> None:
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
                if mine.st_size >= ROTATION_BYTES:  # still ours to rotate
                    os.rename(self.path, os.path.join(self.folder, f"xetrack.{_next_number(self.folder):06d}.log"))
                else:
                    return
            # another process rotated (or we just did): write to the new file
            fd = _open_append(self.path)
            os.close(self.fd)
            self.fd = fd
        finally:
            os.close(lock)  # releases the flock


def _next_number(folder: str) -> int:
    numbers = [int(m.group(1)) for m in map(_ROTATED.match, os.listdir(folder)) if m]
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


_RECORD_FIELDS = frozenset(
    "elapsed exception extra file function level line message module name process thread time".split()
)


def check_file_format(line_format: Any) -> None:
    """Refuse, at construction, a ``logs_file_format`` loguru could not write a line with."""
    import string

    if not isinstance(line_format, str):
        raise TypeError(f"logs_file_format must be a loguru format str, got {line_format!r}")
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(line_format) if field is not None]
    except ValueError as exc:
        raise ValueError(f"logs_file_format {line_format!r} is not a format string: {exc}") from None
    for field in fields:
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        if root not in _RECORD_FIELDS:
            raise ValueError(
                f"logs_file_format {line_format!r} names {{{field}}}: use loguru's record fields, "
                f"such as {{time}}, {{level}}, {{name}}, {{line}} and {{message}} (the event as JSON)"
            )
    try:  # loguru's own check of the color markup
        _LOGGER.remove(_LOGGER.add(lambda _: None, format=line_format, filter=lambda _: False))
    except ValueError as exc:
        raise ValueError(f"logs_file_format {line_format!r} is not a loguru format: {exc}") from None


def _formatted_sink(target: Any) -> Any:
    """A sink that writes the line loguru formatted with the user's format string."""

    def sink(message: Any) -> None:
        target.write(str(message).encode("utf-8"))

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
        if logs_file_format is not None:
            check_file_format(logs_file_format)
        self._owner = weakref.ref(tracker)  # the Tracker owns its logger, not the other way
        self.logs_path = None if logs_path is None else os.fspath(logs_path)
        # With a format of the user's, an event's {message} is its row as JSON.
        self.logs_file_format = logs_file_format if logs_path is not None else None
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
                text_targets.append(RotatingLogFile(self.logs_path))
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
            if self.logs_file_format is not None and isinstance(target, RotatingLogFile):
                sink, line_format = _formatted_sink(target), self.logs_file_format
            else:
                sink, line_format = _text_sink(target), "{message}"
            self._handler_ids.append(
                _LOGGER.add(sink, level="DEBUG", format=line_format, filter=ours, colorize=False, catch=False)
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
            if self.logs_file_format is None:
                events.log(TRACKING, "", event=row)
            else:
                events.log(TRACKING, "{}", dumps(row), event=row)

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
                if self.logs_file_format is None:
                    log(TRACKING, "", event=row)
                else:
                    log(TRACKING, "{}", dumps(row), event=row)

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


def log_files(path: str | os.PathLike[str]) -> list[str]:
    """A log file, or the files of a log folder: rotated ones oldest first, then the current."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No logs at {path!r}")
    if not os.path.isdir(path):
        return [path]
    rotated = sorted((int(m.group(1)), m.group(0)) for m in map(_ROTATED.match, os.listdir(path)) if m)
    files = [os.path.join(path, name) for _, name in rotated]
    current = os.path.join(path, LOG_NAME)
    if os.path.exists(current):
        files.append(current)
    return files


def read_logs(path: str | os.PathLike[str]) -> Any:
    """Every TRACKING event of a log file or folder, one row each, as a DataFrame."""
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


__all__ = ["TrackerLogger", "read_logs", "read_jsonl", "TRACKING", "ROTATION_BYTES"]
