"""`xt sql`, `xt columns` and `xt assets ls` on every engine, a SQLite file and a
PostgreSQL URL alike: the installed script, in a subprocess, as a user runs it.

Each command asks the engine (``run_sql``, ``declared_types``, ``asset_listing``); the
answers must be the same whatever holds the rows.
"""

import json
import os
import re
import subprocess
import sys

from xetrack import Reader, Tracker

XT = os.path.join(os.path.dirname(sys.executable), "xt")


def xt(*args):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    env.pop("XT_TRACEBACK", None)
    return subprocess.run([XT, *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def ok(*args):
    out = xt(*args)
    assert out.returncode == 0, f"xt {' '.join(map(str, args))}: {out.stderr}"
    return out.stdout


class Weights:
    def __init__(self, scale):
        self.w = [scale] * 3


def test_sql_reads_writes_and_reports_errors_in_one_line(engine_db):
    tracker = Tracker(engine_db, params={"model": "rf"})
    tracker.log_batch([{"epoch": e, "loss": 1.0 / (e + 1)} for e in range(3)])
    query = 'SELECT epoch, loss FROM "default" ORDER BY epoch'
    assert json.loads(ok("sql", engine_db, query, "--json")) == [{"epoch": e, "loss": 1.0 / (e + 1)} for e in range(3)]
    changed = xt("sql", engine_db, 'UPDATE "default" SET loss = 0 WHERE epoch < 2')
    assert changed.returncode == 0 and changed.stdout == "" and "2 rows changed" in changed.stderr
    assert Reader(engine_db).to_df()["loss"].tolist() == [0, 0, 1 / 3]

    wrong = xt("sql", engine_db, "SELECT * FROM nope_table")
    lines = wrong.stderr.strip().splitlines()
    assert wrong.returncode != 0 and wrong.stdout == "" and "Traceback" not in wrong.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: SQL error: ") and "nope_table" in lines[0], lines


def test_columns_lists_each_column_with_its_type(engine_db):
    Tracker(engine_db).log({"epoch": 1, "loss": 0.5, "model": "rf"})
    listed = {row["column"]: row["type"] for row in json.loads(ok("columns", engine_db, "--json"))}
    assert list(listed)[:2] == ["timestamp", "track_id"]
    assert {k: listed[k] for k in ("epoch", "loss", "model")} == {"epoch": "INTEGER", "loss": "REAL", "model": "TEXT"}


def test_assets_ls_counts_rows_and_model_versions(engine_db):
    tracker = Tracker(engine_db)
    first = tracker.log({"weights": Weights(1.0)})["weights"]
    tracker.log({"weights": Weights(1.0)})  # the same object again: one asset, two rows
    second = tracker.log({"weights": Weights(2.0)})["weights"]
    tracker.register_model("scaler", Weights(2.0))
    listing = {entry["hash"]: entry for entry in json.loads(ok("assets", "ls", engine_db, "--json"))}
    assert list(listing) == [first, second]  # oldest first
    assert (listing[first]["references"], listing[first]["models"]) == (2, 0)
    assert (listing[second]["references"], listing[second]["models"]) == (1, 1)
    assert all(entry["bytes"] == len(Reader(engine_db).assets.bytes(key)) for key, entry in listing.items())
    assert re.search(rf"\| {second} \|", ok("assets", "ls", engine_db))
