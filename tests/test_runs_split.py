"""In a file without recorded kinds (written before they were, or by another tool), a
process's first runs() guesses params from a sample of runs, then checks the guess on
every run: it must answer exactly what deciding the split on every run answers."""

import os
import random
import shutil
import sqlite3

import pandas as pd
import pytest

from xetrack import Reader, Tracker
from xetrack.meta import KINDS
from xetrack.runs import AGGS, SAMPLE_ROWS, SAMPLE_RUNS, RunQueries

SEED = int(os.environ.get("XETRACK_SPLIT_SEED", "0"))  # shift to try other tables


def reference(db, agg):
    queries = RunQueries(Reader(db)._engine, "default")
    queries.use_summary = False  # the plain SQL, split decided on every run
    return queries.runs(agg)


def as_an_older_file(db):
    """Forget the kinds a Tracker recorded, as in a file written before they were: the
    split is then guessed from the values."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(f"DELETE FROM {KINDS}")
    conn.close()


def random_table(db, rng):
    """Runs past the sample's reach; some columns constant in every run but one, which
    may sit where the sample does not look."""
    n_runs = rng.randrange(SAMPLE_RUNS + 5, SAMPLE_RUNS + 200)
    odd = rng.randrange(n_runs)  # the run where a "param" varies
    tracker = Tracker(db)
    for r in range(n_runs):
        tracker.track_id = f"run-{r:04d}"
        events = rng.randrange(1, 6) if r != odd else rng.randrange(2, 6)
        base = {"p": rng.choice([1, 2, 2.5]), "q": rng.choice(["a", "b"]), "s": rng.choice([None, 7])}
        rows = []
        for e in range(events):
            row = dict(base, m=rng.random(), n=rng.choice([None, None, rng.random()]))
            if r == odd and e == events - 1:
                varying = rng.sample(["p", "q", "s"], rng.randrange(0, 4))
                for key in varying:
                    row[key] = {"p": 99, "q": "zz", "s": 8}[key]
            rows.append(row)
        tracker.log_batch(rows)
    tracker.close()
    # pad the latest rows so the odd run is not always among them
    if rng.random() < 0.7:
        tail = Tracker(db)
        tail.track_id = "run-tail"
        tail.log_batch([{"m": rng.random(), "p": 1, "q": "a"} for _ in range(SAMPLE_ROWS)])
        tail.close()
    as_an_older_file(db)


def test_first_runs_equals_the_split_decided_on_every_run(tmp_path, monkeypatch):
    outcomes = {"kept": 0, "redone": 0}
    calls = [0]
    decided = RunQueries.summary_sql

    def counting(self, agg="last"):
        calls[0] += 1
        return decided(self, agg)

    monkeypatch.setattr(RunQueries, "summary_sql", counting)
    for seed in range(SEED, SEED + 12):
        print("seed", seed, "(replay: XETRACK_SPLIT_SEED shifts the seeds)")
        rng = random.Random(seed)
        pristine = str(tmp_path / f"t{seed}.db")
        random_table(pristine, rng)
        for agg in AGGS:
            db = str(tmp_path / f"t{seed}-{agg}.db")
            shutil.copyfile(pristine, db)  # a new path: this process's first runs() on it
            before = calls[0]
            got = Reader(db).runs(agg)
            outcomes["kept" if calls[0] == before else "redone"] += 1
            want = reference(db, agg)
            pd.testing.assert_frame_equal(got, want, check_exact=agg != "mean", rtol=1e-12)
    # both ways were taken: a guess that held, and one the check threw out
    assert outcomes["kept"] > 0 and outcomes["redone"] > 0, outcomes


@pytest.mark.parametrize("agg", list(AGGS))
def test_a_param_varying_outside_the_sample_makes_it_a_metric(tmp_path, agg):
    db = str(tmp_path / "x.db")
    tracker = Tracker(db)
    for r in range(SAMPLE_RUNS + 40):
        tracker.track_id = f"run-{r:04d}"
        lr = [0.1, 0.2] if r == SAMPLE_RUNS + 10 else [0.1, 0.1]
        tracker.log_batch([{"lr": lr[0], "loss": 1.0}, {"lr": lr[1], "loss": 0.5}])
    tracker.close()
    tail = Tracker(db)
    tail.track_id = "zz-tail"
    tail.log_batch([{"lr": 0.1, "loss": 0.1}] * (SAMPLE_ROWS + 1))
    tail.close()
    as_an_older_file(db)
    frame = Reader(db).runs(agg)
    pd.testing.assert_frame_equal(frame, reference(db, agg))
    odd = frame.set_index("track_id").loc[f"run-{SAMPLE_RUNS + 10:04d}", "lr"]
    assert odd == {"last": 0.2, "first": 0.1, "min": 0.1, "max": 0.2, "mean": pytest.approx(0.15)}[agg]
