"""xetrack.copy and `xt copy`: merging tables and assets from one file into another."""

import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import xetrack
from xetrack import Reader, TableNotFoundError, Tracker
from xetrack.copy import copy_tables
from xetrack.copy import files as file_copy  # the module: xetrack.copy is the function

XT = os.path.join(os.path.dirname(sys.executable), "xt")


def declared(path, table):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT name, type FROM pragma_table_info(?)", (table,)).fetchall()


def frames_equal(source, target, table="default"):
    pd.testing.assert_frame_equal(Reader(source, table=table).to_df(), Reader(target, table=table).to_df())


@pytest.fixture
def source(tmp_path):
    path = str(tmp_path / "source.db")
    with Tracker(path, params={"model": "rf"}) as run:
        run.track_id = "run-a"
        run.log({"epoch": 1, "acc": 0.5, "flag": True, "cfg": {"lr": 0.1}, "raw": b"\x00\x01", "weights": np.ones(3)})
        run.log({"epoch": 2, "acc": None, "flag": False, "mixed": 3})
        run.log({"epoch": 3, "mixed": "three", "select": "a keyword"})
    with Tracker(path, table="serving") as serving:
        serving.log_batch([{"latency": i / 10} for i in range(5)])
    return path


def test_copy_into_a_new_file_keeps_rows_types_and_assets(source, tmp_path):
    target = str(tmp_path / "target.db")
    assert xetrack.copy(source, target) == 8
    for table in ("default", "serving"):
        frames_equal(source, target, table)
        assert declared(target, table) == declared(source, table)
    with sqlite3.connect(target) as conn:
        indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"ix_default_track_id", "ix_serving_track_id"} <= indexes
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    (digest,) = list(Reader(source).assets)
    assets = Reader(target).assets
    assert list(assets) == [digest] and assets.bytes(digest) == Reader(source).assets.bytes(digest)
    assert assets.references(digest) == 1 and assets[digest].tolist() == [1.0, 1.0, 1.0]


def test_copy_twice_copies_nothing_and_growth_copies_only_new_rows(source, tmp_path):
    target = str(tmp_path / "target.db")
    assert xetrack.copy(source, target) == 8
    assert xetrack.copy(source, target) == 0
    with Tracker(source) as more:
        more.track_id = "run-a"  # the same run goes on
        more.log_batch([{"epoch": e} for e in range(4, 10)])
    with Tracker(source) as other:
        other.log({"epoch": 1, "new_column": "x"})
    result = copy_tables(source, target)
    assert (result.rows, result.skipped, result.tables) == (7, 8, {"default": 7, "serving": 0})
    frames_equal(source, target)
    frames_equal(source, target, "serving")
    assert Reader(target).assets.references(next(iter(Reader(target).assets))) == 1  # not counted twice


def test_merge_into_a_target_with_its_own_rows_and_columns(source, tmp_path):
    target = str(tmp_path / "target.db")
    with Tracker(target) as own:
        own.log({"Acc": 0.9, "EPOCH": 7, "only_here": "t"})  # same columns, other case
    xetrack.copy(source, target, tables=["default"])
    merged = Reader(target).to_df()
    assert len(merged) == 4
    assert merged["EPOCH"].tolist() == [7, 1, 2, 3] and merged["Acc"].tolist()[:2] == [0.9, 0.5]
    assert merged["only_here"].tolist()[0] == "t" and merged["only_here"].isna().sum() == 3
    types = dict(declared(target, "default"))
    assert types["flag"] == "BOOLEAN" and types["mixed"] == "INTEGER" and types["raw"] == "BLOB"
    assert merged["mixed"].tolist()[2:] == [3, "three"]
    assert Reader(target, table="default").to_df()["flag"].tolist()[1:3] == [True, False]


def test_tables_assets_and_refusals(source, tmp_path):
    target = str(tmp_path / "target.db")
    assert xetrack.copy(source, target, assets=False, tables="serving") == 5
    assert Reader(target).assets == {} and len(Reader(target, table="serving")) == 5
    with sqlite3.connect(target) as conn:
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    # no asset tables, no default table; the run's status and the kinds its keys were logged as
    assert names == {"serving", "xetrack_runs", "xetrack_kinds"}

    assert xetrack.copy(source, target, assets=False) == 3
    assert Reader(target).to_df()["weights"].notna().sum() == 1  # the row keeps its hash
    assert len(Reader(target).assets) == 0

    with pytest.raises(TableNotFoundError, match=r"'defualt' not found.*Did you mean: default"):
        xetrack.copy(source, target, tables=["defualt"])
    with pytest.raises(ValueError, match="same file"):
        xetrack.copy(source, source)
    missing = str(tmp_path / "missing.db")
    with pytest.raises(FileNotFoundError):
        xetrack.copy(missing, str(tmp_path / "never.db"))
    assert not os.path.exists(missing) and not os.path.exists(tmp_path / "never.db")


