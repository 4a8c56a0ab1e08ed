"""What a copy did (:class:`CopyResult`), and the few names every kind of copy shares.

Every module of :mod:`xetrack.copy` imports this one and none imports the package's
``__init__`` (the dispatcher), so the copy modules form no import circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..schema import TIMESTAMP, TRACK_ID

#: The CLI shows a progress bar when a copy reads more rows than this.
PROGRESS_THRESHOLD = 100_000

#: Called as ``progress(rows_read, rows_total)`` after every batch.
Progress = Callable[[int, int], None]


@dataclass
class CopyResult:
    """What a copy did: rows written, rows TARGET already had, and what else came along."""

    rows: int = 0
    skipped: int = 0
    assets: int = 0
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows written
    skipped_tables: list[str] = field(default_factory=list)  # no track_id/timestamp columns
    runs: int = 0  # xetrack_runs rows added, or replaced (running -> finished/failed/killed)
    predictions: int = 0  # xetrack_predictions rows added
    artifacts: int = 0  # artifact entries added
    blobs: int = 0  # artifact byte strings stored (each once, however many entries share it)
    models: int = 0  # model versions added to the registry
    aliases: int = 0  # model aliases set
    left_out: int = 0  # artifact entries and model versions whose bytes TARGET lacks


def skipped_message(table: str) -> str:
    """Why ``table`` is not copied: a copy tells rows apart by track_id and timestamp."""
    return f"Table {table!r} was not copied: it has no {TRACK_ID} and {TIMESTAMP} columns to tell its rows apart"


__all__ = ["PROGRESS_THRESHOLD", "CopyResult", "Progress", "skipped_message"]
