"""Any number of keys (issue 24): a Tracker logging the same 3,000 keys every step, and
``to_df()`` of 10,000 such rows, each against the bare operation on a narrow
``(row, key, value)`` table, the layout a tracker with no column limit would use:

- ``log()``: the floor inserts the same 3,000 values, pre-built as tuples, into the narrow
  table with one cached statement (``executemany``) and one commit per step;
- ``to_df()``: the floor reads the narrow table holding the same values and pivots it
  with pandas (``DataFrame.pivot``), keys as columns.

Run with ``make bench`` (or ``.venv/bin/python tests/benchmarks/bench_keys.py [--quick]``).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time

import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Result, print_table

from xetrack import Reader, Tracker

FULL = {"keys": 3000, "steps": 200, "rows": 10_000}
QUICK = {"keys": 3000, "steps": 30, "rows": 1_000}
NARROW = (
    'CREATE TABLE narrow ("row" INTEGER NOT NULL, "key" TEXT NOT NULL, "value", PRIMARY KEY ("row", "key")) '
    "WITHOUT ROWID"
)


def narrow_db(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(NARROW)
    return conn


def bench_log(tmp: str, size: dict[str, int], repeats: int) -> Result:
    keys = [f"class_{i}_f1" for i in range(size["keys"])]
    rnd = random.Random(0)
    rows = [{k: rnd.random() for k in keys} for _ in range(size["steps"])]
    res = Result(
        "keys_log",
        f"log() of {size['keys']:,} keys, {size['steps']} steps",
        "logs/s",
        op=">=",
        threshold=0.8,
        target=">= 0.8x a bare narrow INSERT",
    )
    xs, bs = [], []
    for r in range(repeats):
        path = os.path.join(tmp, f"log{r}.db")
        tracker = Tracker(path, params={"model": "m"})
        tracker.log(rows[0])  # the keys' columns and spill made once, as a run's first step does
        gc.collect()
        start = time.perf_counter()
        for row in rows:
            tracker.log(row)
        xs.append(time.perf_counter() - start)
        tracker.close()
        conn = narrow_db(os.path.join(tmp, f"narrow{r}.db"))
        tuples = [[(i, k, row[k]) for k in keys] for i, row in enumerate(rows)]
        insert = 'INSERT INTO narrow ("row", "key", "value") VALUES (?, ?, ?)'
        gc.collect()
        start = time.perf_counter()
        for step in tuples:
            conn.execute("BEGIN")
            conn.executemany(insert, step)
            conn.execute("COMMIT")
        bs.append(time.perf_counter() - start)
        conn.close()
    res.xetrack, res.baseline = size["steps"] / min(xs), size["steps"] / min(bs)
    res.ratio = res.xetrack / res.baseline
    res.detail = (
        f"{min(xs) / size['steps'] * 1000:.1f} ms per log() (columns for the first keys, the rest "
        f"spilled); the narrow floor {min(bs) / size['steps'] * 1000:.1f} ms per step"
    )
    return res


def bench_read(tmp: str, size: dict[str, int], repeats: int) -> Result:
    keys = [f"class_{i}_f1" for i in range(size["keys"])]
    n = size["rows"]
    res = Result(
        "keys_to_df",
        f"to_df() of {n:,} rows x {size['keys']:,} keys",
        "rows/s",
        op=">=",
        threshold=1.0,
        target=">= 1.0x narrow read + pandas pivot",
    )
    path = os.path.join(tmp, "read.db")
    tracker = Tracker(path, params={"model": "m"})
    rnd = random.Random(1)
    for start in range(0, n, 500):
        tracker.log_batch([{k: rnd.random() for k in keys} for _ in range(min(500, n - start))])
    tracker.close()
    frame = Reader(path).to_df()
    conn = narrow_db(os.path.join(tmp, "narrow.db"))
    conn.execute("BEGIN")
    values = frame[keys].to_numpy()
    for i in range(n):
        conn.executemany("INSERT INTO narrow VALUES (?, ?, ?)", [(i, k, float(v)) for k, v in zip(keys, values[i])])
    conn.execute("COMMIT")
    conn.close()
    del frame, values
    xs, bs = [], []

    def ours() -> None:
        out = Reader(path).to_df()
        assert out.shape == (n, 2 + size["keys"] + 1)

    def floor() -> None:
        c = sqlite3.connect(os.path.join(tmp, "narrow.db"))
        rows = c.execute('SELECT "row", "key", "value" FROM narrow').fetchall()
        c.close()
        long = pd.DataFrame(rows, columns=["row", "key", "value"])
        del rows
        wide = long.pivot(index="row", columns="key", values="value")
        assert wide.shape == (n, size["keys"])

    for _ in range(repeats):
        for fn, out in ((ours, xs), (floor, bs)):
            gc.collect()
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    res.xetrack, res.baseline = n / min(xs), n / min(bs)
    res.ratio = res.xetrack / res.baseline
    res.detail = f"to_df() {min(xs):.1f} s; the narrow read and pivot {min(bs):.1f} s"
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    repeats = args.repeats or (1 if args.quick else 3)
    tmp = tempfile.mkdtemp(prefix="xetrack-bench-keys-")
    try:
        results = [bench_log(tmp, size, repeats), bench_read(tmp, size, max(1, repeats - 1))]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for res in results:
        res.status = "PASS" if res.ratio is not None and res.ratio >= res.threshold else "MISS"
    print(f"xetrack keys benchmark ({'quick' if args.quick else 'full'}, best of {repeats}), {os.cpu_count()} CPUs")
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
