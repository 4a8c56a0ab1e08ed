"""What a log line looks like: the ``TRACKING`` level, the text line a log file and stdout
get for a record, and the JSON object a JSONL file gets for an event.

A tracked event is one text line at the custom level ``TRACKING``::

    2026-11-22 21:46:55.290 | TRACKING | __main__:<module>:3!📁!{"accuracy": 0.9, "timestamp": "...", "track_id": "..."}

and one JSON object in a JSONL file: the row's keys at the top level, plus ``level``, an
ISO-8601 ``timestamp`` with timezone, and ``track_id`` last. A message (``info``,
``warning``...) is a line ``<time> | <LEVEL> | <where> - <text>``, its continuation lines
indented. xetrack.log_reading parses both back.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

TRACKING = "TRACKING"
TRACKING_NO = 22  # between INFO (20) and SUCCESS (25)
SEPARATOR = "!📁!"
#: The start of every record's text line, its time and level (continuation lines are
#: indented, so they never match).
LINE_HEADER = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| (\w+) *\| ")


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
        return f"{when} | {TRACKING} | {_location(record)}{SEPARATOR}{dumps(row)}\n".encode()
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
