"""Structured logs through loguru: a rotating file, stdout and a JSONL dataset, and reading them back.

Every tracked event becomes one line at the custom level ``TRACKING``::

    2026-11-22 21:46:55.290 | TRACKING | __main__:<module>:3!📁!{"accuracy": 0.9, "timestamp": "...", "track_id": "..."}

and, with ``jsonl=``, one JSON object per event (keys at the top level, plus ``level``,
an ISO-8601 ``timestamp`` with timezone, and ``track_id``).

This module is where users and tests import from; the work is done in:

- xetrack.log_lines: the ``TRACKING`` level, the text line and the JSONL object;
- xetrack.log_sinks: writing, by many processes at once: ``AppendFile``,
  ``RotatingLogFile`` (rotation, ``ROTATION_BYTES``, the ``logs_file_format`` file-name
  patterns) and ``StdoutSink``;
- xetrack.tracker_logger: ``TrackerLogger``, the object behind ``tracker.logger``;
- xetrack.log_reading: ``read_logs``, ``read_jsonl`` and ``log_files``.

The constants below are copies: the module named above reads its own, so setting one
here raises an AttributeError that names the module to set it on.
"""

from __future__ import annotations

import sys
import types
from typing import Any

# Every public name xetrack.logs had before the split, re-exported.
from . import log_lines, log_sinks
from .log_lines import (  # noqa: F401
    SEPARATOR,
    TRACKING,
    TRACKING_NO,
    dumps,
    iso_timestamp,
    jsonl_event,
    log_line,
)
from .log_reading import log_files, read_jsonl, read_logs
from .log_sinks import (  # noqa: F401
    DEFAULT_FILE_FORMAT,
    LOCK_NAME,
    ROTATION_BYTES,
    TIME_IN_FILE_NAME,
    AppendFile,
    RotatingLogFile,
    StdoutSink,
    compile_file_name,
)
from .tracker_logger import TrackerLogger

#: The re-exported constants, by the module that reads them.
_READ_IN = {
    **dict.fromkeys(("TRACKING", "TRACKING_NO", "SEPARATOR"), log_lines.__name__),
    **dict.fromkeys(("DEFAULT_FILE_FORMAT", "TIME_IN_FILE_NAME", "LOCK_NAME", "ROTATION_BYTES"), log_sinks.__name__),
}


class _ReExports(types.ModuleType):
    """``xetrack.logs``, refusing to set a re-exported constant: the change would reach
    nothing (``logs.ROTATION_BYTES = 1000``, or a test's monkeypatch of it, would pass
    without effect)."""

    def __setattr__(self, name: str, value: Any) -> None:
        home = _READ_IN.get(name)
        if home is not None:
            raise AttributeError(
                f"xetrack.logs.{name} is a copy that nothing reads: set {home}.{name}, the one {home} reads"
            )
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _ReExports

__all__ = [
    "TrackerLogger",
    "read_logs",
    "read_jsonl",
    "log_files",
    "TRACKING",
    "ROTATION_BYTES",
    "DEFAULT_FILE_FORMAT",
]
