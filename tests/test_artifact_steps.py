"""Artifacts by step (issue 23): ``log_artifact(..., step=N)`` keeps one entry per step of
a name, read back by step; without a step nothing changes. Files (and PostgreSQL
databases) made before steps are upgraded by the first writer and read as they are by
readers; copies carry the steps.
"""

from __future__ import annotations

import sqlite3
import subprocess

import numpy as np
import pandas as pd
import pytest

from test_cli import XT, fingerprint
from xetrack import Reader, Tracker
from xetrack.copy import copy_tables
from xetrack.errors import NotFoundError
from xetrack.integrations.common import TrainingRun

XSS = "<img src=x onerror=alert(1)>"
# xetrack_artifacts as the code before steps made it (git show HEAD:xetrack/store/sqlite/ddl.py).
OLD_SQLITE_DDL = (
    'CREATE TABLE IF NOT EXISTS "xetrack_artifacts" ('
    '"track_id" TEXT NOT NULL, "table" TEXT NOT NULL, "name" TEXT NOT NULL, "type" TEXT, '
    '"hash" TEXT NOT NULL, "size" INTEGER NOT NULL, "created" TEXT NOT NULL, '
    'UNIQUE ("track_id", "table", "name"))'
)
# ... and on PostgreSQL (git show HEAD:xetrack/store/postgres/blobs.py).
OLD_PG_DDL = (
    'CREATE TABLE "xetrack_artifacts" ("track_id" TEXT NOT NULL, "table" TEXT NOT NULL, "name" TEXT NOT NULL, '
    '"type" TEXT, "hash" TEXT NOT NULL, "size" BIGINT NOT NULL, "created" TEXT NOT NULL, '
    '"seq" BIGINT GENERATED ALWAYS AS IDENTITY, UNIQUE ("track_id", "table", "name"))'
)
OLD_COLUMNS = '"track_id", "table", "name", "type", "hash", "size", "created"'


def png(step):
    """Small bytes named .png, different at each step."""
    return b"\x89PNG\r\n\x1a\n" + f"epoch {step}".encode()


def steps_of(reader, name, track_id=None):
    listed = reader.artifacts(track_id)
    return listed[listed["name"] == name]["step"].tolist()


# -- SQLite: several steps, replacing one, and no step ----------------------------------
def test_one_name_at_three_steps_keeps_three_entries_read_back_by_step(db):
    tracker = Tracker(db)
    hashes = {step: tracker.log_artifact(png(step), name="samples/fig.png", step=step) for step in (1, 2, 3)}
    tracker.log_artifact(b"cfg", name="config.txt")
    reader = Reader(db)
    listed = reader.artifacts()
    assert listed["step"].dtype == "Int64"
    assert listed["name"].tolist() == ["samples/fig.png"] * 3 + ["config.txt"]
    assert listed["step"].tolist()[:3] == [1, 2, 3] and listed["step"].isna().tolist() == [False] * 3 + [True]
    assert listed["hash"].tolist()[:3] == [hashes[1], hashes[2], hashes[3]]
    for step in (1, 2, 3):
        assert reader.artifact("samples/fig.png", step=step) == png(step)
        with reader.open_artifact("samples/fig.png", track_id=tracker.track_id, step=step) as stream:
            assert stream.read() == png(step)
    assert reader.artifact("samples/fig.png") == png(3)  # no step: the latest one
    assert reader.artifact(hashes[2]) == png(2)  # by hash, as before
    with pytest.raises(NotFoundError, match=r"at step 7 .*Its steps: 1, 2, 3"):
        reader.artifact("samples/fig.png", step=7)
    with pytest.raises(NotFoundError, match=r"config\.txt"):
        reader.artifact("nope.png", step=1)


def test_steps_list_in_step_order_and_the_latest_is_the_highest_step(db):
    tracker = Tracker(db)
    for step in (5, 0, 2):
        tracker.log_artifact(png(step), name="fig.png", step=step)
    tracker.log_artifact(png(0) + b"!", name="fig.png", step=0)  # the newest entry, not the latest step
    reader = Reader(db)
    assert steps_of(reader, "fig.png") == [0, 2, 5]
    assert reader.artifact("fig.png") == png(5)
    assert reader.artifact("fig.png", step=np.int64(0)) == png(0) + b"!"  # numpy ints are steps too


def test_logging_a_name_again_at_a_step_replaces_only_that_step(db):
    tracker = Tracker(db)
    for step in (1, 2, 3):
        tracker.log_artifact(png(step), name="fig.png", step=step)
    before = Reader(db).artifacts()
    tracker.log_artifact(b"redrawn", name="fig.png", step=2, type="figure")
    after = Reader(db).artifacts()
    assert len(after) == 3 and after["step"].tolist() == [1, 2, 3]
    assert after["type"].tolist() == ["bytes", "figure", "bytes"]
    assert after["created"].iloc[2 - 1] > before["created"].iloc[2 - 1]
    reader = Reader(db)
    assert [reader.artifact("fig.png", step=s) for s in (1, 2, 3)] == [png(1), b"redrawn", png(3)]


