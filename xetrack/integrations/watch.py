"""How a callback finds what its framework does not hand it: the training function's
frame (:func:`calling_frame`), and the end of a training that stopped with an error in a
framework with no hook for errors (:func:`watch_unfinished`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .common import TrainingRun


def calling_frame(functions: tuple[Any, ...], limit: int = 10) -> Any:
    """The nearest frame among the caller's callers (``limit`` at most) that runs one of
    ``functions`` (decorated ones unwrapped), or None. How a callback reads what the
    framework's training function was given (its params, its number of rounds) when the
    framework does not hand it over."""
    import inspect
    import sys

    codes = {inspect.unwrap(function).__code__ for function in functions}
    frame: Any = sys._getframe(1)
    for _ in range(limit):
        if frame is None:
            return None
        if frame.f_code in codes:
            return frame
        frame = frame.f_back
    return None


# id(run) -> (run, the text of its failure when the error is not known)
_UNFINISHED: dict[int, tuple[TrainingRun, Any]] = {}
_AT_EXIT: list[bool] = []


def watch_unfinished(run: TrainingRun, training: Any, describe: Any) -> Any:
    """Mark the open ``run`` failed when its training stops without the framework saying
    so, as a training that raises does in frameworks that have no hook for errors.

    That is when ``training`` (an object of this training alone, such as its booster: the
    error drops it, success returns it) is garbage-collected while the run is open, which
    CPython does as soon as the error that stopped the training is handled; at the latest
    when the process exits, with the uncaught error Python keeps in ``sys.last_value``.
    With ``training`` None, only then. The error text is then ``describe()``, or that
    uncaught error's. Returns the call that stops watching, made when the run ends by the
    framework's own signal.
    """
    import atexit
    import weakref

    if not _AT_EXIT:  # after the run opened its store: runs before the store's own exit handlers
        atexit.register(_fail_unfinished_at_exit)
        _AT_EXIT.append(True)
    key = id(run)
    _UNFINISHED[key] = (run, describe)
    finalizer = None if training is None else weakref.finalize(training, _fail_unfinished, key, None)
    if finalizer is not None:
        finalizer.atexit = False  # the exit is _fail_unfinished_at_exit's, with the error

    def release() -> None:
        if finalizer is not None:
            finalizer.detach()
        _UNFINISHED.pop(key, None)

    return release


def _fail_unfinished(key: int, error: BaseException | None) -> None:
    entry = _UNFINISHED.pop(key, None)
    if entry is None or not entry[0].started:
        return
    run, describe = entry
    try:
        run.fail(error if error is not None else str(describe()))
    except Exception as exc:  # noqa: BLE001 - a finalizer has no caller to raise to
        import warnings

        warnings.warn(f"xetrack could not mark run {run.track_id!r} failed: {exc}", stacklevel=1)


def _fail_unfinished_at_exit() -> None:
    import sys

    error = getattr(sys, "last_value", None)
    for key in list(_UNFINISHED):
        _fail_unfinished(key, error if isinstance(error, BaseException) else None)


__all__ = ["calling_frame", "watch_unfinished"]
