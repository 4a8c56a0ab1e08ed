"""Where a store's bytes are: per table, per run, in stored objects and artifacts
(``xt du``), and what pruning some runs would free (:mod:`xetrack.prune`).

How bytes are counted:

- A table's bytes are its pages (SQLite's ``dbstat``: every page of the table and of its
  indexes; PostgreSQL's ``pg_total_relation_size``). Where SQLite was built without
  ``dbstat`` they are estimated from the values' sizes, and the report says so.
- A run's bytes are its share of those pages, by the size of its values: rows of the
  experiment table, and its side rows (lifecycle, predictions, artifact entries, tags,
  name), each against its own table's pages.
- A stored object (a logged asset) or an artifact's bytes belong to a run when every row,
  artifact entry and model version pointing at them is that run's (``own``); bytes
  nothing points at are what ``gc`` removes.

>>> report(open_engine("exp.db"))["reclaimable"]  # doctest: +SKIP
{'free_bytes': 8192, 'unreferenced_bytes': 301, 'bytes': 8493}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from .store import features
from .store.features import PruneSQL
from .store.tables import RUN_SIDE_TABLES, SPILL

#: (kind, table, track_id) of what points at a stored hash; kind is row, artifact or model.
Pointer = tuple[str, "str | None", "str | None"]


def sizes_of(engine: Any) -> PruneSQL:
    """The engine's sizing and pruning SQL (:class:`xetrack.store.features.PruneSQL`)."""
    store = features(engine).prune
    if store is None:  # pragma: no cover - every engine package has one
        raise NotImplementedError(f"{type(engine).__name__} cannot size or prune runs")
    return store


def run_bytes(
    engine: Any, table: str, sizes: dict[str, int] | None = None, exact: bool = True
) -> tuple[dict[str, list[int]], bool]:
    """track_id -> [rows, row bytes, side-row bytes] of every run of ``table`` (a run with
    side rows only has 0 rows), and whether the tables' bytes are exact. A run's row bytes
    include its values of keys past the table's columns (their share of the spill)."""
    store = sizes_of(engine)
    names = [table, *RUN_SIDE_TABLES, *([SPILL] if engine.spilled(table) else [])]
    if sizes is None:
        sizes, exact = store.object_bytes(engine, names)
    fixed = store.fixed_bytes(engine, names) if exact else {}
    out: dict[str, list[int]] = {}
    for name in names:
        per, total = store.run_payloads(engine, name, table)
        whole = max(0, sizes.get(name, 0) - fixed.get(name, 0))  # the root pages stay
        for track_id, (rows, payload) in per.items():
            share = round(whole * payload / total) if exact and total else payload
            entry = out.setdefault(track_id, [0, 0, 0])
            if name == table:
                entry[0], entry[1] = rows, entry[1] + share
            elif name == SPILL:
                entry[1] += share
            else:
                entry[2] += share
    return out, exact


def references(engine: Any) -> tuple[dict[str, tuple[str, int]], dict[str, set[Pointer]]]:
    """(hash -> (kind, bytes) of everything stored, hash -> what points at it)."""
    store = sizes_of(engine)
    items = {key: (kind, size) for key, kind, size in store.stored(engine)}
    pointers: dict[str, set[Pointer]] = defaultdict(set)
    for key, kind, table, track_id in store.referents(engine, list(items)):
        pointers[key].add((kind, table, track_id))
    return items, dict(pointers)


def owned(
    items: dict[str, tuple[str, int]], pointers: dict[str, set[Pointer]], runs: Iterable[tuple[str, str]]
) -> dict[str, tuple[int, set[tuple[str, str]]]]:
    """hash -> (bytes, the runs pointing at it) of the stored things that only ``runs``
    ((table, track_id) pairs) point at: what deleting them all lets ``gc`` remove. A
    model version keeps what it points at whatever run it came from."""
    wanted = set(runs)
    out: dict[str, tuple[int, set[tuple[str, str]]]] = {}
    for key, (_, size) in items.items():
        found = pointers.get(key)
        if not found or any(kind == "model" for kind, _, _ in found):
            continue
        holders = {(t, r) for _, t, r in found if t is not None and r is not None}
        if len(holders) == len({(t, r) for _, t, r in found}) and holders <= wanted:
            out[key] = (size, holders)
    return out


