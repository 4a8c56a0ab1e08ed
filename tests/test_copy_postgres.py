"""``xetrack.copy`` and ``xt copy`` between SQLite files and PostgreSQL, both ways."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd

import xetrack
from xetrack import Reader, Tracker
from xetrack.copy import copy_tables


def log_some(db, runs=3):
    for r in range(runs):
        with Tracker(db, params={"model": f"m{r}", "lr": 0.1 * (r + 1)}) as run:
            for epoch in range(4):
                run.log({"epoch": epoch, "loss": 1 / (epoch + 1 + r), "ok": epoch % 2 == 0})
            run.log({"weights": np.arange(r + 2), "note": None})
    Tracker(db, table="other").log({"x": 1, "s": "a"})


def frame(db, table="default"):
    return Reader(db, table=table).to_df()


def test_sqlite_to_postgres_and_back_keeps_every_row_once(tmp_path, pg_url):
    laptop = str(tmp_path / "laptop.db")
    log_some(laptop)
    assert xetrack.copy(laptop, pg_url) == 16
    assert xetrack.copy(laptop, pg_url) == 0  # idempotent
    pd.testing.assert_frame_equal(frame(laptop), frame(pg_url))
    pd.testing.assert_frame_equal(frame(laptop, "other"), frame(pg_url, "other"))
    pg = Reader(pg_url)
    hashes = pg["weights"].dropna().tolist()
    assert [pg.assets[h].tolist() for h in hashes] == [[0, 1], [0, 1, 2], [0, 1, 2, 3]]
    assert pg.runs()["status"].tolist() == ["finished"] * 3

    snapshot = str(tmp_path / "snapshot.db")
    result = copy_tables(pg_url, snapshot)
    assert result.rows == 16 and result.runs == 3
    pd.testing.assert_frame_equal(frame(laptop), frame(snapshot))
    assert Reader(snapshot).assets[hashes[0]].tolist() == [0, 1]
    assert Reader(snapshot).runs()["status"].tolist() == ["finished"] * 3


def test_a_file_that_kept_growing_copies_only_its_new_rows(tmp_path, pg_url):
    worker = str(tmp_path / "worker.db")
    tracker = Tracker(worker, track_id="w1")
    tracker.log_batch([{"i": i} for i in range(12_000)])  # more than one batch
    assert xetrack.copy(worker, pg_url) == 12_000
    tracker.log_batch([{"i": i, "late": "yes"} for i in range(12_000, 12_010)])
    assert xetrack.copy(worker, pg_url) == 10
    copied = frame(pg_url)
    assert copied["i"].tolist() == list(range(12_010)) and copied["late"].notna().sum() == 10


def test_xt_copy_with_a_url_prints_no_password(tmp_path, pg_server):
    from pg_server import PASSWORD, PASSWORD_ROLE

    name = pg_server.create_database(owner=PASSWORD_ROLE).rsplit("/", 1)[1]
    url = pg_server.url(name, user=PASSWORD_ROLE, password=PASSWORD)
    laptop = str(tmp_path / "laptop.db")
    log_some(laptop, runs=1)
    script = os.path.join(os.path.dirname(sys.executable), "xt")
    out = subprocess.run([script, "copy", laptop, url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    assert out.stdout == "Copied 6 rows and 1 asset\n" and len(frame(url)) == 5
