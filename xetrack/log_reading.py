"""Reading logs back: the ``TRACKING`` events of log files (:func:`read_logs`, the files
of a folder in the order :func:`log_files` gives) and the objects of a JSONL file
(:func:`read_jsonl`), each as a DataFrame typed as the rows were logged.

A line that cannot be read (a torn last line, text that is not a log line) is skipped
with a warning; messages (``info``, ``warning``...) are passed over.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

from .frames import frame_from_rows, to_backend
from .log_lines import LINE_HEADER, SEPARATOR, TRACKING
from .schema import sql_type

#: A rotated log file (see RotatingLogFile): stem . number (6 digits or more) suffix.
_NUMBERED = re.compile(r"^(.+)\.(\d{6,})(\.[^.]*)?$")


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
    decltypes: list[str] = []
    for name in order:
        kinds = {kind for e in events if (kind := sql_type(e.get(name))) is not None}
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
            header = LINE_HEADER.match(text)
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
