"""The process's runs: the global one (``wandb.run``), and every unfinished one, ended
when the interpreter exits, as W&B does.

An uncaught exception ends the process through ``sys.excepthook`` and then the exit
handlers: the hook installed here (chained to the one before it) keeps the exception, and
the exit handler marks the unfinished runs ``failed`` with it (``killed`` for Ctrl-C);
without one they are ``finished``. The interpreter keeps an uncaught exception in
``sys.last_value`` too, which is read when another hook replaced this one. In an
interactive session an error does not end the process, so none is kept there.
"""

from __future__ import annotations

import atexit
import sys
from types import TracebackType
from typing import Any, Protocol


class Ending(Protocol):
    """What the exit handler calls on a run (``xetrack.wandb.runs.Run``)."""

    def end_at_exit(self, error: BaseException | None) -> None: ...


_current: Any = None
_unfinished: list[Ending] = []
_uncaught: BaseException | None = None
_installed = False
_previous_hook: Any = None


def current() -> Any:
    """The global run (``wandb.run``), or None."""
    return _current


def started(run: Ending, make_current: bool) -> None:
    """A new run: ended at exit unless finished before; the global one if ``make_current``."""
    global _current
    _install()
    _unfinished.append(run)
    if make_current:
        _current = run


def ended(run: Ending) -> None:
    """A run finished: no longer ended at exit, no longer the global one."""
    global _current
    if run in _unfinished:
        _unfinished.remove(run)
    if _current is run:
        _current = None


def _interactive() -> bool:
    return hasattr(sys, "ps1") or bool(sys.flags.interactive)


def _hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    global _uncaught
    if not _interactive():
        _uncaught = error
    (_previous_hook or sys.__excepthook__)(kind, error, tb)


def _at_exit() -> None:
    error = _uncaught
    if error is None and not _interactive():
        last = getattr(sys, "last_value", None)
        error = last if isinstance(last, BaseException) else None
    for run in list(_unfinished):
        try:
            run.end_at_exit(error)
        except Exception as exc:  # noqa: BLE001 - the other runs still get ended
            print(f"xetrack.wandb: could not end a run at exit: {exc}", file=sys.stderr)
    _unfinished.clear()


def _install() -> None:
    # Registered when the first run starts, after the store's own exit handlers (atexit
    # runs the last registered first), so the runs end while their files are open.
    global _installed, _previous_hook
    if _installed:
        return
    _previous_hook = sys.excepthook
    sys.excepthook = _hook
    atexit.register(_at_exit)
    _installed = True


__all__ = ["Ending", "current", "started", "ended"]
