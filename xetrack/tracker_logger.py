"""``tracker.logger``: a Tracker's events and messages, through a loguru logger of
xetrack's own, to the sinks of xetrack.log_sinks in the formats of xetrack.log_lines.

A stored row is a ``TRACKING`` event (:meth:`TrackerLogger.track`, called by
``Tracker.log`` and ``log_batch``); ``info``, ``warning``... are messages, written to the
text sinks only. The JSONL file is written directly (a dataset, not a log).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any

from loguru import logger as _global_logger

from .log_lines import TRACKING, TRACKING_NO, dumps, jsonl_event, log_line
from .log_sinks import (
    DEFAULT_FILE_FORMAT,
    AppendFile,
    RotatingLogFile,
    StdoutSink,
    compile_file_name,
)

#: The key of the ``extra`` every record of a TrackerLogger carries: its id, which its
#: handlers filter on.
_SINK_ID = "xetrack_sink"


def _private_logger() -> Any:
    """A loguru logger with a core of its own: the user's handlers (and loguru's default
    stderr handler) never see xetrack's events, and ours never see theirs."""
    own: Any
    try:
        from loguru._logger import Core, Logger

        own = Logger(Core(), None, 0, False, False, False, False, True, [], {})
    except Exception:  # noqa: BLE001  # pragma: no cover - a loguru whose internals changed
        # Shared core: our handlers filter on the sink id, and the level is added once.
        own = _global_logger
    try:
        own.level(TRACKING)
    except ValueError:
        own.level(TRACKING, no=TRACKING_NO, color="<cyan><bold>", icon="📁")
    return own


_LOGGER = _private_logger()


def _text_sink(target: Any) -> Any:
    def sink(message: Any) -> None:
        target.write(log_line(message.record))

    return sink


# -- handlers of collected trackers ------------------------------------------------------
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


# -- the logger object --------------------------------------------------------------------
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
        if logs_file_format is not None:  # checked even without logs_path: it fails at construction
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
