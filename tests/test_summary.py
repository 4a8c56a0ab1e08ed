"""The incremental run summary (xetrack/summary.py) against a from-scratch recomputation."""

import json
import multiprocessing
import os
import random
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from as_user import as_a_user
from xetrack import Reader, Tracker, copy, summary
from xetrack.errors import ColumnNotFoundError
from xetrack.runs import AGGS, RunQueries
from xetrack.store.sqlite.summary import drop, update
from xetrack.store.tables import SUMMARY_COLUMNS, SUMMARY_RUNS, SUMMARY_STATE


def reference(db, agg, engine="sqlite"):
    """runs(agg) from the plain SQL over the wide table: no summary involved."""
    reader = Reader(db, engine=engine)
    queries = RunQueries(reader._engine, "default")
    queries.use_summary = False
    return queries.runs(agg)


def same(db, engine="sqlite"):
    for agg in AGGS:
        got = Reader(db, engine=engine).runs(agg)
        want = reference(db, agg, engine)
        # total/n of a run folded in several pieces may differ from avg() in the last bit
        pd.testing.assert_frame_equal(got, want, check_exact=agg != "mean", rtol=1e-12)


def rebuilt_equal(db):
    """The summary tables equal a rebuild of them from scratch (mean's total to rounding)."""

    def rows(conn):
        return sorted(
            conn.execute(
                f"SELECT tbl, track_id, col, n, mn, mx, fr, fv, lr, lv, round(tot, 9) FROM {SUMMARY_COLUMNS}"
            ).fetchall(),
            key=repr,
        ), sorted(conn.execute(f"SELECT * FROM {SUMMARY_RUNS}").fetchall(), key=repr)

    conn = sqlite3.connect(db, isolation_level=None)
    try:
        before = rows(conn)
        conn.execute("BEGIN IMMEDIATE")
        drop(conn)
        update(conn, "default", progress=False)
        after = rows(conn)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    assert before == after


def random_ops(db, seed, n, child=False):
    rng = random.Random(seed)
    for _ in range(n):
        op = rng.choice(["log", "log", "batch", "set_value", "set_where", "delete", "new_column", "end"])
        tid = f"run-{rng.randrange(6)}"
        t = Tracker(db, params={"model": rng.choice(["a", "b"])})
        t.track_id = tid
        if op == "log":
            t.log({"loss": rng.random(), "step": rng.randrange(5), "note": rng.choice([None, "x", "y"])})
        elif op == "batch":
            t.log_batch(
                [
                    {"loss": rng.choice([None, rng.random()]), "acc": rng.randrange(3)}
                    for _ in range(rng.randrange(1, 5))
                ]
            )
        elif op == "set_value":
            t.set_value(rng.choice(["loss", "extra", "acc"]), rng.choice([1, 2.5, None, "s"]))
        elif op == "set_where":
            try:
                Reader(db).set_where("acc", rng.randrange(9), "model", rng.choice(["a", "b"]))
            except ColumnNotFoundError:  # nothing logged with the param yet
                pass
        elif op == "delete":
            Reader(db).delete_run(tid)
        elif op == "new_column":
            t.log({f"k{rng.randrange(3)}": rng.random()})
        elif op == "end":
            t.start()
            t.end()
        if not child and rng.random() < 0.3:
            Reader(db).runs()  # fold part of the way, so later changes land below the watermark
        t.close()


def _child(db, seed):
    random_ops(db, seed, 15, child=True)


SEED = int(os.environ.get("XETRACK_SUMMARY_SEED", "0"))  # shift to try other sequences


