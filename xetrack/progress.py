"""A progress bar on stderr for long work that has no other output (a first run-summary
build over millions of rows). A leaf module: the store imports it as it imports
:mod:`xetrack.schema`.

>>> bar = Progress(100, "summarizing default")
>>> bar.update(50); bar.close()  # quiet: shown only once the work took PROGRESS_AFTER s
"""

from __future__ import annotations

import sys
import time

#: A first build taking longer than this shows a progress bar on stderr.
PROGRESS_AFTER = 2.0


class Progress:
    """A progress bar on stderr, shown only once the work has taken ``PROGRESS_AFTER`` s."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.start, self.shown = max(total, 1), label, time.perf_counter(), False

    def update(self, done: int) -> None:
        if not self.shown and time.perf_counter() - self.start < PROGRESS_AFTER:
            return
        self.shown = True
        frac = min(done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {frac * 100:5.1f}%")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