def test_without_a_step_a_name_logged_again_replaces_its_entry_as_before(db):
    tracker = Tracker(db)
    tracker.log_artifact(b"first", name=XSS)
    tracker.log_artifact(b"second", name=XSS)
    reader = Reader(db)
    listed = reader.artifacts()
    assert listed["name"].tolist() == [XSS] and listed["step"].isna().all()
    assert reader.artifact(XSS) == b"second"
    # a step-less entry and stepped ones of the same name live side by side
    tracker.log_artifact(png(1), name=XSS, step=1)
    tracker.log_artifact(b"third", name=XSS)
    listed = Reader(db).artifacts()
    assert len(listed) == 2 and listed["step"].isna().tolist() == [True, False]
    assert Reader(db).artifact(XSS, step=1) == png(1)
    assert Reader(db).artifact(XSS) == png(1)  # the latest step wins over the step-less entry


def test_each_run_keeps_its_own_steps_and_the_latest_run_is_read_by_default(db):
    first, second = Tracker(db), Tracker(db)
    first.log_artifact(png(9), name="fig.png", step=9)
    second.log_artifact(png(1), name="fig.png", step=1)
    reader = Reader(db)
    assert reader.artifact("fig.png") == png(1)  # the run that logged it last
    assert reader.artifact("fig.png", track_id=first.track_id) == png(9)
    assert steps_of(reader, "fig.png", first.track_id) == [9]
    with pytest.raises(NotFoundError, match="step 1"):
        reader.artifact("fig.png", track_id=first.track_id, step=1)


@pytest.mark.parametrize(
    ("step", "error", "message"),
    [
        (True, TypeError, "step must be a non-negative int"),
        (1.0, TypeError, "step must be a non-negative int.*float"),
        (np.float64(2), TypeError, "step .*float64"),
        ("3", TypeError, "step .*str"),
        (-1, ValueError, "step must be a non-negative int.*-1"),
        (2**63, ValueError, "step must be"),
    ],
)
def test_a_bad_step_is_refused_naming_step_and_nothing_is_written(db, step, error, message):
    tracker = Tracker(db)
    with pytest.raises(error, match=message):
        tracker.log_artifact(b"x", name="fig.png", step=step)
    with pytest.raises(error, match=message):
        tracker.log_artifacts(db.rsplit("/", 1)[0], prefix="all", step=step)
    assert Reader(db).artifacts().empty
    tracker.log_artifact(b"x", name="fig.png", step=0)
    with pytest.raises(error, match=message):
        Reader(db).artifact("fig.png", step=step)


def test_a_folder_and_the_integrations_log_at_a_step(tmp_path, db):
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(1))
    tracker = Tracker(db)
    tracker.log_artifacts(folder, prefix="gen", step=4)
    run = TrainingRun(db)
    run.log_artifact(png(2), name="grid.png", step=2)
    run.log_artifact(folder, name="more", step=3)
    run.end()
    listed = Reader(db).artifacts()
    assert dict(zip(listed["name"], listed["step"])) == {"gen/a.png": 4, "grid.png": 2, "more/a.png": 3}


def test_delete_run_and_gc_take_every_step_and_download_writes_the_latest(tmp_path, db):
    keep, gone = Tracker(db), Tracker(db)
    keep.log_artifact(png(1), name="fig.png", step=1)
    keep.log_artifact(png(2), name="fig.png", step=2)
    for step in (1, 2, 3):
        gone.log_artifact(png(100 + step), name="fig.png", step=step)
    reader = Reader(db)
    paths = reader.download_artifacts(keep.track_id, tmp_path / "out")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["fig.png"]
    assert (tmp_path / "out" / "fig.png").read_bytes() == png(2)
    reader.delete_run(gone.track_id)
    assert Reader(db).artifacts()["track_id"].unique().tolist() == [keep.track_id]
    assert Reader(db).gc().artifacts == 3  # the deleted run's three steps' bytes
    assert Reader(db).artifact("fig.png", step=1) == png(1)


def test_an_mlflow_export_writes_a_names_latest_step_once(tmp_path, db):
    from xetrack import export_mlflow

    with Tracker(db, track_id="run-1") as tracker:
        tracker.log({"loss": 1.0})
        for step in (1, 2):
            tracker.log_artifact(png(step), name="fig.png", step=step)
    assert export_mlflow(db, tmp_path / "mlruns").artifacts == 1  # MLflow artifacts have no step
    (written,) = (tmp_path / "mlruns").rglob("fig.png")
    assert written.read_bytes() == png(2)


