"""The run summary: what ``runs()``, ``search()``, ``compare()`` and the param/metric split
need, kept up to date incrementally in side tables of the same file.

- ``xetrack_summary_runs``: per (table, track_id): events, first and last timestamp;
- ``xetrack_summary_columns``: per (table, track_id, column) with a non-NULL value: count,
  min, max, total, and the first and last non-NULL values with their rowids;
- ``xetrack_summary_state``: per table, the watermark (the largest rowid folded in), the
  columns folded, and ``gen``, bumped whenever the summary of the table changes;
- ``xetrack_dirty``: runs whose rows below the watermark changed. Triggers ``AFTER
  UPDATE`` and ``AFTER DELETE`` on each summarized table fill it for every writer in
  every process, raw SQL included. There is no INSERT trigger: new rows are the rows
  past the watermark, so ``log()`` pays nothing.

Brought up to date on read (:func:`refresh`), under the write lock: the rows past the
watermark are folded in with ``GROUP BY track_id`` over rowid chunks (bounded memory),
the dirty runs are recomputed from the table through its ``track_id`` index, and the
watermark moves. A summary that cannot be trusted (the table was dropped or recreated,
so its triggers are gone; the largest rowid went below the watermark; a folded column
went away; a new column has a default) is rebuilt, never served.

The SQL of all this is in :mod:`xetrack.store.sqlite.summary`, the ``summary`` feature
of :func:`xetrack.store.features` (run queries always read a SQLite file; a PostgreSQL
store is read through an in-memory SQLite copy, which keeps no summary). This module
keeps what does not depend on the engine: the switch, the first-ask rule, and the
per-process cache of frames that :mod:`xetrack.run_queries` keeps.

>>> from xetrack import summary
>>> summary.SUMMARY_STATE
'xetrack_summary_state'
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from .progress import PROGRESS_AFTER, Progress
from .store import features
from .store.tables import SUMMARY_COLUMNS, SUMMARY_DIRTY, SUMMARY_RUNS, SUMMARY_STATE

#: Internal switch: answer runs()/search()/compare()/aggregate() from the summary.
ENABLED = True


def refresh(engine: Any, table: str, persist: bool = True, delta: list[Any] | None = None) -> bool:
    """Bring ``table``'s summary up to date; False when it cannot be used (the plain SQL
    answers): a read-only file, a table without ``track_id``, a NULL track_id, or the
    write lock held by another process for longer than ``LOCK_WAIT_MS``. Without
    ``persist`` (``xt`` reads leave the file as it is) only an up-to-date summary is used."""
    if not ENABLED:
        return False
    kept = features(engine).summary
    if kept is None:  # an engine that keeps no run summary
        return False

    def committed(step: list[Any]) -> None:
        if delta is not None:
            delta.extend(step)
        _record(engine, table, step)

    return kept.refresh(engine, table, persist, lambda built: _first_ask(engine, table, built), committed)


#: (realpath, table) that this process answered once with the plain SQL, no summary built.
_ASKED: set[tuple[str, str]] = set()


def _first_ask(engine: Any, table: str, built: Callable[[], bool]) -> bool:
    """True for the first call of this process on a table that has no summary yet
    (``built()`` says whether the file holds one).

    Building the summary costs several times one plain GROUP BY, which a script that asks
    once would pay for nothing: the first call answers with the plain SQL, and the second
    one (a dashboard, a sweep asking after each trial) builds the summary that serves
    every later call, in this process and in others. A summary that exists is always
    brought up to date and used.
    """
    key = (os.path.realpath(str(engine.path)), table)
    if key in _ASKED:
        return False
    if built():
        return False
    _ASKED.add(key)
    return True


# ------------------------------------------------------------- the per-process cache
#: (realpath, table, call) -> (token, gen, frame, meta). Shared by every Reader of the file.
_FRAMES: dict[tuple[Any, ...], tuple[Any, Any, Any, Any]] = {}
_MAX_FRAMES = 64


def cache_key(engine: Any, table: str, *call: Any) -> tuple[Any, ...] | None:
    if engine.path is None:
        return None
    return (os.path.realpath(engine.path), table, *call)


#: (realpath, table) -> the latest summary changes this process made (see :func:`update`'s
#: delta): a frame cached at an earlier gen can be brought forward by the runs they touched.
_DELTAS: dict[tuple[Any, ...], list[tuple[Any, Any, set[Any], bool]]] = {}
_MAX_DELTAS = 16


def _record(engine: Any, table: str, step: list[Any]) -> None:
    key = cache_key(engine, table)
    if key is None or not step:
        return
    log = _DELTAS.setdefault(key, [])
    for change in step:
        if not change[3]:  # a rebuild or a recomputation: nothing before it chains on
            log.clear()
        log.append(change)
    del log[:-_MAX_DELTAS]
    if len(_DELTAS) > _MAX_FRAMES:
        _DELTAS.pop(next(iter(_DELTAS)))


def changes_since(engine: Any, table: str, gen: Any, now: Any) -> set[Any] | None:
    """The runs that this process's summary changes from ``gen`` to ``now`` touched, when
    those were all rows appended to the same columns; else None."""
    key = cache_key(engine, table)
    if key is None or gen is None or now is None:
        return None
    touched: set[Any] = set()
    for before, after, runs, appended in _DELTAS.get(key, []):
        if before == gen and appended:
            touched |= runs
            gen = after
    return touched if gen == now and touched else None


_LOCKS: dict[tuple[Any, ...], threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def one_at_a_time(key: Any) -> threading.Lock:
    """The lock under which one thread computes what ``key`` caches while the others wait
    for it and then find it cached (a page asks for the same runs several times at once;
    a burst of requests would otherwise compute the same frame on every thread)."""
    with _LOCKS_LOCK:
        lock = _LOCKS.get(key)
        if lock is None:
            if len(_LOCKS) >= 4 * _MAX_FRAMES:
                _LOCKS.clear()  # held ones stay held by their threads; only sharing is lost
            lock = _LOCKS[key] = threading.Lock()
        return lock


#: key -> (pids, which of them were alive): the processes of this host whose runs the
#: cached frame calls running (or dead). A frame is served only while each is as it was.
_LIVES: dict[tuple[Any, ...], tuple[tuple[int, ...], tuple[bool, ...]]] = {}
#: Guards the changes of the two caches above (reads take a dict's own atomic get).
_CACHE_LOCK = threading.Lock()


def _alive(pids: tuple[int, ...]) -> tuple[bool, ...]:
    import psutil

    return tuple(psutil.pid_exists(p) for p in pids)


def _still(key: Any) -> bool:
    """True while every process a cached frame's statuses depend on is as alive as it
    was: a running run turns dead when its process ends, with no write to the file."""
    lives = _LIVES.get(key)
    if lives is None or not lives[0] or _alive(lives[0]) == lives[1]:
        return True
    with _CACHE_LOCK:
        _FRAMES.pop(key, None)
        _LIVES.pop(key, None)
    return False


def entry(key: Any) -> Any:
    """(token, gen, frame, meta) cached for ``key``, or None."""
    found = _FRAMES.get(key)
    return found if found is not None and _still(key) else None


def cached(key: Any, tok: Any, gen: Any = None) -> Any:
    """The cached frame for ``key`` when ``tok`` (or, failing that, a non-None ``gen``)
    still matches and the processes of its running runs are as they were; else None."""
    found = entry(key)
    if found is None:
        return None
    if found[0] == tok or (gen is not None and found[1] == gen):
        return found[2]
    return None


def lives(pids: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """(pids, which are alive now): taken before the read whose statuses depend on them,
    so that a process that ends during the read makes the cached frame stale, not right."""
    return pids, _alive(pids)


def remember(
    key: Any,
    tok: Any,
    gen: Any,
    frame: Any,
    meta: Any = None,
    alive: tuple[tuple[int, ...], tuple[bool, ...]] | None = None,
) -> None:
    """Cache ``frame`` (and what it was built from, ``meta``) for ``key``; ``alive``
    (from :func:`lives`, before the read): the processes whose life the frame's running
    and dead statuses depend on."""
    with _CACHE_LOCK:  # request threads of the dashboard remember at once
        before = _FRAMES.get(key)
        if before is not None and before[2] is frame:  # the same frame under a newer token
            meta = before[3] if meta is None else meta  # what it was built from, as before
            if alive is None:
                alive = _LIVES.get(key)  # and the same processes
        _FRAMES.pop(key, None)
        while len(_FRAMES) >= _MAX_FRAMES:
            gone = next(iter(_FRAMES))
            _FRAMES.pop(gone, None)
            _LIVES.pop(gone, None)
        _FRAMES[key] = (tok, gen, frame, meta)
        if alive is not None and alive[0]:
            _LIVES[key] = alive
        else:
            _LIVES.pop(key, None)


__all__ = [
    "SUMMARY_COLUMNS",
    "SUMMARY_DIRTY",
    "ENABLED",
    "PROGRESS_AFTER",
    "SUMMARY_RUNS",
    "SUMMARY_STATE",
    "Progress",
    "cache_key",
    "cached",
    "changes_since",
    "entry",
    "lives",
    "one_at_a_time",
    "refresh",
    "remember",
]
