"""xetrack benchmark: each workload against the raw library it is built on.

Run with ``make bench`` (or ``.venv/bin/python tests/benchmarks/bench.py``).

Every workload is timed twice in the same run: once through xetrack and once
through the floor it stands on (raw ``sqlite3``, ``pandas.read_sql``, DuckDB's
own ``sqlite_scan`` or, for artifacts, a plain ``shutil.copyfile`` of the same file),
on files of the same shape in a fresh temporary directory.
The raw ``sqlite3`` side is written to be a fair floor:

- connections in WAL mode with ``PRAGMA synchronous=NORMAL`` and autocommit, like
  xetrack's;
- the same table as xetrack writes: its CREATE TABLE and CREATE INDEX are copied
  from a file xetrack made, so the column count, declared types and the
  ``track_id`` index are the same, and every row carries a ``timestamp`` (same
  text format) and a ``track_id``;
- one parametrized INSERT string reused, so sqlite3's statement cache applies;
- for ``log()`` the floor is the bare operation: tuples built before timing (values,
  timestamp text, track_id), one cached INSERT and one commit per row, into the same
  layout (same indexes); a second floor, the same table without the ``track_id``
  index, is printed as its own row, so the cost of the layout stays visible. (Before
  issue 12 this floor built each tuple from the dict and a timestamp inside the timing.)
- ``log_batch()``'s floor starts from the same input (the list of dicts xetrack is
  given) and builds its tuples inside the timing, as before;
- DuckDB's floor loads the scanner once per process (before timing) and runs
  ``sqlite_scan``; xetrack's row includes ``Reader(db, engine='duckdb')`` construction.

Timings are the best of ``--repeats`` (default 3) runs, xetrack and baseline
alternating. Setup (making files and input data) is never timed. The table
reports rates (higher is better) and ratio = xetrack / baseline; for memory,
ratio = xetrack peak / baseline peak (lower is better).

The exit status is 0 even when a workload MISSes its target (this reports, it
does not gate), and non-zero when a workload crashes or the multi-process run
loses, duplicates or misplaces rows (checked on every repeat).

Options: ``--quick`` (small sizes and one repeat, a smoke check), ``--json PATH``
(also write the results as JSON), ``--repeats N``, ``--only NAME[,NAME]``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import queue as queue_module
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import pandas as pd

from xetrack import Reader, Tracker
from xetrack.store import open_engine
from xetrack.store.duckdb.engine import load_sqlite_scanner

TABLE = "default"

FULL = {
    "log": 5_000,
    "batch": 100_000,
    "read": 200_000,
    "read_runs": 20,
    "new_keys": 1_900,
    "trackers": 1_000,
    "tracker_logs": 20,
    "procs": 4,
    "proc_logs": 1_000,
    "proc_new_every": 100,
    "asset_mb": 10,
    "artifact_mb": 200,
    "track": 5_000,
    "jsonl": 5_000,
    "runs": 10_000,
    "run_events": 20,
    "big_runs": 100_000,
    "big_run_events": 20,
    "history_runs": 200,
    "history_steps": 10_000,
    "curve_points": 1_000_000,
    "live_rows": 100_000,
}
QUICK = {
    "log": 500,
    "batch": 10_000,
    "read": 20_000,
    "read_runs": 4,
    "new_keys": 200,
    "trackers": 100,
    "tracker_logs": 20,
    "procs": 4,
    "proc_logs": 200,
    "proc_new_every": 20,
    "asset_mb": 2,
    "artifact_mb": 20,
    "track": 500,
    "jsonl": 500,
    "runs": 1_000,
    "run_events": 20,
    "big_runs": 10_000,
    "big_run_events": 5,
    "history_runs": 20,
    "history_steps": 10_000,
    "curve_points": 100_000,
    "live_rows": 10_000,
}

# --------------------------------------------------------------------------- helpers


@dataclass
class Result:
    name: str  # short id used by --only and in JSON
    workload: str  # the label printed in the table
    unit: str
    xetrack: float | None = None
    baseline: float | None = None
    ratio: float | None = None
    op: str = ">="  # ratio op threshold is the target
    threshold: float = 0.0
    target: str = ""
    status: str = "-"  # PASS, MISS or CRASH
    fatal: bool = False  # a MISS that must fail the run (rows lost), not just be reported
    detail: str = ""
    xetrack_seconds: list[float] = field(default_factory=list)
    baseline_seconds: list[float] = field(default_factory=list)
    error: str | None = None


class RawClock:
    """The floor's timestamps: same text as xetrack's, prefix cached per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        second, fraction = divmod(time.time_ns() // 1000, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%d %H:%M:%S.", time.localtime(second))
        return f"{self._prefix}{fraction:06d}"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def raw_connect(path: str, timeout: float = 60.0) -> sqlite3.Connection:
    """A plain sqlite3 connection set up like xetrack's: autocommit, WAL, synchronous=NORMAL."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    conn.execute("PRAGMA journal_mode=WAL").fetchone()
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def insert_sql(columns: list[str] | tuple[str, ...]) -> str:
    names = ", ".join(quote(c) for c in columns)
    return f"INSERT INTO {quote(TABLE)} ({names}) VALUES ({', '.join('?' * len(columns))})"


def xetrack_schema(tmp: str, sample: dict[str, Any] | None, params: dict[str, Any] | None = None) -> list[str]:
    """The CREATE statements of the table xetrack makes for rows like ``sample``."""
    path = os.path.join(tmp, "schema-template.db")
    tracker = Tracker(path, params=params)
    if sample is not None:
        tracker.log(sample)
    tracker.close()
    conn = sqlite3.connect(path)
    sqls = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY rowid",
            (TABLE,),
        )
    ]
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return sqls


def raw_create(path: str, schema: list[str]) -> sqlite3.Connection:
    conn = raw_connect(path)
    for sql in schema:
        conn.execute(sql)
    return conn


def count_rows(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM {quote(TABLE)}").fetchone()[0]
    finally:
        conn.close()


def column_count(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return len(conn.execute(f"SELECT * FROM {quote(TABLE)} LIMIT 0").description)
    finally:
        conn.close()


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(
    repeats: int, x_run: Callable[[int], float], b_run: Callable[[int], float]
) -> tuple[list[float], list[float]]:
    """Run xetrack and baseline ``repeats`` times each, alternating which goes first."""
    xs: list[float] = []
    bs: list[float] = []
    for r in range(repeats):
        if r % 2 == 0:
            xs.append(x_run(r))
            bs.append(b_run(r))
        else:
            bs.append(b_run(r))
            xs.append(x_run(r))
    return xs, bs


def alternate_calls(
    repeats: int, ours: Callable[[], Any], theirs: Callable[[], Any]
) -> tuple[list[float], list[float]]:
    """:func:`alternate` of one timed call of each."""
    return alternate(repeats, lambda r: timed(ours), lambda r: timed(theirs))


def rate_result(res: Result, work: int, xs: list[float], bs: list[float]) -> Result:
    res.xetrack_seconds, res.baseline_seconds = xs, bs
    res.xetrack = work / min(xs)
    res.baseline = work / min(bs)
    res.ratio = res.xetrack / res.baseline
    return res


# Ten keys of mixed types, as a training loop logs them.
LOG_KEYS = ("epoch", "step", "split", "loss", "accuracy", "lr", "f1", "precision", "recall", "is_best")


def log_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        acc = rnd.random()
        rows.append(
            {
                "epoch": i // 100,
                "step": i,
                "split": "train" if i % 10 else "val",
                "loss": rnd.random() * 3,
                "accuracy": acc,
                "lr": 1e-3 * (0.99 ** (i // 100)),
                "f1": acc * 0.97,
                "precision": rnd.random(),
                "recall": rnd.random(),
                "is_best": acc > 0.95,
            }
        )
    return rows


# --------------------------------------------------------------------------- workloads


def _logging_setup(tmp: str, n: int) -> tuple[list[dict[str, Any]], dict[str, Any], list[str], str]:
    """Rows to log, a warm-up row, xetrack's schema for them and the raw INSERT."""
    rows = log_rows(n)
    warm = log_rows(1, seed=1)[0]
    schema = xetrack_schema(tmp, warm)
    return rows, warm, schema, insert_sql([*warm, "timestamp", "track_id"])


def _warm_tracker(path: str, warm: dict[str, Any]) -> Tracker:
    tracker = Tracker(path)
    tracker.log(warm)  # columns exist before timing, as in the baseline's file
    return tracker


def _warm_raw(path: str, schema: list[str], sql: str, warm: dict[str, Any]) -> tuple[sqlite3.Connection, RawClock, str]:
    conn = raw_create(path, schema)
    clock, track_id = RawClock(), "raw-run-0001"
    conn.execute(sql, (*warm.values(), clock.now(), track_id))
    return conn, clock, track_id


def _index_free(schema: list[str]) -> list[str]:
    """The same table without its indexes: the floor that shows what the layout costs."""
    return [sql for sql in schema if not sql.lstrip().upper().startswith("CREATE INDEX")]


def timed_inserts(path: str, schema: list[str], sql: str, warm: dict[str, Any], tuples: list[tuple[Any, ...]]) -> float:
    """The floor of log(): pre-built tuples, one cached INSERT and one commit (autocommit)
    each, into a file of ``schema`` holding ``warm`` already."""
    conn, _, _ = _warm_raw(path, schema, sql, warm)

    def work() -> None:
        execute = conn.execute
        for values in tuples:
            execute(sql, values)  # autocommit: one transaction, one commit

    elapsed = timed(work)
    conn.close()
    assert count_rows(path) == len(tuples) + 1
    return elapsed


def timed_logs(tracker: Tracker, rows: list[dict[str, Any]]) -> float:
    """log() of every row, timed; the tracker is closed after."""

    def work() -> None:
        log = tracker.log
        for row in rows:
            log(row)

    elapsed = timed(work)
    path = tracker.db
    tracker.close()
    assert count_rows(path) == len(rows) + 1
    return elapsed


def bench_log(tmp: str, size: dict[str, int], repeats: int) -> list[Result]:
    """log() per row against the bare operation: a pre-built tuple, one cached INSERT,
    one commit (autocommit), into the same layout. A second floor, the same table
    without the ``track_id`` index, is printed as its own row: the cost of the layout."""
    n = size["log"]
    res = Result(
        "log",
        f"log(): {n:,} calls x 10 keys",
        "logs/s",
        op=">=",
        threshold=0.9,
        target=">= 0.9x bare INSERT+commit/row, same indexes",
    )
    bare = Result(
        "log_no_index",
        "  the same log() against a table with no index",
        "logs/s",
        target="(layout cost, no target)",
        status="info",
    )
    rows, warm, schema, sql = _logging_setup(tmp, n)
    # The floor's input is ready-made: the tuples with their timestamps and track_id.
    clock, track_id = RawClock(), "raw-run-0001"
    tuples = [(*row.values(), clock.now(), track_id) for row in rows]

    def x_run(r: int) -> float:
        return timed_logs(_warm_tracker(os.path.join(tmp, f"x{r}.db"), warm), rows)

    def floor(layout: list[str], name: str) -> Callable[[int], float]:
        return lambda r: timed_inserts(os.path.join(tmp, f"{name}{r}.db"), layout, sql, warm, tuples)

    same, no_index = floor(schema, "b"), floor(_index_free(schema), "n")
    xs, bs, ns = [], [], []
    for r in range(read_repeats(repeats)):  # rotate which goes first; 0.1 s a run: best of 5
        order = [(xs, x_run), (bs, same), (ns, no_index)]
        for out, run in order[r % 3 :] + order[: r % 3]:
            out.append(run(r))
    assert column_count(os.path.join(tmp, "x0.db")) == column_count(os.path.join(tmp, "b0.db")) == 12
    rate_result(res, n, xs, bs)
    rate_result(bare, n, xs, ns)
    res.detail = (
        f"floors: same layout {res.baseline:,.0f} rows/s, no index {bare.baseline:,.0f} rows/s "
        f"(the track_id index costs {1 - res.baseline / bare.baseline:.0%} of a bare insert)"
    )
    return [res, bare]


def bench_log_batch(tmp: str, size: dict[str, int], repeats: int) -> Result:
    n = size["batch"]
    res = Result(
        "log_batch",
        f"log_batch(): {n:,} rows x 10 keys",
        "rows/s",
        op=">=",
        threshold=0.5,
        target=">= 0.5x raw executemany, 1 txn",
    )
    rows, warm, schema, sql = _logging_setup(tmp, n)

    def x_run(r: int) -> float:
        path = os.path.join(tmp, f"x{r}.db")
        tracker = _warm_tracker(path, warm)
        elapsed = timed(lambda: tracker.log_batch(rows))
        tracker.close()
        assert count_rows(path) == n + 1
        return elapsed

    def b_run(r: int) -> float:
        path = os.path.join(tmp, f"b{r}.db")
        conn, clock, track_id = _warm_raw(path, schema, sql, warm)

        def work() -> None:
            now = clock.now
            values = [(*row.values(), now(), track_id) for row in rows]
            conn.execute("BEGIN")
            conn.executemany(sql, values)
            conn.execute("COMMIT")

        elapsed = timed(work)
        conn.close()
        assert count_rows(path) == n + 1
        return elapsed

    xs, bs = alternate(repeats, x_run, b_run)
    assert column_count(os.path.join(tmp, "x0.db")) == column_count(os.path.join(tmp, "b0.db")) == 12
    return rate_result(res, n, xs, bs)


MODELS = ("resnet18", "resnet50", "vit-b16", "bert-base", "gpt2-small")


def build_read_db(path: str, n: int, runs: int) -> None:
    """A realistic wide table, written through xetrack's log_batch.

    12 columns: timestamp, track_id, model (TEXT, a param), epoch (INTEGER, NULL
    except on eval rows), step (INTEGER), lr/loss (REAL), accuracy/val_loss/f1
    (REAL, NULL except on eval rows), grad_norm (REAL, some NULL), is_best
    (BOOLEAN, NULL except on eval rows).
    """
    rnd = random.Random(42)
    per_run = n // runs
    for run in range(runs):
        count = per_run if run < runs - 1 else n - per_run * (runs - 1)
        rows = []
        for i in range(count):
            evaluating = i % 10 == 9
            acc = rnd.random() if evaluating else None
            rows.append(
                {
                    "epoch": i // 500 if evaluating else None,
                    "step": i,
                    "lr": 3e-4 * (0.999 ** (i // 50)),
                    "loss": rnd.random() * 2,
                    "accuracy": acc,
                    "val_loss": rnd.random() * 2 if evaluating else None,
                    "f1": acc * 0.95 if evaluating else None,
                    "grad_norm": rnd.random() * 10 if i % 4 else None,
                    "is_best": (acc > 0.9) if evaluating else None,
                }
            )
        tracker = Tracker(path, params={"model": MODELS[run % len(MODELS)]})
        tracker.log_batch(rows)
        tracker.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


class ReadData:
    """The one 200k-row file both readers read, built once per benchmark run."""

    def __init__(self, tmp: str, size: dict[str, int]) -> None:
        self.n = size["read"]
        self.path = os.path.join(tmp, "wide.db")
        build_read_db(self.path, self.n, size["read_runs"])
        assert count_rows(self.path) == self.n
        self.columns = column_count(self.path)


def xetrack_sqlite_read(path: str) -> pd.DataFrame:
    reader = Reader(path)
    try:
        return reader.to_df()
    finally:
        reader.close()


def pandas_read(path: str) -> pd.DataFrame:
    conn = sqlite3.connect(path)
    try:
        return pd.read_sql(f"SELECT * FROM {quote(TABLE)}", conn)
    finally:
        conn.close()


def xetrack_duckdb_read(path: str) -> pd.DataFrame:
    reader = Reader(path, engine="duckdb")
    try:
        return reader.to_df()
    finally:
        reader.close()


_raw_duck: list[duckdb.DuckDBPyConnection] = []


def duckdb_read(path: str) -> pd.DataFrame:
    """The bare scan: one DuckDB connection per process with the scanner loaded once
    (loaded on the first, untimed, warm-up call), as a user who reads often keeps it."""
    if not _raw_duck:
        conn = duckdb.connect()
        load_sqlite_scanner(conn)
        _raw_duck.append(conn)
    literal = "'" + path.replace("'", "''") + "'"
    return _raw_duck[0].execute(f"SELECT * FROM sqlite_scan({literal}, '{TABLE}')").df()


#: A full read takes half a second and its ratio swings by +-8% on a shared 2-core machine:
#: the read rows keep the best of at least this many alternating repeats.
READ_REPEATS = 5
HISTORY_CALLS = 5


def read_repeats(repeats: int) -> int:
    return repeats if repeats == 1 else max(repeats, READ_REPEATS)  # --quick stays one


def _time_read(read: Callable[[str], pd.DataFrame], data: ReadData) -> Callable[[int], float]:
    def run(r: int) -> float:
        out: list[pd.DataFrame] = []
        elapsed = timed(lambda: out.append(read(data.path)))
        frame = out.pop()
        assert frame.shape == (data.n, data.columns), frame.shape
        return elapsed

    return run


def bench_read_sqlite(data: ReadData, repeats: int) -> Result:
    res = Result(
        "read_sqlite",
        f"Reader.to_df() sqlite: {data.n:,} rows x {data.columns} cols",
        "rows/s",
        op=">=",
        threshold=1.0,
        target=">= 1.0x pandas.read_sql",
    )
    xs, bs = alternate(read_repeats(repeats), _time_read(xetrack_sqlite_read, data), _time_read(pandas_read, data))
    return rate_result(res, data.n, xs, bs)


def bench_read_duckdb(data: ReadData, repeats: int) -> Result:
    """Reader(path, engine='duckdb') made, to_df(), closed: construction counts, as a
    user pays it. The floor loaded the scanner before timing, and so has xetrack's
    process-wide DuckDB after the warm-up: loading is once per process on both sides."""
    res = Result(
        "read_duckdb",
        f"Reader.to_df() duckdb: {data.n:,} rows x {data.columns} cols",
        "rows/s",
        op=">=",
        threshold=0.9,
        target=">= 0.9x duckdb sqlite_scan .df(), Reader made",
    )
    xetrack_duckdb_read(data.path)  # warm: each side loads the scanner once per process
    duckdb_read(data.path)
    xs, bs = alternate(read_repeats(repeats), _time_read(xetrack_duckdb_read, data), _time_read(duckdb_read, data))
    return rate_result(res, data.n, xs, bs)


def peak_memory(read: Callable[[str], pd.DataFrame], path: str) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        frame = read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del frame
    gc.collect()
    return peak


def bench_read_memory(data: ReadData, repeats: int) -> Result:
    res = Result(
        "read_memory",
        f"peak memory, sqlite read of {data.n:,} rows",
        "MiB",
        op="<=",
        threshold=1.5,
        target="<= 1.5x pandas.read_sql peak",
        detail="tracemalloc peak (Python + numpy heaps)",
    )
    # Warm both paths first so lazy imports are not counted, then measure once each.
    xetrack_sqlite_read(data.path)
    pandas_read(data.path)
    x_peak = peak_memory(xetrack_sqlite_read, data.path)
    b_peak = peak_memory(pandas_read, data.path)
    res.xetrack = x_peak / 2**20
    res.baseline = b_peak / 2**20
    res.ratio = x_peak / b_peak
    return res


def bench_new_keys(tmp: str, size: dict[str, int], repeats: int) -> Result:
    n = size["new_keys"]
    res = Result(
        "new_keys",
        f"log() adding a new key each: {n:,} keys",
        "logs/s",
        op=">=",
        threshold=0.85,
        target=">= 0.85x raw ALTER ADD COLUMN+INSERT",
    )
    schema = xetrack_schema(tmp, None)  # timestamp, track_id and the track_id index
    keys = [f"metric_{i}" for i in range(n)]

    def x_run(r: int) -> float:
        path = os.path.join(tmp, f"x{r}.db")
        tracker = Tracker(path)

        def work() -> None:
            log = tracker.log
            for i, key in enumerate(keys):
                log({key: i * 0.5})

        elapsed = timed(work)
        tracker.close()
        assert count_rows(path) == n
        assert column_count(path) == n + 2
        return elapsed

    def b_run(r: int) -> float:
        path = os.path.join(tmp, f"b{r}.db")
        conn = raw_create(path, schema)
        clock, track_id = RawClock(), "raw-run-0001"
        table = quote(TABLE)

        def work() -> None:
            execute, now = conn.execute, clock.now
            for i, key in enumerate(keys):
                execute("BEGIN IMMEDIATE")
                execute(f"ALTER TABLE {table} ADD COLUMN {quote(key)} REAL")
                execute(
                    f'INSERT INTO {table} ({quote(key)}, "timestamp", "track_id") VALUES (?, ?, ?)',
                    (i * 0.5, now(), track_id),
                )
                execute("COMMIT")

        elapsed = timed(work)
        conn.close()
        assert count_rows(path) == n
        assert column_count(path) == n + 2
        return elapsed

    xs, bs = alternate(repeats, x_run, b_run)
    return rate_result(res, n, xs, bs)


def bench_assets(tmp: str, size: dict[str, int], repeats: int) -> Result:
    """A large object logged twice: stored once, the second log adds no bytes."""
    mb = size["asset_mb"]
    res = Result(
        "assets",
        f"log() of a {mb} MB object, twice",
        "MB/s",
        op=">=",
        threshold=0.5,
        target=">= 0.5x raw pickle+hash+INSERT; 2nd adds 0 B",
    )
    import hashlib

    import cloudpickle
    import numpy as np

    obj = np.random.default_rng(0).random(mb * 1024 * 1024 // 8)

    def stored_bytes(path: str) -> int:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT coalesce(sum(length(value)), 0) FROM assets").fetchone()[0]
        finally:
            conn.close()

    growth: list[int] = []

    def x_run(r: int) -> float:
        path = os.path.join(tmp, f"x{r}.db")
        tracker = Tracker(path)
        elapsed = timed(lambda: tracker.log({"model": obj}))
        first = stored_bytes(path)
        elapsed += timed(lambda: tracker.log({"model": obj}))
        growth.append(stored_bytes(path) - first)
        tracker.close()
        assert count_rows(path) == 2
        return elapsed

    def b_run(r: int) -> float:
        path = os.path.join(tmp, f"b{r}.db")
        conn = raw_create(path, xetrack_schema(tmp, {"model": "0123456789abcdef"}))
        conn.execute('CREATE TABLE "assets" (key TEXT PRIMARY KEY, value BLOB)')
        clock = RawClock()

        def work() -> None:
            for _ in range(2):
                data = cloudpickle.dumps(obj)
                key = hashlib.blake2b(data, digest_size=8).hexdigest()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute('INSERT OR IGNORE INTO "assets" (key, value) VALUES (?, ?)', (key, data))
                conn.execute(insert_sql(["model", "timestamp", "track_id"]), (key, clock.now(), "raw"))
                conn.execute("COMMIT")

        elapsed = timed(work)
        conn.close()
        return elapsed

    xs, bs = alternate(repeats, x_run, b_run)
    res = rate_result(res, 2 * mb, xs, bs)
    res.detail = f"bytes the second log added: {sorted(set(growth))}"
    if any(growth):
        res.status, res.fatal = "MISS", True
    return res


def bench_track(tmp: str, size: dict[str, int], repeats: int) -> Result:
    """track() of an empty function, against a plain log() of the row it writes."""
    n = size["track"]
    res = Result(
        "track",
        f"track() of an empty function: {n:,} calls",
        "calls/s",
        op=">=",
        threshold=0.4,
        target=">= 0.4x plain log() of the same row (ours)",
    )

    def noop() -> None:
        return None

    row = {"function_name": "noop", "args": "[]", "kwargs": "{}", "error": "", "function_time": 1e-06}

    def x_run(r: int) -> float:
        path = os.path.join(tmp, f"x{r}.db")
        tracker = Tracker(path)
        tracker.track(noop)  # columns exist before timing
        elapsed = timed(lambda: [tracker.track(noop) for _ in range(n)])
        tracker.close()
        assert count_rows(path) == n + 1
        return elapsed

    def b_run(r: int) -> float:
        path = os.path.join(tmp, f"b{r}.db")
        tracker = Tracker(path)
        tracker.log(row)
        elapsed = timed(lambda: [tracker.log(row) for _ in range(n)])
        tracker.close()
        return elapsed

    xs, bs = alternate(repeats, x_run, b_run)
    res = rate_result(res, n, xs, bs)
    res.detail = f"per call: track {min(xs) / n * 1e6:.0f} us, log {min(bs) / n * 1e6:.0f} us"
    return res


def bench_jsonl(tmp: str, size: dict[str, int], repeats: int) -> Result:
    """log() with a JSONL sink, against log() without one (both into a SQLite file)."""
    n = size["jsonl"]
    res = Result(
        "jsonl",
        f"log() with a JSONL sink: {n:,} calls x 10 keys",
        "logs/s",
        op=">=",
        threshold=0.5,
        target=">= 0.5x log() without a sink (ours)",
    )
    rows = log_rows(n)
    warm = log_rows(1, seed=1)[0]

    def run(r: int, kind: str) -> float:
        path = os.path.join(tmp, f"{kind}{r}.db")
        jsonl = os.path.join(tmp, f"{kind}{r}.jsonl") if kind == "x" else None
        tracker = Tracker(path, jsonl=jsonl)
        tracker.log(warm)  # columns exist before timing

        def work() -> None:
            log = tracker.log
            for row in rows:
                log(row)

        elapsed = timed(work)
        tracker.close()
        assert count_rows(path) == n + 1
        if jsonl is not None:
            with open(jsonl, "rb") as fh:
                assert sum(1 for _ in fh) == n + 1
        return elapsed

    xs, bs = alternate(repeats, lambda r: run(r, "x"), lambda r: run(r, "b"))
    res = rate_result(res, n, xs, bs)
    res.detail = f"per call: with JSONL {min(xs) / n * 1e6:.0f} us, without {min(bs) / n * 1e6:.0f} us"
    return res


def bench_many_trackers(tmp: str, size: dict[str, int], repeats: int) -> list[Result]:
    """A sweep: a new Tracker per run, 20 log() calls, then ``close()`` (one row) or the
    Tracker dropped with ``del`` (the other), against the bare operation per run:
    ``sqlite3.connect`` (WAL, synchronous=NORMAL), 20 cached INSERTs, ``close()``."""
    n, per = size["trackers"], size["tracker_logs"]
    rows = log_rows(per)
    warm = rows[0]
    schema = xetrack_schema(tmp, warm)
    sql = insert_sql([*warm, "timestamp", "track_id"])
    clock = RawClock()
    tuples = [[(*row.values(), clock.now(), f"raw-run-{i:04d}") for row in rows] for i in range(n)]

    def x_run(r: int, how: str) -> float:
        path = os.path.join(tmp, f"x{how}{r}.db")
        tracker = Tracker(path)  # the table and its columns exist before timing
        tracker.log(warm)
        tracker.close()

        def work() -> None:
            for _ in range(n):
                tracker = Tracker(path)
                for row in rows:
                    tracker.log(row)
                if how == "close":
                    tracker.close()
                else:
                    del tracker

        elapsed = timed(work)
        assert count_rows(path) == n * per + 1
        return elapsed

    def b_run(r: int, how: str) -> float:
        path = os.path.join(tmp, f"b{how}{r}.db")
        conn = raw_create(path, schema)
        conn.execute(sql, (*warm.values(), RawClock().now(), "warm"))
        conn.close()

        def work() -> None:
            for run in tuples:
                conn = raw_connect(path)
                for values in run:
                    conn.execute(sql, values)
                conn.close()

        elapsed = timed(work)
        assert count_rows(path) == n * per + 1
        return elapsed

    results = []
    for how in ("close", "del"):
        res = Result(
            f"many_trackers_{how}",
            f"{n:,} Trackers x {per} logs, {'close()' if how == 'close' else 'dropped with del'} each",
            "logs/s",
            op=">=",
            threshold=1.0,
            target=">= 1.0x bare connect/INSERTs/close per run",
        )
        xs, bs = alternate(repeats, functools.partial(x_run, how=how), functools.partial(b_run, how=how))
        results.append(rate_result(res, n * per, xs, bs))
    return results


def bench_log_system(tmp: str, size: dict[str, int], repeats: int) -> Result:
    """What the readings of log_system_params and log_network_params add to log(): every
    row also carries six readings of the machine, taken at most every
    measurement_interval (0.05 s here, so that a run takes several). Against the same
    log() without them (ours, the same table), as the track() and JSONL rows are; the
    detail gives the bare INSERT of the same 16 columns from pre-built tuples too."""
    n = size["log"]
    res = Result(
        "log_system",
        f"log() with system and network readings: {n:,} calls",
        "logs/s",
        op=">=",
        threshold=0.9,
        target=">= 0.9x the same log() without readings (ours)",
    )
    rows = log_rows(n)
    probe = Tracker(Tracker.IN_MEMORY, log_system_params=True, log_network_params=True)
    warm = {k: v for k, v in probe.log(log_rows(1, seed=1)[0]).items() if k not in ("timestamp", "track_id")}
    schema = xetrack_schema(tmp, warm)
    sql = insert_sql([*warm, "timestamp", "track_id"])
    readings = tuple(warm[k] for k in list(warm)[len(LOG_KEYS) :])
    clock, track_id = RawClock(), "raw-run-0001"
    tuples = [(*row.values(), *readings, clock.now(), track_id) for row in rows]

    def x_run(r: int, system: bool) -> float:
        path = os.path.join(tmp, f"x{system}{r}.db")
        tracker = Tracker(path, log_system_params=system, log_network_params=system, measurement_interval=0.05)
        tracker.log(warm)
        return timed_logs(tracker, rows)

    def b_run(r: int) -> float:
        return timed_inserts(os.path.join(tmp, f"b{r}.db"), schema, sql, warm, tuples)

    xs, plain, bs = [], [], []
    for r in range(read_repeats(repeats)):  # rotate which goes first; best of 5
        order = [
            (xs, functools.partial(x_run, r, True)),
            (plain, functools.partial(x_run, r, False)),
            (bs, functools.partial(b_run, r)),
        ]
        for out, run in order[r % 3 :] + order[: r % 3]:
            out.append(run())
    rate_result(res, n, xs, plain)
    res.detail = (
        f"per call: with the readings {min(xs) / n * 1e6:.1f} us, without {min(plain) / n * 1e6:.1f} us; "
        f"the bare INSERT of the same 16 columns {min(bs) / n * 1e6:.1f} us "
        f"({min(bs) / min(xs):.2f}x of it with the readings)"
    )
    return res


# --------------------------------------------------------------------------- artifacts
#
# A file into the database and back out, against copying the same file with plain
# file I/O (shutil.copyfile) in the same directory. Each floor promises what xetrack
# promises, no more:
#
# - writing: in WAL mode with synchronous=NORMAL a commit does not fsync, but a commit
#   that leaves more than 1,000 pages (4 MiB) in the WAL is checkpointed at once, which
#   fdatasyncs the WAL and then the database file. Every batch of a big artifact is
#   such a commit, so when log_artifact returns the bytes are on disk. The floor is
#   shutil.copyfile plus one fdatasync of the copy.
# - reading: download_artifacts writes a temporary file and renames it, without an
#   fsync. The floor is shutil.copyfile without one.
#
# Every file is fresh random bytes (new content each repeat, so dedup cannot make the
# write free), written and synced before timing, and os.sync() runs before every timed
# run, so that no run pays for flushing another one's dirty pages. The notes add what
# the time is made of: one BLAKE2b pass over the file (xetrack's write makes two, its
# read one) and raw sqlite3 storing or reading the same chunks without any hashing.


def _random_file(path: str, mb: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as fh:
        for _ in range(mb):
            fh.write(rng.randbytes(2**20))
        fh.flush()
        os.fsync(fh.fileno())


def _durable_copy(src: str, dst: str) -> None:
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        (getattr(os, "fdatasync", None) or os.fsync)(fd)  # what SQLite calls at a checkpoint
    finally:
        os.close(fd)


def _remove(*paths: str) -> None:
    for path in paths:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)


def _synced_timed(fn: Callable[[], Any]) -> float:
    os.sync()
    return timed(fn)


def _blake2b_pass(path: str) -> None:
    from xetrack.store import chunks

    check = chunks.hasher()
    with open(path, "rb") as fh:
        while data := fh.read(chunks.CHUNK_SIZE):
            check.update(data)


def _raw_chunks_connect(path: str) -> sqlite3.Connection:
    from xetrack.store.sqlite import blobs
    from xetrack.store.sqlite.engine import JOURNAL_SIZE_LIMIT

    conn = raw_connect(path)
    conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")  # as xetrack sets it
    blobs.create_tables(conn)
    return conn


def _raw_chunks_write(src: str, path: str) -> None:
    """Raw sqlite3 storing the file as xetrack's chunks, in its batches, without hashing."""
    from xetrack import artifacts
    from xetrack.store import chunks

    conn = _raw_chunks_connect(path)
    per_batch = max(1, artifacts.BATCH_BYTES // chunks.CHUNK_SIZE)
    sql = 'INSERT INTO "xetrack_chunks" ("hash", "seq", "data") VALUES (?, ?, ?)'
    with open(src, "rb") as fh:
        seq = 0
        conn.execute("BEGIN IMMEDIATE")
        while data := fh.read(chunks.CHUNK_SIZE):
            conn.execute(sql, ("raw", seq, data))
            seq += 1
            if seq % per_batch == 0:
                conn.execute("COMMIT")
                conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")
    conn.close()


def _raw_chunks_read(path: str, dst: str) -> None:
    conn = raw_connect(path)
    sql = 'SELECT "data" FROM "xetrack_chunks" WHERE "hash" = ? AND "seq" = ?'
    with open(dst, "wb") as fh:
        seq = 0
        while row := conn.execute(sql, ("raw", seq)).fetchone():
            fh.write(row[0])
            seq += 1
    conn.close()


def _checkpointed_size(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return os.path.getsize(path)


def _sql_value(path: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0]
    finally:
        conn.close()


def _python_peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, out


def bench_artifact_write(tmp: str, size: dict[str, int], repeats: int) -> Result:
    mb = size["artifact_mb"]
    nbytes = mb * 2**20
    res = Result(
        "artifact_write",
        f"log_artifact(): a {mb} MB file",
        "MB/s",
        op=">=",
        threshold=0.05,
        target=">= 0.05x copyfile + fdatasync",
    )
    chunk_bytes = 'SELECT coalesce(sum(length("data")), 0) FROM "xetrack_chunks"'

    def x_run(r: int) -> float:
        src, path = os.path.join(tmp, f"x{r}.bin"), os.path.join(tmp, f"x{r}.db")
        _random_file(src, mb, seed=1000 + r)
        tracker = Tracker(path)
        keys: list[str] = []
        elapsed = _synced_timed(lambda: keys.append(tracker.log_artifact(src)))
        tracker.close()
        assert _sql_value(path, 'SELECT "size" FROM "xetrack_blobs" WHERE "hash" = ?', (keys[0],)) == nbytes
        assert _sql_value(path, chunk_bytes) == nbytes
        _remove(src, path)
        return elapsed

    def b_run(r: int) -> float:
        # The best of 3 copies: the floor is cheap, but its one fdatasync swings with the
        # disk (0.1 to 0.5 s seen), and a slow floor would hide a slower xetrack.
        src, dst = os.path.join(tmp, f"b{r}.bin"), os.path.join(tmp, f"b{r}.copy")
        _random_file(src, mb, seed=2000 + r)
        best = float("inf")
        for _ in range(3):
            best = min(best, _synced_timed(lambda: _durable_copy(src, dst)))
            assert os.path.getsize(dst) == nbytes
            _remove(dst)
        _remove(src)
        return best

    xs, bs = alternate(repeats, x_run, b_run)
    rate_result(res, mb, xs, bs)

    # Untimed by the table: what the time is made of, and the same file logged again.
    src, path = os.path.join(tmp, "m.bin"), os.path.join(tmp, "m.db")
    _random_file(src, mb, seed=3000)
    plain = min(_synced_timed(lambda: shutil.copyfile(src, path + ".copy")) for _ in range(repeats))
    hashing = min(_synced_timed(lambda: _blake2b_pass(src)) for _ in range(repeats))
    raw = []
    for _ in range(repeats):
        raw.append(_synced_timed(lambda: _raw_chunks_write(src, path)))
        assert _sql_value(path, chunk_bytes) == nbytes
        _remove(path)
    tracker = Tracker(path)
    tracker.log_artifact(b"warm")  # the tables exist, lazy imports are done
    peak, _ = _python_peak(lambda: tracker.log_artifact(src))
    file_before, chunks_before = _checkpointed_size(path), _sql_value(path, chunk_bytes)
    again = _synced_timed(lambda: tracker.log_artifact(src, name="again.bin"))
    file_growth = _checkpointed_size(path) - file_before
    chunk_growth = _sql_value(path, chunk_bytes) - chunks_before
    tracker.close()
    _remove(src, path, path + ".copy")
    res.detail = (
        f"{min(xs):.2f}s vs {min(bs):.2f}s (copyfile alone {plain:.2f}s); ours = 2 BLAKE2b passes "
        f"({hashing:.2f}s each) + storing; raw sqlite3 storing the same chunks {min(raw):.2f}s; "
        f"same file again {again:.2f}s, DB file +{file_growth} B, chunks +{chunk_growth} B; "
        f"Python peak {peak / 2**20:.1f} MiB"
    )
    if chunk_growth:
        res.status, res.fatal = "MISS", True
    return res


def bench_artifact_read(tmp: str, size: dict[str, int], repeats: int) -> Result:
    mb = size["artifact_mb"]
    nbytes = mb * 2**20
    res = Result(
        "artifact_read",
        f"download_artifacts(): the same {mb} MB file",
        "MB/s",
        op=">=",
        threshold=0.06,
        target=">= 0.06x copyfile (neither fsyncs)",
    )
    src, path = os.path.join(tmp, "model.bin"), os.path.join(tmp, "x.db")
    _random_file(src, mb, seed=5000)
    tracker = Tracker(path)
    key = tracker.log_artifact(src)
    track_id = tracker.track_id
    tracker.close()
    out = os.path.join(tmp, "out")

    def download() -> list[str]:
        reader = Reader(path)
        try:
            return reader.download_artifacts(track_id, out)
        finally:
            reader.close()

    def x_run(r: int) -> float:
        written: list[list[str]] = []
        elapsed = _synced_timed(lambda: written.append(download()))
        assert len(written[0]) == 1 and os.path.getsize(written[0][0]) == nbytes
        _remove(*written[0])
        return elapsed

    def b_run(r: int) -> float:
        dst = os.path.join(tmp, f"b{r}.copy")
        elapsed = _synced_timed(lambda: shutil.copyfile(src, dst))
        assert os.path.getsize(dst) == nbytes
        _remove(dst)
        return elapsed

    xs, bs = alternate(repeats, x_run, b_run)
    rate_result(res, mb, xs, bs)

    # Untimed by the table: raw sqlite3 reading the same chunks, other ways to read, memory.
    raw_path, dst = os.path.join(tmp, "raw.db"), os.path.join(tmp, "raw.copy")
    _raw_chunks_write(src, raw_path)
    raw = []
    for _ in range(repeats):
        raw.append(_synced_timed(lambda: _raw_chunks_read(raw_path, dst)))
        assert os.path.getsize(dst) == nbytes
        _remove(dst)
    _remove(raw_path)
    hashing = min(_synced_timed(lambda: _blake2b_pass(src)) for _ in range(repeats))
    peak, written = _python_peak(download)
    _remove(*written)
    reader = Reader(path)
    in_memory = min(_synced_timed(lambda: reader.artifact(key)) for _ in range(repeats))

    def stream() -> None:
        with reader.open_artifact(key) as fh:
            while fh.read(2**20):
                pass

    streamed = min(_synced_timed(stream) for _ in range(repeats))
    reader.close()
    res.detail = (
        f"{min(xs):.2f}s vs {min(bs):.2f}s; ours = 1 BLAKE2b pass ({hashing:.2f}s) + reading; raw "
        f"sqlite3 reading the same chunks to a file {min(raw):.2f}s; Reader.artifact() {in_memory:.2f}s, "
        f"open_artifact() {streamed:.2f}s; Python peak {peak / 2**20:.1f} MiB"
    )
    return res


# -- multi-process: module-level so 'spawn' children can import it -------------


def _proc_rows(idx: int, n: int, new_every: int) -> list[dict[str, Any]]:
    """Process ``idx``'s rows: shared keys, its own key, and a new own key every ``new_every``."""
    return [
        {
            "step": i,
            "loss": 1.0 / (i + 1),
            f"p{idx}_score": float(i),
            f"p{idx}_k{i // new_every}": i,
        }
        for i in range(n)
    ]


def _proc_worker(kind: str, path: str, idx: int, n: int, new_every: int, barrier: Any, queue: Any) -> None:
    try:
        rows = _proc_rows(idx, n, new_every)
        barrier.wait(timeout=120)
        start = time.monotonic()
        if kind == "xetrack":
            tracker = Tracker(path, track_id=f"proc-{idx}")
            for row in rows:
                tracker.log(row)
            tracker.close()
        else:
            _raw_proc_logs(path, idx, rows)
        queue.put((idx, start, time.monotonic(), None))
    except BaseException:  # noqa: BLE001 - report any failure to the parent, never hang it
        queue.put((idx, None, None, traceback.format_exc()))


def _raw_retry(fn: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + 60
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(0.002)


def _raw_proc_logs(path: str, idx: int, rows: list[dict[str, Any]]) -> None:
    """The floor for the concurrent run: known keys are one INSERT, new ones ALTER first."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    _raw_retry(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
    conn.execute("PRAGMA synchronous=NORMAL")
    table = quote(TABLE)

    def create() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f'CREATE TABLE IF NOT EXISTS {table} ("timestamp" TEXT, "track_id" TEXT)')
        conn.execute(f'CREATE INDEX IF NOT EXISTS "ix_default_track_id" ON {table} ("track_id")')
        conn.execute("COMMIT")

    _raw_retry(create)
    clock, track_id = RawClock(), f"proc-{idx}"
    known: set[str] = set()
    types = {int: "INTEGER", float: "REAL"}
    for row in rows:
        keys = (*row, "timestamp", "track_id")
        values = (*row.values(), clock.now(), track_id)
        sql = insert_sql(keys)
        if known.issuperset(row):
            conn.execute(sql, values)
            continue
        conn.execute("BEGIN IMMEDIATE")  # waits in SQLite's busy handler
        have = {name for (name,) in conn.execute("SELECT name FROM pragma_table_info(?)", (TABLE,))}
        for key, value in row.items():
            if key not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {quote(key)} {types[type(value)]}")
        conn.execute(sql, values)
        conn.execute("COMMIT")
        known.update(row)
    conn.close()


def _run_procs(kind: str, path: str, size: dict[str, int]) -> float:
    procs, n, every = size["procs"], size["proc_logs"], size["proc_new_every"]
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=_proc_worker, args=(kind, path, i, n, every, barrier, queue)) for i in range(procs)]
    for w in workers:
        w.start()
    reports = []
    deadline = time.monotonic() + 300
    try:
        while len(reports) < procs:
            try:
                reports.append(queue.get(timeout=0.5))
                continue
            except queue_module.Empty:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} workers did not finish within 300s")
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if dead:  # a worker died without reporting (killed, or failed to start)
                raise RuntimeError(f"{kind} worker(s) died: exit codes {[w.exitcode for w in dead]}")
    finally:
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.kill()
    errors = [err for (_, _, _, err) in reports if err]
    if errors:
        raise RuntimeError(f"{kind} worker failed:\n" + "\n".join(errors))
    return max(end for (_, _, end, _) in reports) - min(start for (_, start, _, _) in reports)


def _check_procs(path: str, size: dict[str, int]) -> tuple[int, list[str]]:
    """Rows that arrived, and what is wrong: rows per run, and every own value in place."""
    procs, n, every = size["procs"], size["proc_logs"], size["proc_new_every"]
    problems = []
    conn = sqlite3.connect(path)
    try:
        total = conn.execute(f"SELECT count(*) FROM {quote(TABLE)}").fetchone()[0]
        for idx in range(procs):
            mine = conn.execute(
                f'SELECT count(*), count(DISTINCT "step"), count("p{idx}_score") FROM {quote(TABLE)} '
                "WHERE track_id = ?",
                (f"proc-{idx}",),
            ).fetchone()
            if mine != (n, n, n):
                problems.append(f"proc-{idx}: rows/steps/scores {mine}, want {n} each")
            for k in range((n + every - 1) // every):
                got = conn.execute(f'SELECT count("p{idx}_k{k}") FROM {quote(TABLE)}').fetchone()[0]
                want = min(every, n - k * every)
                if got != want:
                    problems.append(f"p{idx}_k{k}: {got} values, want {want}")
    finally:
        conn.close()
    return total, problems


def bench_processes(tmp: str, size: dict[str, int], repeats: int) -> Result:
    procs, n = size["procs"], size["proc_logs"]
    want = procs * n
    res = Result(
        "processes",
        f"{procs} processes x {n:,} logs, own new keys",
        "logs/s",
        op="==",
        threshold=want,
        target=f"{want:,} of {want:,} rows arrive",
    )
    arrived: list[int] = []
    problems: list[str] = []

    def x_run(r: int) -> float:
        path = os.path.join(tmp, f"x{r}.db")  # fresh: the workers create it
        elapsed = _run_procs("xetrack", path, size)
        total, wrong = _check_procs(path, size)
        arrived.append(total)
        problems.extend(f"repeat {r}: {p}" for p in wrong)
        return elapsed

    def b_run(r: int) -> float:
        path = os.path.join(tmp, f"b{r}.db")
        elapsed = _run_procs("raw", path, size)
        total, wrong = _check_procs(path, size)
        if total != want or wrong:
            raise RuntimeError(f"the raw baseline itself lost rows: {total} of {want}, {wrong[:5]}")
        return elapsed

    xs, bs = alternate(repeats, x_run, b_run)
    rate_result(res, want, xs, bs)
    res.detail = f"rows arrived per repeat: {arrived}"
    if problems:
        res.detail += "; " + "; ".join(problems[:10])
    if all(a == want for a in arrived) and not problems:
        res.status = "PASS"
    else:
        res.status, res.fatal = "MISS", True
    return res


# --------------------------------------------------------------------------- driver


# --------------------------------------------------------------------------- runs


def build_runs_db(path: str, runs: int, events: int, kinds: bool = True) -> None:
    """``runs`` finished runs of ``events`` rows each: 3 params, 3 metrics, a side-table row.

    The rows go in raw (a Tracker per run would take minutes at 100,000 runs). ``kinds``:
    the params and metrics recorded as the Tracker that logged them through ``params=``
    and ``log()`` records them; without, the file is one written before kinds were
    recorded (0.7.0, or another tool), whose split ``runs()`` guesses from the values."""
    Tracker(path).close()  # the table, index and pragmas as xetrack makes them
    if kinds:
        from xetrack import meta

        meta.record_kinds(open_engine(path), "default", ["model", "lr", "seed"], ["epoch", "acc", "loss"])
    conn = raw_connect(path)
    try:
        for name, decl in (
            ("model", "TEXT"),
            ("lr", "REAL"),
            ("seed", "INTEGER"),
            ("epoch", "INTEGER"),
            ("acc", "REAL"),
            ("loss", "REAL"),
        ):
            conn.execute(f'ALTER TABLE "default" ADD COLUMN "{name}" {decl}')
        rng = random.Random(0)
        rows = []
        side = []
        for r in range(runs):
            tid = f"run-{r:06d}"
            model, lr = rng.choice(("rf", "lr", "svm", "knn")), rng.choice((0.1, 0.01, 0.001))
            for e in range(events):
                stamp = f"2026-01-01 00:{(r // 60) % 60:02d}:{r % 60:02d}.{e:06d}"
                rows.append((stamp, tid, model, lr, r, e, rng.random(), rng.random()))
            side.append(
                (
                    tid,
                    "default",
                    "finished",
                    f"2026-01-01 00:00:{r % 60:02d}.000000",
                    f"2026-01-01 00:00:{r % 60:02d}.500000",
                    None,
                    1,
                    "bench",
                )
            )
        conn.execute("BEGIN")
        conn.executemany('INSERT INTO "default" VALUES (?, ?, ?, ?, ?, ?, ?, ?)', rows)
        conn.execute(
            'CREATE TABLE IF NOT EXISTS xetrack_runs ("track_id" TEXT NOT NULL, "table" TEXT NOT NULL, '
            '"status" TEXT, "start" TEXT, "end" TEXT, "error" TEXT, "pid" INTEGER, "host" TEXT, '
            'PRIMARY KEY ("track_id", "table"))'
        )
        conn.executemany("INSERT INTO xetrack_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", side)
        conn.execute("COMMIT")
    finally:
        conn.close()


# The query a user would write by hand: one GROUP BY with the same columns as runs()
# (max for params and metrics; runs() also works out which columns are which).
HAND_SUMMARY = (
    "SELECT t.track_id, r.status, min(t.timestamp), max(t.timestamp), count(*), max(t.model), max(t.lr), "
    'max(t.seed), max(t.epoch), max(t.acc), max(t.loss) FROM "default" t '
    "LEFT JOIN xetrack_runs r ON r.track_id = t.track_id AND r.\"table\" = 'default' GROUP BY t.track_id"
)


def _hand_frame(path: str, sql: str) -> pd.DataFrame:
    conn = sqlite3.connect(path)
    try:
        cur = conn.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
    finally:
        conn.close()


def _bench_runs(
    tmp: str,
    size: dict[str, int],
    repeats: int,
    name: str,
    label: str,
    ours: Callable[[Reader], pd.DataFrame],
    hand_sql: str,
    expect: int | None,
    threshold: float = 0.5,
    kinds: bool = True,
) -> Result:
    """The first call on a fresh file, as a new user's script pays it: every repeat times a
    new untouched copy of the file (copied untimed), for xetrack and for the hand query, so
    no run summary and no per-process cache exists yet."""
    pristine = os.path.join(tmp, f"{name}.db")
    build_runs_db(pristine, size["runs"], size["run_events"], kinds)
    res = Result(
        name,
        label,
        "queries/s",
        op=">=",
        threshold=threshold,
        target=f">= {threshold:g}x hand-written GROUP BY, first call",
    )
    copies = itertools.count()

    def fresh() -> str:
        path = os.path.join(tmp, f"{name}-fresh{next(copies)}.db")  # a path this process never read
        shutil.copyfile(pristine, path)
        return path

    def x_run(r: int) -> float:
        reader = Reader(fresh())
        out: list[pd.DataFrame] = []
        elapsed = timed(lambda: out.append(ours(reader)))
        reader.close()
        if expect is not None:
            assert len(out[0]) == expect, len(out[0])
        return elapsed

    def b_run(r: int) -> float:
        path = fresh()
        return timed(lambda: _hand_frame(path, hand_sql))

    warm = Reader(fresh())  # lazy imports and first-use costs are not what we measure
    ours(warm)
    warm.close()
    _hand_frame(fresh(), hand_sql)
    xs, bs = alternate(repeats, x_run, b_run)
    return rate_result(res, 1, xs, bs)


def bench_runs_summary(tmp: str, size: dict[str, int], repeats: int) -> list[Result]:
    res = _bench_runs(
        tmp,
        size,
        repeats,
        "runs",
        f"Reader.runs() first call: {size['runs']:,} runs x {size['run_events']}",
        lambda r: r.runs(),
        HAND_SUMMARY,
        size["runs"],
        threshold=1.0,
    )
    res.detail = (
        f"first runs() on a fresh file {min(res.xetrack_seconds):.3f}s (the plain SQL: a process's "
        "second call builds the run summary), "
        f"hand GROUP BY {min(res.baseline_seconds):.3f}s"
    )
    older = _bench_runs(
        tmp,
        size,
        repeats,
        "runs_guess",
        "  the same, a file with no recorded kinds (0.7.0)",
        lambda r: r.runs(),
        HAND_SUMMARY,
        size["runs"],
        threshold=0.8,
        kinds=False,
    )
    older.detail = (
        f"params guessed on a sample of runs and checked in the same pass: {min(older.xetrack_seconds):.3f}s, "
        f"hand GROUP BY {min(older.baseline_seconds):.3f}s"
    )
    return [res, older]


def bench_runs_search(tmp: str, size: dict[str, int], repeats: int) -> Result:
    hand = (
        f'SELECT * FROM ({HAND_SUMMARY}) WHERE "max(t.acc)" > 0.5 AND "max(t.model)" = \'rf\' '
        'ORDER BY "max(t.loss)" DESC LIMIT 100'
    )
    return _bench_runs(
        tmp,
        size,
        repeats,
        "search",
        f"Reader.search() first call: {size['runs']:,} runs x {size['run_events']}",
        lambda r: r.search("metrics.acc > 0.5 and params.model = 'rf'", order_by="-loss", limit=100, agg="max"),
        hand,
        None,
    )


def bench_runs_big(tmp: str, size: dict[str, int], repeats: int) -> list[Result]:
    path = os.path.join(tmp, "big.db")
    build_runs_db(path, size["big_runs"], size["big_run_events"])
    res = Result(
        "runs_big",
        f"Reader.runs() first call: {size['big_runs']:,} runs x {size['big_run_events']}, peak memory",
        "MiB",
        op="<=",
        threshold=2.0,
        target="completes; <= 2x hand query peak",
    )
    small = os.path.join(tmp, "small.db")  # lazy imports on another file: the big one stays fresh
    build_runs_db(small, 10, 2)
    Reader(small).runs()
    gc.collect()
    reader = Reader(path)
    tracemalloc.start()
    t0 = time.perf_counter()
    frame = reader.runs()
    seconds = time.perf_counter() - t0
    _, x_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    reader.close()
    assert len(frame) == size["big_runs"]
    del frame
    gc.collect()
    tracemalloc.start()
    _hand_frame(path, HAND_SUMMARY)
    _, b_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    res.xetrack, res.baseline, res.ratio = x_peak / 2**20, b_peak / 2**20, x_peak / b_peak
    res.detail = f"runs() of {size['big_runs']:,} runs took {seconds:.2f}s, peak {x_peak / 2**20:.1f} MiB"
    return [res, _summary_build(tmp, path, size, b_peak)]


def _summary_build(tmp: str, path: str, size: dict[str, int], hand_peak: int) -> Result:
    """The run summary built from scratch over the big file (a process's second runs()):
    streamed in chunks of rows, so its peak memory does not grow with the table; the
    progress bar shows on stderr once it has taken 2 s. Timed on one copy, its memory
    traced on another (tracing slows Python down)."""
    n = size["big_runs"] * size["big_run_events"]
    res = Result(
        "summary_build",
        f"  run summary built from scratch: {n:,} rows, peak memory",
        "MiB",
        op="<=",
        threshold=2.0,
        target="bounded; <= 2x hand query peak",
    )
    timed_copy, traced_copy = os.path.join(tmp, "build-timed.db"), os.path.join(tmp, "build-traced.db")
    shutil.copyfile(path, timed_copy)
    shutil.copyfile(path, traced_copy)

    def one_more_row(db: str) -> None:  # else the second call is answered from the process's cache
        with Tracker(db, params={"model": "rf", "lr": 0.1, "seed": 1}) as tracker:
            tracker.log({"epoch": 0, "acc": 0.5, "loss": 0.5})

    reader = Reader(timed_copy)
    reader.runs()  # the process's first call on this file: the plain SQL
    one_more_row(timed_copy)
    t0 = time.perf_counter()
    frame = reader.runs()  # builds the summary, then answers from it
    seconds = time.perf_counter() - t0
    reader.close()
    assert len(frame) == size["big_runs"] + 1
    del frame
    built = _sql_value(timed_copy, "SELECT count(*) FROM xetrack_summary_runs")
    assert built == size["big_runs"] + 1, built
    reader = Reader(traced_copy)
    reader.runs()
    one_more_row(traced_copy)
    gc.collect()
    tracemalloc.start()
    reader.runs()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    reader.close()
    res.xetrack, res.baseline, res.ratio = peak / 2**20, hand_peak / 2**20, peak / hand_peak
    res.detail = (
        f"summary build + runs() of {n:,} rows took {seconds:.2f}s ({n / seconds:,.0f} rows/s), "
        f"peak {peak / 2**20:.1f} MiB (the frame of {size['big_runs']:,} runs included)"
    )
    return res


def bench_runs_again(tmp: str, size: dict[str, int], repeats: int) -> Result:
    """runs() on a file whose summary is built, after 100 more rows were logged (another Tracker)."""
    path = os.path.join(tmp, "runs.db")
    build_runs_db(path, size["runs"], size["run_events"])
    res = Result(
        "runs_again",
        f"Reader.runs() after 100 more rows: {size['runs']:,} runs x {size['run_events']}",
        "queries/s",
        op=">=",
        threshold=20.0,
        target=">= 20x hand-written GROUP BY",
    )
    reader = Reader(path)
    first = timed(reader.runs)  # a process's first call: the plain SQL, no summary built
    tracker = Tracker(path, params={"model": "rf", "lr": 0.1, "seed": 1})
    tracker.log({"epoch": 0, "acc": 0.5, "loss": 0.5})
    build = timed(reader.runs)  # the second call builds the summary

    def x_run(r: int) -> float:
        for e in range(100):
            tracker.log({"epoch": e, "acc": 0.5, "loss": 0.5})
        return timed(reader.runs)

    def b_run(r: int) -> float:
        return timed(lambda: _hand_frame(path, HAND_SUMMARY))

    xs, bs = alternate(repeats, x_run, b_run)
    reader.close()
    tracker.close()
    res = rate_result(res, 1, xs, bs)
    res.detail = (
        f"first runs() on the fresh file {first:.3f}s (plain SQL), second {build:.3f}s (builds the "
        f"summary), after 100 rows {min(xs):.4f}s, hand {min(bs):.3f}s"
    )
    return res


def bench_search_warm(tmp: str, size: dict[str, int], repeats: int) -> Result:
    hand = (
        f'SELECT * FROM ({HAND_SUMMARY}) WHERE "max(t.loss)" < 0.1 AND "max(t.model)" = \'m3\' '
        'ORDER BY "max(t.acc)" DESC LIMIT 10'
    )
    path = os.path.join(tmp, "runs.db")
    build_runs_db(path, size["runs"], size["run_events"])
    res = Result(
        "search_warm",
        f"Reader.search() warm: {size['runs']:,} runs x {size['run_events']}",
        "queries/s",
        op=">=",
        threshold=20.0,
        target=">= 20x hand-written GROUP BY",
    )
    reader = Reader(path)

    def ours() -> Any:
        return reader.search("loss < 0.1 and model = 'm3'", order_by="acc DESC", limit=10)

    ours()  # the process's first call: the plain SQL
    with Tracker(path, params={"model": "m3"}) as tracker:
        tracker.log({"acc": 0.5, "loss": 0.5})
    ours()  # builds the summary
    ours()
    xs, bs = alternate_calls(repeats, ours, lambda: _hand_frame(path, hand))
    reader.close()
    return rate_result(res, 1, xs, bs)


def bench_history(tmp: str, size: dict[str, int], repeats: int) -> Result:
    """history('loss', track_id=one_run) against the bare indexed SELECT of the same run,
    both on an open connection, in a table of xetrack's layout (track_id index)."""
    runs, per_run = size["history_runs"], size["history_steps"]
    n = runs * per_run
    res = Result(
        "history",
        f"history(): 1 run of {n:,} rows ({per_run:,} steps)",
        "queries/s",
        op=">=",
        threshold=0.8,
        target=">= 0.8x SELECT step, loss WHERE track_id=?",
    )
    path = os.path.join(tmp, "history.db")
    conn = raw_create(path, xetrack_schema(tmp, {"step": 0, "loss": 0.5}))
    rnd = random.Random(7)
    rows = (
        (f"2026-01-01 00:00:00.{i % 1_000_000:06d}", f"run-{i // per_run:05d}", i % per_run, rnd.random())
        for i in range(n)
    )
    conn.execute("BEGIN")
    conn.executemany(insert_sql(["timestamp", "track_id", "step", "loss"]), rows)
    conn.execute("COMMIT")
    conn.close()
    one = f"run-{runs // 2:05d}"
    reader = Reader(path)
    bare = raw_connect(path)
    sql = f"SELECT step, loss FROM {quote(TABLE)} WHERE track_id = ?"
    # Both sides answer the same thing (checked before timing): the run's steps and losses.
    frame, expected = reader.history("loss", track_id=one), bare.execute(sql, (one,)).fetchall()
    assert len(expected) == per_run and list(frame.columns) == ["track_id", "step", "value"]
    assert list(zip(frame["step"].tolist(), frame["value"].tolist())) == expected
    assert (frame["track_id"] == one).all()
    del frame, expected

    def calls(fn: Callable[[], Any]) -> Callable[[int], float]:
        # A sample is HISTORY_CALLS calls in a row, as a dashboard or a notebook loop makes
        # them: one 4 ms call straight after the gc.collect() of timed() mostly measures
        # caches refilling.
        return lambda r: timed(lambda: [fn() for _ in range(HISTORY_CALLS)]) / HISTORY_CALLS

    xs, bs = alternate(
        read_repeats(repeats),
        calls(lambda: reader.history("loss", track_id=one)),
        calls(lambda: bare.execute(sql, (one,)).fetchall()),
    )
    reader.close()
    bare.close()
    return rate_result(res, 1, xs, bs)


def _ui_client(path: str) -> Any:
    """Starlette's TestClient over the dashboard of ``path``: requests without sockets."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from xetrack.ui.app import create_app

    return TestClient(create_app(lambda table: Reader(path, table=table, persist_summary=False)))


def bench_ui_runs(tmp: str, size: dict[str, int], repeats: int) -> Result:
    """The dashboard's runs endpoint (one page of 100, filtered and sorted, as JSON) against
    Reader.search() of the same filter and order, both warm, in one process."""
    path = os.path.join(tmp, "runs.db")
    build_runs_db(path, size["runs"], size["run_events"])
    res = Result(
        "ui_runs",
        f"xt ui /api/runs, 1 page of 100: {size['runs']:,} runs x {size['run_events']}",
        "queries/s",
        op=">=",
        threshold=0.5,
        target=">= 0.5x Reader.search() (<= 2x its time)",
    )
    where, order = "metrics.acc > 0.2 and params.model = 'rf'", "-loss"
    client, reader = _ui_client(path), Reader(path, persist_summary=False)  # as the dashboard reads

    def ours() -> Any:
        body = client.get("/api/runs", params={"filter": where, "sort": order, "size": 100}).json()
        assert len(body["rows"]) == min(100, body["total"])
        return body

    def theirs() -> Any:
        return reader.search(where, order_by=order)

    assert ours()["total"] == len(theirs()) > 100
    xs, bs = alternate_calls(read_repeats(repeats), ours, theirs)
    client.close()
    reader.close()
    res = rate_result(res, 1, xs, bs)
    res.detail = f"endpoint {min(xs) * 1000:.1f} ms, search() {min(bs) * 1000:.1f} ms"
    return res


def bench_ui_curve(tmp: str, size: dict[str, int], repeats: int) -> Result:
    """The curve endpoint on one run of ``curve_points`` points (downsampled to <= 4,000)
    against reading that run's column with Reader.history()."""
    n = size["curve_points"]
    res = Result(
        "ui_curve",
        f"xt ui /api/curve: 1 run of {n:,} points",
        "queries/s",
        op=">=",
        threshold=2.0,
        target="<= 4,000 points; >= 2x Reader.history() (<= 0.5x its time)",
    )
    path = os.path.join(tmp, "curve.db")
    conn = raw_create(path, xetrack_schema(tmp, {"step": 0, "loss": 0.5}))
    rnd = random.Random(3)
    rows = (
        (f"2026-01-01 00:00:00.{i % 1_000_000:06d}", "run-big" if i % 2 else "run-other", i // 2, rnd.random())
        for i in range(2 * n)
    )
    conn.execute("BEGIN")
    conn.executemany(insert_sql(["timestamp", "track_id", "step", "loss"]), rows)
    conn.execute("COMMIT")
    conn.close()
    client, reader = _ui_client(path), Reader(path)

    def ours() -> Any:
        body = client.get("/api/curve", params={"run": "run-big", "metric": "loss"}).json()
        assert body["n"] == n and len(body["x"]) <= 4000, (body["n"], len(body["x"]))
        return body

    def theirs() -> Any:
        return reader.history("loss", track_id="run-big")

    points = len(ours()["x"])
    theirs()
    xs, bs = alternate_calls(read_repeats(repeats), ours, theirs)
    client.close()
    reader.close()
    res = rate_result(res, 1, xs, bs)
    res.detail = f"endpoint {min(xs) * 1000:.0f} ms for {points:,} points, history() {min(bs) * 1000:.0f} ms"
    return res


def bench_ui_live(tmp: str, size: dict[str, int], repeats: int) -> Result:
    """The live update of a run page after 10 new rows in a run of ``live_rows`` rows: the
    bytes of the rows-after-cursor answer against those of the whole run's rows."""
    n = size["live_rows"]
    path = os.path.join(tmp, "live.db")
    res = Result(
        "ui_live",
        f"xt ui live update: 10 new rows in a {n:,}-row run",
        "bytes",
        op="<=",
        threshold=0.01,
        target="transfers only the new rows (<= 1% of the run)",
    )
    tracker = Tracker(path, params={"model": "rf"})
    tracker.log_batch([{"step": i, "loss": 1 / (i + 1)} for i in range(n)])
    client = _ui_client(path)
    cursor = client.get("/api/rows", params={"run": tracker.track_id, "after": 0, "size": 1000}).json()
    while cursor["rows"]:
        cursor = client.get(
            "/api/rows", params={"run": tracker.track_id, "after": cursor["cursor"], "size": 1000}
        ).json()
    for i in range(10):
        tracker.log({"step": n + i, "loss": 0.0})
    fresh = client.get("/api/rows", params={"run": tracker.track_id, "after": cursor["cursor"], "size": 1000})
    assert len(fresh.json()["rows"]) == 10
    whole = sum(
        len(client.get("/api/rows", params={"run": tracker.track_id, "page": p, "size": 1000}).content)
        for p in range(math.ceil((n + 10) / 1000))
    )
    client.close()
    tracker.close()
    res.xetrack, res.baseline = float(len(fresh.content)), float(whole)
    res.ratio = res.xetrack / res.baseline
    res.detail = f"{len(fresh.content):,} bytes for the 10 new rows; the whole run is {whole:,} bytes"
    return res


def bench_ui_first_load(tmp: str, size: dict[str, int], repeats: int) -> Result:
    """The runs page of the dashboard in headless Chromium: the time from navigation to a
    visible table of the first 100 of ``runs`` runs, against fetching and parsing the same
    JSON in a bare page of the same server (the network and the server's share)."""
    from playwright.sync_api import sync_playwright

    from xetrack.ui import serve_in_thread

    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        raise RuntimeError(f"no Chromium at {chromium}: apt-get install chromium")
    path = os.path.join(tmp, "runs.db")
    build_runs_db(path, size["runs"], size["run_events"])
    res = Result(
        "ui_first_load",
        f"xt ui runs page in Chromium: {size['runs']:,} runs",
        "ms",
        op=">=",
        threshold=0.0,
        target="report: time to a visible table vs the bare JSON",
    )
    dashboard = serve_in_thread(lambda table: Reader(path, table=table, persist_summary=False), port=0)
    base = dashboard.url.split("/runs")[0]
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=args, headless=True)
            page = browser.new_page()

            def x_run(r: int) -> float:
                start = time.perf_counter()
                page.goto(base + "/runs")
                page.wait_for_selector("#runs tbody tr:nth-child(100)")
                return time.perf_counter() - start

            def b_run(r: int) -> float:
                page.goto(base + "/static/app.css")  # a bare document of the same origin
                start = time.perf_counter()
                rows = page.evaluate("async () => (await (await fetch('/api/runs?size=100')).json()).rows.length")
                assert rows == 100
                return time.perf_counter() - start

            x_run(0), b_run(0)  # Chromium's own first start is not what we measure
            xs, bs = alternate(read_repeats(repeats), x_run, b_run)
            browser.close()
    finally:
        dashboard.stop()
    res.xetrack_seconds, res.baseline_seconds = xs, bs
    res.xetrack, res.baseline = min(xs) * 1000, min(bs) * 1000
    res.ratio = res.xetrack / res.baseline
    res.detail = (
        f"page to a visible table {res.xetrack:.0f} ms; the same /api/runs JSON fetched and parsed in a "
        f"bare page {res.baseline:.0f} ms"
    )
    return res


def judge(res: Result) -> None:
    if res.status != "-" or res.ratio is None:
        return
    ok = res.ratio >= res.threshold if res.op == ">=" else res.ratio <= res.threshold
    res.status = "PASS" if ok else "MISS"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    return f"{value:,.0f} {unit}"


def print_table(results: list[Result]) -> None:
    head = ("workload", "xetrack", "baseline", "ratio", "target", "result")
    lines = [
        (
            r.workload,
            fmt_value(r.xetrack, r.unit),
            fmt_value(r.baseline, r.unit),
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
            r.target,
            r.status,
        )
        for r in results
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    right = {1, 2, 3}

    def row(cells: tuple[str, ...]) -> str:
        return " | ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    print(row(head))
    print("-+-".join("-" * w for w in widths))
    for line in lines:
        print(row(line))
    notes = [f"  {r.name}: {r.detail}" for r in results if r.detail]
    notes += [f"  {r.name}: CRASH: {r.error.strip().splitlines()[-1]}" for r in results if r.error]
    if notes:
        print("notes:")
        print("\n".join(notes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and one repeat: a smoke check")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timing repeats, best kept (default 3; 1 with --quick)"
    )
    parser.add_argument("--only", default="", help="comma-separated workload names to run")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    repeats = args.repeats or (1 if args.quick else 3)
    only = {name.strip() for name in args.only.split(",") if name.strip()}

    started = time.perf_counter()
    print(
        f"xetrack benchmark ({'quick' if args.quick else 'full'}, best of {repeats}): "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"pandas {pd.__version__}, duckdb {duckdb.__version__}, {os.cpu_count()} CPUs",
        flush=True,
    )

    results: list[Result] = []
    read_data: dict[str, ReadData] = {}
    read_tmp = tempfile.mkdtemp(prefix="xetrack-bench-read-")

    def read_fixture() -> ReadData:
        if "data" not in read_data:
            read_data["data"] = ReadData(read_tmp, size)
        return read_data["data"]

    workloads: list[tuple[str, str, Callable[[], Any]]] = []

    def in_tmp(fn: Callable[[str, dict[str, int], int], Any]) -> Callable[[], Any]:
        def run() -> Any:
            tmp = tempfile.mkdtemp(prefix="xetrack-bench-")
            try:
                return fn(tmp, size, repeats)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        return run

    workloads = [
        ("log", f"log(): {size['log']:,} calls x 10 keys", in_tmp(bench_log)),
        ("log_batch", f"log_batch(): {size['batch']:,} rows x 10 keys", in_tmp(bench_log_batch)),
        (
            "read_sqlite",
            f"Reader.to_df() sqlite: {size['read']:,} rows",
            lambda: bench_read_sqlite(read_fixture(), repeats),
        ),
        (
            "read_duckdb",
            f"Reader.to_df() duckdb: {size['read']:,} rows",
            lambda: bench_read_duckdb(read_fixture(), repeats),
        ),
        ("new_keys", f"log() adding a new key each: {size['new_keys']:,} keys", in_tmp(bench_new_keys)),
        ("many_trackers", f"{size['trackers']:,} Trackers x {size['tracker_logs']} logs", in_tmp(bench_many_trackers)),
        ("log_system", f"log() with system readings: {size['log']:,} calls", in_tmp(bench_log_system)),
        ("processes", f"{size['procs']} processes x {size['proc_logs']:,} logs", in_tmp(bench_processes)),
        (
            "read_memory",
            f"peak memory, sqlite read of {size['read']:,} rows",
            lambda: bench_read_memory(read_fixture(), repeats),
        ),
        ("assets", f"log() of a {size['asset_mb']} MB object, twice", in_tmp(bench_assets)),
        ("artifact_write", f"log_artifact(): a {size['artifact_mb']} MB file", in_tmp(bench_artifact_write)),
        ("artifact_read", f"download_artifacts(): a {size['artifact_mb']} MB file", in_tmp(bench_artifact_read)),
        ("track", f"track() of an empty function: {size['track']:,} calls", in_tmp(bench_track)),
        ("jsonl", f"log() with a JSONL sink: {size['jsonl']:,} calls", in_tmp(bench_jsonl)),
        ("runs", f"Reader.runs(): {size['runs']:,} runs", in_tmp(bench_runs_summary)),
        ("search", f"Reader.search(): {size['runs']:,} runs", in_tmp(bench_runs_search)),
        ("runs_big", f"Reader.runs(): {size['big_runs']:,} runs, peak memory", in_tmp(bench_runs_big)),
        (
            "history",
            f"history(): one run of {size['history_runs'] * size['history_steps']:,} rows",
            in_tmp(bench_history),
        ),
        ("runs_again", f"Reader.runs() after 100 more rows: {size['runs']:,} runs", in_tmp(bench_runs_again)),
        ("search_warm", f"Reader.search() warm: {size['runs']:,} runs", in_tmp(bench_search_warm)),
        ("ui_runs", f"xt ui /api/runs: {size['runs']:,} runs", in_tmp(bench_ui_runs)),
        ("ui_curve", f"xt ui /api/curve: {size['curve_points']:,} points", in_tmp(bench_ui_curve)),
        ("ui_live", f"xt ui live update in a {size['live_rows']:,}-row run", in_tmp(bench_ui_live)),
        ("ui_first_load", f"xt ui runs page in Chromium: {size['runs']:,} runs", in_tmp(bench_ui_first_load)),
    ]
    unknown = only - {name for name, _, _ in workloads}
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; choose from {[n for n, _, _ in workloads]}")

    try:
        for name, label, run in workloads:
            if only and name not in only:
                continue
            t0 = time.perf_counter()
            try:
                out = run()
                rows = out if isinstance(out, list) else [out]  # a workload may print extra rows
                for one in rows:
                    judge(one)
            except Exception:  # noqa: BLE001 - a crashed workload is a CRASH row; the others still run
                rows = [Result(name, label, "", status="CRASH", error=traceback.format_exc())]
                print(f"[{name}] CRASHED:\n{rows[0].error}", file=sys.stderr, flush=True)
            results.extend(rows)
            print(f"  ... {name}: {rows[0].status} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(read_tmp, ignore_errors=True)

    total = time.perf_counter() - started
    print()
    print_table(results)
    print(f"total time: {total:.1f}s", flush=True)

    if args.json:
        payload = {
            "quick": args.quick,
            "repeats": repeats,
            "sizes": size,
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "pandas": pd.__version__,
            "duckdb": duckdb.__version__,
            "cpus": os.cpu_count(),
            "total_seconds": total,
            "results": [asdict(r) for r in results],
        }
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=2)

    failed = [r.name for r in results if r.status == "CRASH" or r.fatal]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