def mix_and_compare(db, tmp_path, seed):
    print("seed", seed, "(replay: XETRACK_SUMMARY_SEED shifts the seeds)")
    rng = random.Random(seed)
    Tracker(db).log({"loss": 0.5, "acc": 1})
    same(db)
    ctx = multiprocessing.get_context("fork")
    for round_ in range(3):
        random_ops(db, rng.randrange(10**6), 20)
        procs = [ctx.Process(target=_child, args=(db, rng.randrange(10**6))) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
            assert p.exitcode == 0
        if round_ == 1:  # rows from another file
            other = str(tmp_path / f"other{round_}.db")
            random_ops(other, rng.randrange(10**6), 10)
            copy(other, db)
        same(db)
        same(db, engine="duckdb")
        rebuilt_equal(db)


@pytest.mark.parametrize("seed", [SEED + i for i in range(3)], ids=lambda s: f"seed_{s}")
def test_incremental_equals_from_scratch(db, tmp_path, seed):
    mix_and_compare(db, tmp_path, seed)


@pytest.mark.stress
@pytest.mark.parametrize("seed", [SEED + 1000 + i for i in range(60)], ids=lambda s: f"seed_{s}")
def test_many_more_incremental_mixes(db, tmp_path, seed):
    mix_and_compare(db, tmp_path, seed)


def test_reset_and_rowid_reuse(db):
    t = Tracker(db)
    for i in range(5):
        t.log({"loss": float(i)})
    Reader(db).runs()
    Reader(db).delete_run(t.track_id)  # frees the highest rowids: the next rows reuse them
    other = Tracker(db)
    for i in range(7):
        other.log({"loss": float(i) * 2})
    same(db)
    Tracker(db, reset=True).log({"acc": 1.0})
    same(db)
    rebuilt_equal(db)


def test_remove_asset_and_raw_sql_update(db):
    t = Tracker(db)
    row = t.log({"obj": {"a": 1}, "loss": 1.0})
    t.log({"loss": 2.0})
    Reader(db).runs()
    t.remove_asset(row["obj"], "obj")
    same(db)
    conn = sqlite3.connect(db)
    conn.execute('UPDATE "default" SET loss = 9 WHERE loss = 1.0')  # another tool: the triggers see it
    conn.commit()
    conn.close()
    same(db)
    assert Reader(db).runs(agg="max")["loss"].tolist() == [9.0]


def test_warm_call_is_served_from_memory(db):
    t = Tracker(db)
    with t:
        for i in range(3):
            t.log({"loss": float(i)})
    reader = Reader(db)
    first = reader.runs()
    seen = []
    reader._engine._live().set_trace_callback(seen.append)
    again = reader.runs()
    reader._engine._live().set_trace_callback(None)
    pd.testing.assert_frame_equal(first, again)
    assert not [s for s in seen if '"default"' in s], seen  # no query of the wide table
    # a write from another process is seen on the next call
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_log_one, args=(db,))
    p.start()
    p.join()
    assert len(reader.runs()) == 2


def _log_one(db):
    Tracker(db).log({"loss": 5.0})


def test_shell_reads_leave_the_file_alone_and_read_only_files_answer(db):
    Tracker(db).log({"loss": 1.0})
    reader = Reader(db, persist_summary=False)
    reader.runs()
    assert not sqlite3.connect(db).execute("SELECT 1 FROM sqlite_master WHERE name = ?", (SUMMARY_STATE,)).fetchall()
    os.chmod(db, 0o444)
    script = (
        "import json, sys; from xetrack import Reader\n"
        "try:\n    open(sys.argv[1], 'r+b').close(); writable = True\n"
        "except PermissionError:\n    writable = False\n"
        "print(json.dumps([writable, Reader(sys.argv[1]).runs()['loss'].tolist()]))\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", script, db], capture_output=True, text=True, timeout=120, **as_a_user()
        )
    finally:
        os.chmod(db, 0o644)
    assert out.returncode == 0, out.stderr[-2000:]
    writable, losses = json.loads(out.stdout.strip().splitlines()[-1])
    assert not writable, "the child could write a 0o444 file: the test would prove nothing"
    assert losses == [1.0]


def test_switch_off_is_the_plain_sql(db, monkeypatch):
    Tracker(db).log({"loss": 1.0})
    monkeypatch.setattr(summary, "ENABLED", False)
    Reader(db).runs()
    assert not sqlite3.connect(db).execute("SELECT 1 FROM sqlite_master WHERE name = ?", (SUMMARY_STATE,)).fetchall()


def _spy_patched(monkeypatch):
    used = []
    original = RunQueries._patched

    def spy(self, key, agg):
        out = original(self, key, agg)
        used.append(out is not None)
        return out

    monkeypatch.setattr(RunQueries, "_patched", spy)
    return used


