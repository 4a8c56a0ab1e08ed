"""Cleaning up: the side rows of a deleted run, and garbage collection of stored bytes.

Deleting a run deletes its rows and its side rows (lifecycle, predictions, artifact
entries), never bytes: another run, a row of another table or a model version may point
at the same ones. ``gc`` removes stored objects and artifact bytes nothing points at any
more, and the chunks of uploads that died before they finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .store import features


def delete_run(engine: Any, table: str, track_id: str) -> None:
    """Forget a deleted run's side rows (lifecycle, predictions, artifact entries, tags, name).

    The bytes stay: another run may hold the same ones. ``gc`` removes what nothing
    points at any more.

    >>> delete_run(engine, "default", "fierce-pudu-1649")  # doctest: +SKIP
    """
    features(engine).gc.delete_run(engine, table, track_id)


@dataclass
class Garbage:
    """What ``gc`` removed (or, with ``dry_run``, would remove)."""

    assets: int = 0
    artifacts: int = 0
    bytes: int = 0
    hashes: list[str] | None = None
    file_bytes: int = 0  # how much smaller the file got (with vacuum; else 0)


def gc(engine: Any, dry_run: bool = False, vacuum: bool = False) -> Garbage:
    """Remove stored objects and artifact bytes that nothing points at any more: no row of
    any table, no artifact entry and no model version. One write transaction: writers
    wait meanwhile, and nothing logged concurrently can lose its bytes.

    Freed pages are reused by later writes; ``vacuum`` also gives them back to the file
    system (SQLite's VACUUM: it rewrites the file and needs as much free disk; on
    PostgreSQL, its VACUUM of the byte tables).

    >>> gc(engine, dry_run=True).bytes  # doctest: +SKIP
    73401929
    """
    store = features(engine).gc
    assets, stored, orphans = store.collect(engine, dry_run)
    result = Garbage(
        assets=len(assets),
        artifacts=len(stored),
        bytes=sum(assets.values()) + sum(stored.values()) + sum(orphans.values()),
        hashes=list(assets) + list(stored),
    )
    if vacuum and not dry_run:
        result.file_bytes = store.vacuum(engine)
    return result


__all__ = ["Garbage", "delete_run", "gc"]