# -- a file made before steps ---------------------------------------------------------
def make_old_file(path):
    """Two runs' artifacts, then xetrack_artifacts rebuilt by hand as the code before steps
    made it (no step, UNIQUE (track_id, table, name)), rowids kept."""
    first, second = Tracker(path), Tracker(path)
    first.log_artifact(b"config", name="config.txt")
    first.log_artifact(png(0), name="fig.png")
    second.log_artifact(b"other", name="config.txt")
    first.close()
    second.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f'SELECT rowid, {OLD_COLUMNS} FROM "xetrack_artifacts" ORDER BY rowid').fetchall()
        conn.execute('DROP TABLE "xetrack_artifacts"')
        conn.execute(OLD_SQLITE_DDL)
        conn.executemany(f'INSERT INTO "xetrack_artifacts" (rowid, {OLD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)', rows)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # as a closed program leaves it
    assert not has_step_column(path)
    return first.track_id, second.track_id


def has_step_column(path):
    with sqlite3.connect(path) as conn:
        return "step" in [row[1] for row in conn.execute('PRAGMA table_info("xetrack_artifacts")')]


def test_a_reader_lists_an_old_file_as_it_is_with_no_steps(db, engine):
    first, _ = make_old_file(db)
    before = fingerprint(db)
    reader = Reader(db, engine=engine)
    listed = reader.artifacts()
    assert listed["name"].tolist() == ["config.txt", "fig.png", "config.txt"]
    assert listed["step"].dtype == "Int64" and listed["step"].isna().all()
    assert reader.artifact("config.txt") == b"other"
    assert reader.artifact("config.txt", track_id=first) == b"config"
    with pytest.raises(NotFoundError, match="step 1"):
        reader.artifact("fig.png", step=1)
    assert fingerprint(db) == before  # a read never upgrades the file
    assert not has_step_column(db)


