"""xetrack on PostgreSQL against raw psycopg, on one throwaway local server.

Run with ``make bench`` (after bench.py) or ``.venv/bin/python tests/benchmarks/bench_postgres.py``.
Needs Debian's ``postgresql`` package (the server of tests/pg_server.py); without it,
it says so and exits 0.

Each workload runs through xetrack and through its floor in the same run, into fresh
databases of the same server, best of ``--repeats`` (default 3):

| workload | floor | target |
|---|---|---|
| 5,000 ``log()`` of 10 keys | psycopg INSERT, autocommit (one commit per row) | >= 0.7x |
| ``log_batch`` of 100,000 rows | psycopg ``COPY`` of the same tuples (text; binary reported too) | >= 0.7x |
| 8 processes x 1,000 logs, each adding keys | none: rows/s, and 8,000 of 8,000 rows | all rows |
| ``Reader.to_df()`` of 200,000 rows | ``pandas.read_sql`` through psycopg | >= 0.8x |
| ``xetrack.copy`` of a 200,000-row SQLite file | ``COPY`` of the same rows | reported |

The floor tables have the same columns and the same ``track_id`` index.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for pg_server

COLUMNS = ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")
DDL = (
    'CREATE TABLE "raw" ("id" BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "timestamp" TEXT, '
    '"track_id" TEXT, "overflow" JSONB, '
    + ", ".join(f'"{c}" {t}' for c, t in zip(COLUMNS, ["BIGINT", "DOUBLE PRECISION", "TEXT"] * 3 + ["BIGINT"]))
    + ")"
)


BINARY_TYPES = ["text", "text"] + ["int8", "float8", "text"] * 3 + ["int8"]


def row(k: int) -> dict:
    return {c: (k if j % 3 == 0 else (k / 7 if j % 3 == 1 else f"s{k % 97}")) for j, c in enumerate(COLUMNS)}


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        times.append(fn())
    return min(times)


def _worker(url: str, w: int, n: int, out) -> None:
    from xetrack import Tracker

    tracker = Tracker(url, params={"worker": w})
    for i in range(n):
        tracker.log({"i": i, f"w{w}_{i // 250}": i})
    out.put(w)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from pg_server import PACKAGE_HINT, PgServer, find_bin

    if find_bin("initdb") is None:
        print(f"bench_postgres: skipped. {PACKAGE_HINT}")
        return 0
    import pandas as pd
    import psycopg

    import xetrack
    from xetrack import Reader, Tracker

    warnings.simplefilter("ignore", UserWarning)  # read_sql on a psycopg connection
    n_log, n_batch, n_read, n_procs = (500, 10_000, 20_000, 200) if args.quick else (5_000, 100_000, 200_000, 1_000)
    repeats = 1 if args.quick else args.repeats
    server = PgServer.start()
    results = []
    try:
        stamp = "2026-11-30 12:00:00.000000"

        def raw_log() -> float:
            url = server.create_database()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(DDL)
                conn.execute('CREATE INDEX ON "raw" ("track_id")')
                columns, marks = ", ".join(COLUMNS), ", ".join(["%s"] * 12)
                sql = f'INSERT INTO "raw" ("timestamp", "track_id", {columns}) VALUES ({marks})'
                rows = [(stamp, "run", *row(k).values()) for k in range(n_log)]
                t0 = time.perf_counter()
                for values in rows:
                    conn.execute(sql, values, prepare=True)
                return time.perf_counter() - t0

        def xt_log() -> float:
            tracker = Tracker(server.create_database())
            data = [row(k) for k in range(n_log)]
            t0 = time.perf_counter()
            for d in data:
                tracker.log(d)
            return time.perf_counter() - t0

        results.append(
            (f"{n_log:,} log() of 10 keys", n_log / best(xt_log, repeats), n_log / best(raw_log, repeats), 0.7)
        )

        def raw_copy(n: int, binary: bool = False) -> float:
            url = server.create_database()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(DDL)
                conn.execute('CREATE INDEX ON "raw" ("track_id")')
                tuples = [(stamp, "run", *row(k).values()) for k in range(n)]  # pre-built: the bare COPY
                query = f'COPY "raw" ("timestamp", "track_id", {", ".join(COLUMNS)}) FROM STDIN'
                t0 = time.perf_counter()
                with conn.transaction(), conn.cursor().copy(query + (" (FORMAT BINARY)" if binary else "")) as copy:
                    if binary:
                        copy.set_types(BINARY_TYPES)
                    write = copy.write_row
                    for values in tuples:
                        write(values)
                return time.perf_counter() - t0

        def xt_batch() -> float:
            tracker = Tracker(server.create_database())
            data = [row(k) for k in range(n_batch)]
            t0 = time.perf_counter()
            tracker.log_batch(data)
            return time.perf_counter() - t0

        results.append(
            (
                f"log_batch of {n_batch:,} rows",
                n_batch / best(xt_batch, repeats),
                n_batch / best(lambda: raw_copy(n_batch), repeats),
                0.7,
            )
        )
        binary_floor = n_batch / best(lambda: raw_copy(n_batch, binary=True), repeats)
        print(
            f"log_batch of {n_batch:,} rows against binary COPY (set_types, {binary_floor:,.0f} rows/s): "
            f"{results[-1][1] / binary_floor:.2f}x"
        )

        url = server.create_database()
        Tracker(url).log_batch([row(k) for k in range(n_read)])

        def xt_read() -> float:
            t0 = time.perf_counter()
            assert len(Reader(url).to_df()) == n_read
            return time.perf_counter() - t0

        def raw_read() -> float:
            with psycopg.connect(url) as conn:
                t0 = time.perf_counter()
                assert len(pd.read_sql('SELECT * FROM "default"', conn)) == n_read
                return time.perf_counter() - t0

        results.append(
            (f"to_df() of {n_read:,} rows", n_read / best(xt_read, repeats), n_read / best(raw_read, repeats), 0.8)
        )

        url = server.create_database()
        Tracker(url).log({"i": -1})
        queue = mp.get_context("spawn").Queue()
        procs = [mp.get_context("spawn").Process(target=_worker, args=(url, w, n_procs, queue)) for w in range(8)]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        for _ in procs:
            queue.get(timeout=600)
        elapsed = time.perf_counter() - t0
        for p in procs:
            p.join()
        stored = len(Reader(url)) - 1
        print(
            f"8 processes x {n_procs:,} logs adding keys: {stored:,} of {8 * n_procs:,} rows, "
            f"{stored / elapsed:,.0f} rows/s"
        )
        lost = stored != 8 * n_procs

        with tempfile.TemporaryDirectory() as folder:
            source = os.path.join(folder, "laptop.db")
            Tracker(source).log_batch([row(k) for k in range(n_read)])
            target = server.create_database()
            t0 = time.perf_counter()
            copied = xetrack.copy(source, target)
            elapsed = time.perf_counter() - t0
            floor = raw_copy(n_read)
        print(
            f"xetrack.copy of a {n_read:,}-row SQLite file: {copied / elapsed:,.0f} rows/s, "
            f"{(copied / elapsed) / (n_read / floor):.2f}x COPY of the same rows"
        )
    finally:
        server.stop()
    print("\n| workload | xetrack rows/s | floor rows/s | ratio | target |\n|---|---|---|---|---|")
    for name, xt, floor, target in results:
        ratio = xt / floor
        print(
            f"| {name} | {xt:,.0f} | {floor:,.0f} | {ratio:.2f} | >= {target} {'ok' if ratio >= target else 'MISS'} |"
        )
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