def test_references_count_the_copied_rows(tmp_path):
    weights = np.arange(4.0)
    source, target = str(tmp_path / "source.db"), str(tmp_path / "target.db")
    with Tracker(source) as run:
        digest = run.log({"w": weights})["w"]
        run.log({"w": digest})  # a second row pointing at it
    with Tracker(target) as run:
        run.log({"w": weights})  # the same object, logged in the target on its own
    xetrack.copy(source, target)
    assert Reader(target).assets.references(digest) == 3
    xetrack.copy(source, target)
    assert Reader(target).assets.references(digest) == 3
    assert len(Reader(target).assets) == 1


def test_a_table_without_track_id_is_skipped_with_a_warning(source, tmp_path):
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.execute("INSERT INTO notes VALUES ('hello')")
    conn.close()
    target = str(tmp_path / "target.db")
    with pytest.warns(UserWarning, match="'notes' was not copied"):
        assert xetrack.copy(source, target) == 8
    with pytest.raises(ValueError, match="no track_id and timestamp"):
        xetrack.copy(source, target, tables=["notes"])


def test_batches_and_progress(tmp_path):
    source, target = str(tmp_path / "source.db"), str(tmp_path / "target.db")
    with Tracker(source) as run:
        run.log_batch([{"i": i, "x": i / 2} for i in range(25_000)])
    with Tracker(target) as run:
        run.log({"i": -1})
    calls = []
    assert xetrack.copy(source, target, progress=lambda done, total: calls.append((done, total))) == 25_000
    assert calls[0] == (0, 25_000) and calls[-1] == (25_000, 25_000) and len(calls) >= 4
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert Reader(target)["i"].tolist() == [-1, *range(25_000)]


WRITER = """
import sys
from xetrack import Tracker
tracker = Tracker(sys.argv[1])
for i in range(300):
    tracker.log({"writer": i, f"key_{i % 7}": i})
"""


def test_copy_while_other_processes_write_to_the_target(tmp_path, monkeypatch):
    source, target = str(tmp_path / "source.db"), str(tmp_path / "target.db")
    with Tracker(source) as run:
        run.log_batch([{"i": i, "wide_" + str(i % 5): i} for i in range(40_000)])
    writer = subprocess.Popen([sys.executable, "-c", WRITER, target], stderr=subprocess.PIPE, text=True)
    copier = subprocess.Popen(
        [sys.executable, "-c", "import sys, xetrack; xetrack.copy(sys.argv[1], sys.argv[2])", source, target],
        stderr=subprocess.PIPE,
        text=True,
    )
    # A second copy at the same time, slowed down so that it spans the other two: each copy
    # is one transaction, so one waits for the other and then skips the rows it wrote.
    monkeypatch.setattr(file_copy, "_MAX_ROWS_PER_BATCH", 1000)
    xetrack.copy(source, target, progress=lambda done, total: time.sleep(0.05))
    assert copier.wait(timeout=120) == 0, copier.stderr.read()
    assert writer.wait(timeout=120) == 0, writer.stderr.read()
    merged = Reader(target).to_df()
    assert merged["writer"].notna().sum() == 300
    copied = merged[merged["i"].notna()]
    assert len(copied) == 40_000 and not copied.duplicated(["track_id", "timestamp"]).any()
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- the command line -----------------------------------------------------------------
def xt(*args):
    return subprocess.run([XT, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_xt_copy(source, tmp_path):
    target = str(tmp_path / "target.db")
    out = xt("copy", source, target)
    assert (out.returncode, out.stdout, out.stderr) == (0, "Copied 8 rows and 1 asset\n", "")
    out = xt("copy", source, target)
    assert out.stdout == f"Copied 0 rows (8 already in {target})\n"
    frames_equal(source, target)

    only = str(tmp_path / "only.db")
    out = xt("copy", source, only, "--table", "serving", "--table", "default", "--no-assets")
    assert out.stdout == "Copied 8 rows\n"
    assert len(Reader(only).assets) == 0 and len(Reader(only, table="serving")) == 5

    out = xt("copy", source, str(tmp_path / "new.db"), "--table", "nope")
    assert out.returncode == 1 and out.stdout == "" and not os.path.exists(tmp_path / "new.db")
    assert out.stderr == f"Error: Table 'nope' not found in {source!r}. Tables: default, serving\n"


def test_xt_copy_shows_a_progress_bar_past_100000_rows(tmp_path):
    source, target = str(tmp_path / "big.db"), str(tmp_path / "target.db")
    with Tracker(source) as run:
        run.log_batch([{"i": i} for i in range(100_001)])
    out = xt("copy", source, target)
    assert out.returncode == 0 and out.stdout == "Copied 100001 rows\n"
    assert "Copying rows" in out.stderr and "100001/100001" in out.stderr
    assert len(Reader(target)) == 100_001
