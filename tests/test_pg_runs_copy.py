"""runs()/search() on PostgreSQL keep a per-process copy of the table and read only the
rows logged since (xetrack/store/run_mirror.py, xetrack/store/postgres/mirror.py). Whatever changed on
the server, by this process or another, the answer must equal one from a fresh copy."""

import multiprocessing
import os
import random

import pandas as pd

from xetrack import Reader, Tracker
from xetrack.errors import ColumnNotFoundError
from xetrack.store import run_mirror as runs_pg

SEED = int(os.environ.get("XETRACK_PG_COPY_SEED", "0"))  # shift to try other sequences


def fresh(url, agg):
    """runs(agg) from a copy made now, the process's own copies put back after."""
    saved = dict(runs_pg._COPIES)
    runs_pg._COPIES.clear()
    try:
        return Reader(url).runs(agg)
    finally:
        runs_pg._COPIES.clear()
        runs_pg._COPIES.update(saved)


def _child_update(url, run, value):
    Tracker(url, track_id=run).set_value("loss", value)


OPS = ["log", "log", "batch", "set_value", "set_where", "delete", "new_key", "tag", "other_process"]


def one_op(url, rng, op=None):
    op = op or rng.choice(OPS)
    run = f"run-{rng.randrange(5)}"
    tracker = Tracker(url, params={"model": rng.choice(["a", "b"])}, track_id=run)
    if op == "log":
        tracker.log({"step": rng.randrange(9), "loss": rng.random()})
    elif op == "batch":
        tracker.log_batch([{"step": s, "loss": rng.choice([None, rng.random()])} for s in range(rng.randrange(1, 6))])
    elif op == "set_value":
        tracker.set_value("loss", rng.choice([0.5, 2, None]))
    elif op == "set_where":
        try:
            Reader(url).set_where("loss", 0.25, "model", rng.choice(["a", "b"]))
        except ColumnNotFoundError:
            pass
    elif op == "delete":
        Reader(url).delete_run(run)
    elif op == "new_key":
        tracker.log({f"k{rng.randrange(3)}": rng.random()})
    elif op == "tag":
        tracker.log({"loss": 0.1})
        tracker.set_tag("team", rng.choice(["x", "y"]))
    elif op == "other_process":  # an UPDATE of rows this process's copy already holds
        child = multiprocessing.get_context("spawn").Process(target=_child_update, args=(url, run, rng.random()))
        child.start()
        child.join()
        assert child.exitcode == 0
    tracker.close()
    return op


def test_the_kept_copy_answers_what_a_fresh_one_does(pg_url):
    rng = random.Random(SEED)
    print("seed", SEED, "(replay: XETRACK_PG_COPY_SEED)")
    Tracker(pg_url, track_id="run-0").log({"step": 0, "loss": 1.0})
    done = []
    plan = [None] * 27 + ["batch", "set_value", "other_process"]  # each seed does these at least once
    rng.shuffle(plan)
    for forced in plan:
        done.append(one_op(pg_url, rng, forced))
        agg = rng.choice(["last", "max", "mean"])
        got = Reader(pg_url).runs(agg)
        pd.testing.assert_frame_equal(
            got,
            fresh(pg_url, agg),
            check_exact=agg != "mean",
            rtol=1e-12,
            obj=f"runs({agg!r}) after {done} (seed {SEED})",
        )
    assert {"set_value", "other_process", "batch"} <= set(done)


def test_rows_logged_since_are_all_that_is_read_again(pg_url):
    tracker = Tracker(pg_url, track_id="r")
    tracker.log_batch([{"step": s, "loss": 1.0 / (s + 1)} for s in range(1000)])
    Reader(pg_url).runs()
    copy = runs_pg._COPIES[(Reader(pg_url)._engine._url, "default")]
    before = copy.upto
    tracker.log({"step": 1000, "loss": 0.0})
    frame = Reader(pg_url).runs()
    assert copy.upto > before and frame.loc[0, "events"] == 1001 and frame.loc[0, "loss"] == 0.0
    # an update of an old row: the copy is read again, and says so in its answer
    tracker.set_value("loss", 7.0)
    assert Reader(pg_url).runs().loc[0, "loss"] == 7.0