def test_the_first_write_with_a_step_upgrades_an_old_file_in_place(db):
    first, second = make_old_file(db)
    tracker = Tracker(db)
    tracker.track_id = first
    tracker.log_artifact(png(1), name="fig.png", step=1)
    tracker.log_artifact(png(2), name="fig.png", step=2)
    assert has_step_column(db)
    tracker.log_artifact(b"config v2", name="config.txt")  # step-less: replaces the old entry
    Tracker(db).log_artifact(b"y", name="again.txt")  # another writer finds it done
    reader = Reader(db)
    listed = reader.artifacts()
    assert list(zip(listed["track_id"], listed["name"], listed["step"].astype(object))) == [
        (first, "config.txt", pd.NA),
        (first, "fig.png", pd.NA),
        (first, "fig.png", 1),
        (first, "fig.png", 2),
        (second, "config.txt", pd.NA),
        (listed["track_id"].iloc[-1], "again.txt", pd.NA),
    ]
    assert reader.artifact("config.txt", track_id=first) == b"config v2"
    assert reader.artifact("config.txt", track_id=second) == b"other"
    assert reader.artifact("fig.png", track_id=first) == png(2)
    with sqlite3.connect(db) as conn:
        sql = [s for (s,) in conn.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'xetrack_artifacts'") if s]
    assert not any("UNIQUE (" in s and "coalesce" not in s for s in sql)  # the old key is gone
    assert any("coalesce" in s for s in sql)
    assert Reader(db, engine="duckdb").artifacts()["step"].tolist()[2:4] == [1, 2]


# -- DuckDB, the CLI, copies ----------------------------------------------------------
def test_the_duckdb_reader_lists_steps_and_reads_them(db):
    tracker = Tracker(db, engine="duckdb")
    for step in (1, 2, 3):
        tracker.log_artifact(png(step), name="fig.png", step=step)
    reader = Reader(db, engine="duckdb")
    assert steps_of(reader, "fig.png") == [1, 2, 3]
    assert reader.artifact("fig.png", step=2) == png(2) and reader.artifact("fig.png") == png(3)
    assert reader.conn.execute('SELECT count(*) FROM db."xetrack_artifacts"').fetchone()[0] == 3


def test_xt_artifacts_get_takes_step(tmp_path, db):
    tracker = Tracker(db)
    for step in (1, 2):
        tracker.log_artifact(png(step), name="fig.png", step=step)
    out = tmp_path / "fig.png"
    got = subprocess.run([XT, "artifacts", "get", db, "fig.png", str(out), "--step", "1"], capture_output=True)
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == png(1)
    latest = subprocess.run([XT, "artifacts", "get", db, "fig.png", "-"], capture_output=True)
    assert latest.stdout == png(2)
    bad = subprocess.run([XT, "artifacts", "get", db, "fig.png", "-", "--step", "-1"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--step" in bad.stderr and not bad.stdout
    missing = subprocess.run(
        [XT, "artifacts", "get", db, "fig.png", "-", "--step", "5"], capture_output=True, text=True
    )
    assert missing.returncode != 0 and "step 5" in missing.stderr and "1, 2" in missing.stderr


def test_a_copy_to_another_file_keeps_the_steps(tmp_path, db):
    tracker = Tracker(db)
    for step in (1, 2, 3):
        tracker.log_artifact(png(step), name="fig.png", step=step)
    tracker.log_artifact(b"cfg", name="config.txt")
    tracker.log({"acc": 0.5})
    target = str(tmp_path / "target.db")
    result = copy_tables(db, target)
    assert result.artifacts == 4
    assert copy_tables(db, target).artifacts == 0  # once
    source, copied = Reader(db).artifacts(), Reader(target).artifacts()
    pd.testing.assert_frame_equal(source, copied)
    assert [Reader(target).artifact("fig.png", step=s) for s in (1, 2, 3)] == [png(1), png(2), png(3)]


def test_a_copy_from_an_old_file_and_into_an_old_file(tmp_path, db):
    make_old_file(db)
    target = str(tmp_path / "target.db")
    assert copy_tables(db, target).artifacts == 3  # read as step NULL
    assert Reader(target).artifacts()["step"].isna().all()
    newer = str(tmp_path / "newer.db")
    tracker = Tracker(newer)
    tracker.log_artifact(png(1), name="fig.png", step=1)
    tracker.log_artifact(png(2), name="fig.png", step=2)
    assert copy_tables(newer, db).artifacts == 2  # the old TARGET is upgraded on the way
    assert has_step_column(db)
    assert steps_of(Reader(db), "fig.png", tracker.track_id) == [1, 2]


# -- PostgreSQL -------------------------------------------------------------------------
def test_postgres_keeps_steps_and_copies_them_both_ways(tmp_path, pg_url):
    tracker = Tracker(pg_url)
    for step in (1, 2, 3):
        tracker.log_artifact(png(step), name="fig.png", step=step)
    tracker.log_artifact(b"redrawn", name="fig.png", step=2)
    tracker.log_artifact(b"a", name="config.txt")
    tracker.log_artifact(b"b", name="config.txt")
    reader = Reader(pg_url)
    listed = reader.artifacts()
    assert listed["name"].tolist() == ["fig.png"] * 3 + ["config.txt"]
    assert listed["step"].dtype == "Int64" and listed["step"].tolist()[:3] == [1, 2, 3]
    assert [reader.artifact("fig.png", step=s) for s in (1, 2, 3)] == [png(1), b"redrawn", png(3)]
    assert reader.artifact("fig.png") == png(3) and reader.artifact("config.txt") == b"b"
    with pytest.raises(NotFoundError, match="step 4"):
        reader.artifact("fig.png", step=4)
    home = str(tmp_path / "home.db")
    assert copy_tables(pg_url, home).artifacts == 4
    pd.testing.assert_frame_equal(Reader(home).artifacts(), listed)
    other = Tracker(home)
    other.log_artifact(png(7), name="fig.png", step=7)
    assert copy_tables(home, pg_url).artifacts == 1
    assert Reader(pg_url).artifact("fig.png", track_id=other.track_id, step=7) == png(7)


def test_an_old_postgres_table_is_read_as_it_is_then_upgraded_by_a_writer(pg_url):
    import psycopg

    first = Tracker(pg_url)
    first.log_artifact(b"config", name="config.txt")
    first.log_artifact(png(0), name="fig.png")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(f'SELECT {OLD_COLUMNS} FROM "xetrack_artifacts" ORDER BY "seq"').fetchall()
        conn.execute('DROP TABLE "xetrack_artifacts"')
        conn.execute(OLD_PG_DDL)
        for row in rows:
            conn.execute(f'INSERT INTO "xetrack_artifacts" ({OLD_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s)', row)
    old = Reader(pg_url).artifacts()
    assert old["name"].tolist() == ["config.txt", "fig.png"] and old["step"].isna().all()
    assert Reader(pg_url).artifact("fig.png") == png(0)
    first.log_artifact(png(1), name="fig.png", step=1)
    first.log_artifact(png(2), name="fig.png", step=2)
    first.log_artifact(b"config v2", name="config.txt")
    Tracker(pg_url).log_artifact(b"z", name="z.txt")  # a second writer finds it done
    listed = Reader(pg_url).artifacts()
    assert listed["name"].tolist() == ["config.txt", "fig.png", "fig.png", "fig.png", "z.txt"]
    assert listed["step"].astype(object).tolist()[1:4] == [pd.NA, 1, 2]
    assert Reader(pg_url).artifact("config.txt") == b"config v2"
    assert Reader(pg_url).artifact("fig.png", track_id=first.track_id) == png(2)
