"""Pruning: deleting the runs a sweep leaves behind (``Reader.prune``, ``xt prune``).

Which runs go: those of the table that match every rule given, ``older_than`` (the run's
end, else its last row, is older than now minus that) and ``status`` (as ``runs()``
reports it: ``dead`` is a run whose process died), less the runs kept: the ``keep_best``
best by metric ``by`` (ties with the last one kept too), those with a tag of
``keep_tags``, those a registered model version came from (unless ``force``), and those
running in a live process (unless ``status`` names ``running``). With ``keep_best``
alone, every run but the best goes. With no rule at all, nothing does: an error.

Each run goes in one transaction of its own, rows and side rows together, so that a
process killed mid-prune leaves every run whole or gone. Before deleting, the run is
found again inside that transaction: one written since it was chosen (new rows, or
started again) is left whole and reported as skipped. Then ``gc`` removes the stored
objects and artifact bytes nothing points at any more.

>>> prune(engine, "default", runs, status=["failed", "dead"], dry_run=True).track_ids  # doctest: +SKIP
['fierce-pudu-1649']
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .garbage import Garbage, gc
from .runs import STATUSES
from .schema import TRACK_ID
from .store.base import close_matches, column_not_found
from .usage import owned, references, run_bytes, sizes_of

#: The statuses a rule may name: those runs() reports.
KNOWN_STATUSES = (*STATUSES, "dead")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw])\s*")


@dataclass
class Pruned:
    """What ``prune`` deleted (or, with ``dry_run``, would delete).

    ``runs``: the runs chosen (track_id, name, status, end, rows, bytes, why) before
    anything was deleted; ``track_ids``: those deleted (with ``dry_run``: to delete);
    ``skipped``: chosen but written since, so left whole; ``protected``: matched but kept
    because a model version came from them (``force`` prunes them too). ``bytes`` is what
    goes: the runs' rows and side rows (their share of the tables' pages) and the stored
    bytes only they pointed at (after a real prune: what ``gc`` removed, which includes
    anything nothing pointed at before). ``exact``: whether the tables' bytes are page
    counts (else estimated from the values). ``garbage``: what ``gc`` removed (None on a
    dry run, and when no run was deleted: then ``gc`` does not run).
    """

    runs: Any
    track_ids: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)
    rows: int = 0
    row_bytes: int = 0
    side_bytes: int = 0
    stored_bytes: int = 0
    dry_run: bool = False
    exact: bool = True
    garbage: Garbage | None = None
    file_bytes: int = 0  # with vacuum: how much smaller the file got

    @property
    def bytes(self) -> int:
        return self.row_bytes + self.side_bytes + self.stored_bytes


def parse_duration(value: Any) -> dt.timedelta:
    """``'30d'``, ``'12h'``, ``'90m'``, ``'2w'`` (or ``'45s'``, or a timedelta) as a timedelta.

    >>> parse_duration("36h")
    datetime.timedelta(days=1, seconds=43200)
    """
    if isinstance(value, dt.timedelta):
        if value <= dt.timedelta(0):
            raise ValueError(f"older_than must be a positive duration, got {value!r}")
        return value
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"older_than must be a duration such as 30d, 12h, 90m or 2w, got {value!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"older_than must be a positive duration, got {value!r}")
    return dt.timedelta(seconds=seconds)


def _statuses(status: Any) -> list[str] | None:
    if status is None:
        return None
    names = [status] if isinstance(status, str) else list(status)
    for name in names:
        if name not in KNOWN_STATUSES:
            hint = close_matches(str(name), KNOWN_STATUSES)
            raise ValueError(f"Unknown status {name!r}.{hint} Statuses: {', '.join(KNOWN_STATUSES)}")
    return names


def _tags(keep_tags: Any) -> list[tuple[str, str]]:
    if keep_tags is None:
        return []
    pairs = (
        keep_tags.items()
        if isinstance(keep_tags, Mapping)
        else [keep_tags]
        if isinstance(keep_tags, str)
        else keep_tags
    )
    out = []
    for pair in pairs:
        if isinstance(pair, str):
            key, eq, value = pair.partition("=")
            if not key or not eq:
                raise ValueError(f"keep_tags: expected KEY=VALUE, got {pair!r}")
            pair = (key, value)
        key, value = pair
        out.append((str(key), str(value)))
    return out


@dataclass
class Rules:
    """The checked rules of one prune."""

    older_than: dt.timedelta | None
    status: list[str] | None
    keep_best: int | None
    by: str | None
    mode: str
    keep_tags: list[tuple[str, str]]
    force: bool

    @classmethod
    def check(
        cls,
        older_than: Any = None,
        status: Any = None,
        keep_best: int | None = None,
        by: str | None = None,
        mode: str = "max",
        keep_tags: Any = None,
        force: bool = False,
    ) -> Rules:
        """The rules, checked before anything is read: one clear error for the first wrong one."""
        if keep_best is not None and (isinstance(keep_best, bool) or not isinstance(keep_best, int) or keep_best < 1):
            raise ValueError(f"keep_best must be a whole number of runs, 1 or more, got {keep_best!r}")
        if keep_best is not None and not by:
            raise ValueError("keep_best needs by: the metric that says which runs are best")
        if by is not None and keep_best is None:
            raise ValueError("by names the metric of keep_best; pass keep_best=N too")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' (higher is better) or 'min' (lower is better), got {mode!r}")
        rules = cls(
            None if older_than is None else parse_duration(older_than),
            _statuses(status),
            keep_best,
            by,
            mode,
            _tags(keep_tags),
            bool(force),
        )
        if rules.older_than is None and not rules.status and rules.keep_best is None:
            raise ValueError(
                "Nothing to prune by: give older_than, status or keep_best (prune deletes no run by accident)"
            )
        return rules


def _moment(value: Any) -> Any:
    import pandas as pd

    moment = pd.to_datetime(value, errors="coerce", format="mixed") if isinstance(value, str) else pd.NaT
    if not pd.isna(moment) and moment.tzinfo is not None:  # an imported run's time with its zone: local time
        moment = moment.tz_convert(dt.datetime.now().astimezone().tzinfo).tz_localize(None)
    return moment


def choose(
    frame: Any, rules: Rules, protected_ids: Iterable[str], now: dt.datetime | None = None
) -> tuple[list[tuple[str, str]], list[str]]:
    """(the runs of ``frame`` (a ``runs()`` frame) the rules prune, each with why; the runs
    they would prune but a model version came from). Pure: reads and deletes nothing."""
    import pandas as pd

    now = now or dt.datetime.now()
    frame = frame[frame[TRACK_ID].notna()]  # rows written without a run (raw SQL) are no run to prune
    keep: set[str] = set()
    best_why = ""
    if rules.keep_best is not None:
        assert rules.by is not None
        if rules.by not in frame.columns:
            raise column_not_found(rules.by, "the runs summary", [str(c) for c in frame.columns])
        values = pd.to_numeric(frame[rules.by], errors="coerce")
        ranked = values.dropna().sort_values(ascending=rules.mode == "min")
        if len(frame) and not len(ranked):  # ranking by text would keep no run at all
            raise ValueError(f"{rules.by!r} holds no number in any run: keep_best cannot rank runs by it")
        if len(ranked):
            cut = ranked.iloc[min(rules.keep_best, len(ranked)) - 1]
            kept = values >= cut if rules.mode == "max" else values <= cut
            keep |= set(frame.loc[kept.fillna(False).astype(bool), TRACK_ID])
        best_why = f"not among the {rules.keep_best} best by {rules.by} ({rules.mode})"
    for key, value in rules.keep_tags:
        column = f"tags.{key}"
        if column in frame.columns:
            keep |= set(frame.loc[frame[column].astype(object) == value, TRACK_ID])
    guarded = set(protected_ids)
    cutoff = None if rules.older_than is None else now - rules.older_than
    chosen: list[tuple[str, str]] = []
    protected: list[str] = []
    for row in frame.to_dict("records"):
        track_id, status = row[TRACK_ID], row.get("status")
        status = status if isinstance(status, str) else None
        why = []
        if rules.status is not None:
            if status not in rules.status:
                continue
            why.append(f"status {status}")
        elif status == "running":
            continue  # a live run goes only when --status running names it
        if cutoff is not None:
            end, ended = _last_moment(row)
            if end is pd.NaT or pd.isna(end) or not end < cutoff:
                continue
            why.append(
                f"{'ended' if ended else 'last row'} {end:%Y-%m-%d %H:%M} (older than {_shown(rules.older_than)})"
            )
        if track_id in keep:
            continue
        if not why:
            why.append(best_why)
        if track_id in guarded and not rules.force:
            protected.append(track_id)
            continue
        chosen.append((track_id, "; ".join(why)))
    return chosen, protected


def _last_moment(row: Mapping[str, Any]) -> tuple[Any, bool]:
    """(the run's end, else its last row's time, True when it is the end)."""
    import pandas as pd

    end = _moment(row.get("end"))
    if not pd.isna(end):
        return end, True
    start, duration = _moment(row.get("start")), row.get("duration")
    if pd.isna(start) or duration is None or pd.isna(duration):
        return pd.NaT, False
    return start + pd.Timedelta(seconds=float(duration)), False


def _shown(delta: dt.timedelta | None) -> str:
    seconds = int((delta or dt.timedelta(0)).total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def prune(
    engine: Any,
    table: str,
    run_queries: Callable[[], Any],
    older_than: Any = None,
    status: Any = None,
    keep_best: int | None = None,
    by: str | None = None,
    mode: str = "max",
    keep_tags: Any = None,
    force: bool = False,
    dry_run: bool = False,
    vacuum: bool = False,
    now: dt.datetime | None = None,
) -> Pruned:
    """Delete the runs of ``table`` the rules choose (see the module's doc), then ``gc``
    (and ``vacuum``); with ``dry_run``, only say what would go. ``run_queries()`` gives
    the table's run queries (``runs('last')``)."""
    import pandas as pd

    from .models import listing

    rules = Rules.check(older_than, status, keep_best, by, mode, keep_tags, force)
    if vacuum and dry_run:
        raise ValueError("dry_run deletes nothing, so there is nothing to vacuum")
    store = sizes_of(engine)
    table = as_stored(engine, table)
    seen = store.fingerprints(engine, table)  # before runs(): a write after it makes the run skipped
    frame = run_queries().runs("last")
    models = listing(engine)
    chosen, protected = choose(frame, rules, models["track_id"].dropna().astype(str), now)
    ids = [t for t, _ in chosen]
    per, exact = run_bytes(engine, table) if ids else ({}, True)
    items, pointers = references(engine) if ids else ({}, {})
    freed = owned(items, pointers, [(table, t) for t in ids])
    mine: dict[str, int] = {}
    for size, holders in freed.values():
        for _, track_id in holders:  # shared by several pruned runs: split between them
            mine[track_id] = mine.get(track_id, 0) + size // len(holders)
    listed = frame.set_index(TRACK_ID)
    rows = []
    for track_id, why in chosen:
        info = listed.loc[track_id]
        n, row_b, side_b = per.get(track_id, [0, 0, 0])
        end, _ = _last_moment(info.to_dict())
        rows.append(
            {
                "track_id": track_id,
                "name": info.get("run_name") if isinstance(info.get("run_name"), str) else None,
                "status": info.get("status") if isinstance(info.get("status"), str) else None,
                "end": None if pd.isna(end) else f"{end:%Y-%m-%d %H:%M:%S}",
                "rows": n,
                "bytes": row_b + side_b + mine.get(track_id, 0),
                "why": why,
            }
        )
    result = Pruned(
        runs=pd.DataFrame(rows, columns=["track_id", "name", "status", "end", "rows", "bytes", "why"]),
        protected=protected,
        dry_run=dry_run,
        exact=exact,
    )
    if dry_run:
        result.track_ids = ids
        result.rows = sum(per.get(t, [0])[0] for t in ids)
        result.row_bytes = sum(per.get(t, [0, 0])[1] for t in ids)
        result.side_bytes = sum(per.get(t, [0, 0, 0])[2] for t in ids)
        result.stored_bytes = sum(size for size, _ in freed.values())
        return result
    deleted = store.delete_runs(engine, table, [(t, seen.get(t)) for t in ids if t in seen])
    for track_id, count in zip([t for t in ids if t in seen], deleted):
        if count is None:
            result.skipped.append(track_id)
        else:
            result.track_ids.append(track_id)
            result.rows += count
    result.skipped += [t for t in ids if t not in seen]  # written after runs() read it
    result.row_bytes = sum(per.get(t, [0, 0])[1] for t in result.track_ids)
    result.side_bytes = sum(per.get(t, [0, 0, 0])[2] for t in result.track_ids)
    if result.track_ids:  # nothing deleted: nothing new for gc to find
        result.garbage = gc(engine, vacuum=vacuum)
        result.stored_bytes = result.garbage.bytes
        result.file_bytes = result.garbage.file_bytes
    return result


def as_stored(engine: Any, table: str) -> str:
    """``table`` as the store spells it. SQLite names match without case, so a Reader of
    ``exp`` reads the rows of ``Exp``; its side rows (lifecycle, tags, names) say ``Exp``
    and are matched exactly, so they are found under that spelling."""
    names = list(engine.tables())
    if table in names:
        return table
    same = [n for n in names if n.lower() == table.lower()]
    return same[0] if len(same) == 1 and engine.dialect != "postgres" else table


def delete_run(engine: Any, table: str, track_id: str) -> int:
    """Delete one run's rows and side rows in one transaction; returns how many rows
    went. The bytes they pointed at stay until ``gc``."""
    if not isinstance(track_id, str):
        raise TypeError(f"track_id must be a str, got {track_id!r}")
    table = as_stored(engine, table)
    columns = engine.columns(table)  # a missing table: TableNotFoundError, listing the tables
    if TRACK_ID not in {c.lower() for c in columns}:
        raise column_not_found(TRACK_ID, table, list(columns))
    return sizes_of(engine).delete_runs(engine, table, [(track_id, None)])[0] or 0


__all__ = ["KNOWN_STATUSES", "Pruned", "Rules", "choose", "delete_run", "parse_duration", "prune"]