def test_runs_after_appends_patches_the_cached_frame(db, monkeypatch):
    for i in range(4):
        with Tracker(db, params={"model": f"m{i % 2}", "lr": 0.1}) as t:
            for e in range(3):
                t.log({"epoch": e, "loss": 1.0 / (e + 1 + i)})
    used = _spy_patched(monkeypatch)
    reader = Reader(db)
    for agg in [*AGGS, *AGGS]:  # the process's first call answers with the plain SQL
        reader.runs(agg)
    other = Tracker(db, params={"model": "m1", "lr": 0.1})  # a new run, no status yet
    for round_ in range(3):
        for e in range(2):
            other.log({"epoch": e, "loss": 0.5 - round_ / 10})
        for agg in AGGS:
            got = reader.runs(agg)
            pd.testing.assert_frame_equal(got, reference(db, agg), check_exact=agg != "mean", rtol=1e-12)
    assert sum(used) == 3 * len(AGGS), used
    # a param that now varies within a run moves the split: computed whole, still right
    other.log({"epoch": 9, "loss": 0.1, "model": "m0"})
    used.clear()
    for agg in AGGS:
        pd.testing.assert_frame_equal(reader.runs(agg), reference(db, agg), check_exact=agg != "mean", rtol=1e-12)
    assert not any(used)
    # a new column: computed whole
    other.log({"epoch": 10, "acc": 0.5})
    same(db)


SEARCHES = [
    ("loss < 0.6", "model", 5),
    (None, "acc DESC", 7),
    ("model = 'a' or lr > 0.1", "-loss", None),
    (None, None, 3),
    ("events > 1", "lr", 10),
    ("k is null", "k", 4),
    ("model like 'A'", "acc", 20),
    ("k in (1, 2)", ["model", "-acc"], 9),
]


def test_search_from_the_in_memory_copy_equals_the_sql(db):
    rng = random.Random(3)
    for _ in range(40):
        t = Tracker(
            db,
            params={"model": rng.choice(["a", "b", "c"]), "lr": rng.choice([0.1, 0.2]), "k": rng.choice([1, 2, None])},
        )
        for e in range(rng.randrange(1, 4)):
            t.log({"loss": rng.choice([0.5, 0.25, rng.random()]), "acc": rng.randrange(3), "epoch": e})
        t.start()
        t.end()
    for agg in AGGS:
        for where, order, limit in SEARCHES:
            reader = Reader(db)
            got = [reader.search(where, order_by=order, limit=limit, agg=agg) for _ in range(3)]
            sql = RunQueries(reader._engine, "default")
            sql._summary_copy = lambda agg: (None, None)  # the summary SELECT itself
            want = sql.search(where, order_by=order, limit=limit, agg=agg)
            for frame in got:
                pd.testing.assert_frame_equal(frame, want)
    reader = Reader(db)
    before = len(reader.search("loss >= 0"))
    Tracker(db).log({"loss": 2.0})  # another connection: the copy is made again
    assert len(reader.search("loss >= 0")) == before + 1


def test_a_dropped_summary_never_serves_a_frame_cached_before(db):
    t = Tracker(db)
    t.log({"loss": 1.0})
    reader = Reader(db)
    reader.runs()  # the process's first call: the plain SQL
    t.log({"loss": 2.0})
    reader.runs()  # the second builds the summary and caches its frame
    conn = sqlite3.connect(db)
    conn.execute(f"DELETE FROM {SUMMARY_STATE}")  # what to do after a VACUUM by another tool
    conn.commit()
    conn.close()
    t.log({"loss": 3.0})  # the rebuilt summary's gen must not meet the cached frame's
    same(db)
    assert reader.runs()["loss"].tolist() == [3.0]


def built(db):
    with sqlite3.connect(db) as conn:
        return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (SUMMARY_STATE,)).fetchall())


def test_a_one_off_call_builds_no_summary_and_the_second_does(tmp_path):
    db = str(tmp_path / "once.db")
    with Tracker(db, params={"model": "m"}) as t:
        t.log({"loss": 0.5})
    first = Reader(db).runs()
    assert not built(db)  # a script that asks once pays only the plain GROUP BY
    with Tracker(db, params={"model": "m"}) as t:
        t.log({"loss": 0.75})
    second = Reader(db).runs()
    assert built(db)
    assert len(second) == 2 and first["loss"].tolist() == [0.5]
    # another process finds the summary built and keeps it up to date on its first call
    with Tracker(db, params={"model": "m"}) as t:
        t.log({"loss": 0.25})
    script = "import sys; from xetrack import Reader; print(len(Reader(sys.argv[1]).runs()))"
    out = subprocess.run([sys.executable, "-c", script, db], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "3", out.stderr[-2000:]
    with sqlite3.connect(db) as conn:
        (watermark,) = conn.execute(f"SELECT watermark FROM {SUMMARY_STATE}").fetchone()
        assert watermark == conn.execute('SELECT max(rowid) FROM "default"').fetchone()[0]