def unreferenced(items: dict[str, tuple[str, int]], pointers: dict[str, set[Pointer]]) -> dict[str, int]:
    """hash -> bytes of what nothing points at (``gc`` removes it, but chunks still uploading)."""
    return {key: size for key, (_, size) in items.items() if not pointers.get(key)}


def report(engine: Any, top: int = 10) -> dict[str, Any]:
    """What ``xt du`` prints: the store's bytes, per table, the ``top`` runs holding the
    most, stored objects and artifacts, and what ``gc --vacuum`` would give back."""
    store = sizes_of(engine)
    total, free, page = store.space(engine)
    sizes, exact = store.object_bytes(engine)
    items, pointers = references(engine)
    experiment = engine.tables()
    tables, runs = [], []
    for table in experiment:
        per, _ = run_bytes(engine, table, sizes, exact)
        spilled = _spill_share(engine, table, sizes, exact)
        held: dict[str, int] = defaultdict(int)
        own: dict[str, int] = defaultdict(int)
        for key, found in pointers.items():
            size = items[key][1]
            mine = {r for _, t, r in found if t == table and r is not None}
            for run in mine:
                held[run] += size
            if len(mine) == 1 and all(t == table and k != "model" for k, t, _ in found):
                own[next(iter(mine))] += size
        tables.append(
            {
                "table": table,
                "runs": sum(1 for v in per.values() if v[0]),
                "rows": sum(v[0] for v in per.values()),
                "row_bytes": sizes.get(table, 0) + spilled,
                "side_bytes": sum(v[2] for v in per.values()),
            }
        )
        for track_id, (rows, row_b, side_b) in per.items():
            runs.append(
                {
                    "table": table,
                    "track_id": track_id,
                    "rows": rows,
                    "row_bytes": row_b,
                    "side_bytes": side_b,
                    "stored_bytes": held.get(track_id, 0),
                    "own_bytes": own.get(track_id, 0),
                    "bytes": row_b + side_b + own.get(track_id, 0),
                }
            )
    runs.sort(key=lambda r: (-r["bytes"], r["table"], r["track_id"]))
    loose = unreferenced(items, pointers)
    return {
        "bytes": total,
        "page_size": page,
        "exact": exact,
        "tables": tables,
        # the spill's pages are counted in its tables' row bytes
        "internal": [{"table": n, "bytes": b} for n, b in sorted(sizes.items()) if n not in {*experiment, SPILL}],
        "runs": runs[: max(0, int(top))],
        "stored": [_kind(kind, items, pointers, loose) for kind in ("asset", "artifact", "orphan")],
        "reclaimable": {
            "free_bytes": free,
            "unreferenced_bytes": sum(loose.values()),
            "bytes": free + sum(loose.values()),
        },
    }


def _spill_share(engine: Any, table: str, sizes: dict[str, int], exact: bool) -> int:
    """The bytes of the spill that hold ``table``'s values (keys past its columns): its
    share of the spill's pages, by the size of its spill rows."""
    if not engine.spilled(table):
        return 0
    mine, total = sizes_of(engine).run_payloads(engine, SPILL, table)
    payload = sum(b for _, b in mine.values())
    return round(sizes.get(SPILL, 0) * payload / total) if exact and total else payload


def _kind(
    kind: str, items: dict[str, tuple[str, int]], pointers: dict[str, set[Pointer]], loose: dict[str, int]
) -> dict[str, Any]:
    keys = [k for k, (found, _) in items.items() if found == kind]
    return {
        "kind": {"asset": "assets", "artifact": "artifacts", "orphan": "unfinished uploads"}[kind],
        "objects": len(keys),
        "bytes": sum(items[k][1] for k in keys),
        "references": sum(len(pointers.get(k, ())) for k in keys),
        "unreferenced": sum(1 for k in keys if k in loose),
        "unreferenced_bytes": sum(loose[k] for k in keys if k in loose),
    }


__all__ = ["sizes_of", "run_bytes", "references", "owned", "unreferenced", "report"]
