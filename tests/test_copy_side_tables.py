"""xetrack.copy carries the side tables: runs, predictions, artifacts (with their bytes)
and the model registry."""

import os
import sqlite3
import subprocess
import sys

import pytest

import xetrack
import xetrack.store.chunks
from xetrack import Reader, Tracker
from xetrack.copy import copy_tables, files_side_tables
from xetrack.errors import IntegrityError, NotFoundError

XT = os.path.join(os.path.dirname(sys.executable), "xt")
BIG = os.urandom(50_000)  # 49 chunks of 1 KiB when CHUNK_SIZE is patched


def count(path, table, where="", params=()):
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        n = conn.execute(f'SELECT count(*) FROM "{table}" {where}', params).fetchone()[0] if found else 0
    conn.close()
    return n


def side_counts(path):
    tables = (
        "xetrack_runs",
        "xetrack_predictions",
        "xetrack_artifacts",
        "xetrack_blobs",
        "xetrack_chunks",
        "xetrack_models",
        "xetrack_model_aliases",
        "assets",
    )
    return {t: count(path, t) for t in tables}


def run_status(path, track_id, table="default"):
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            'SELECT status FROM xetrack_runs WHERE track_id = ? AND "table" = ?', (track_id, table)
        ).fetchone()
    conn.close()
    return None if row is None else row[0]


@pytest.fixture
def source(tmp_path):
    """Two runs with artifacts and predictions, a second table, and a registry."""
    path = str(tmp_path / "source.db")
    data = tmp_path / "data.csv"
    data.write_bytes(b"a,b\n1,2\n")
    with Tracker(path) as run:
        run.track_id = "run-a"
        run.log({"acc": 0.5})
        run.log_artifact(str(data))
        run.log_artifact(b"shared bytes", name="notes/shared.txt")
        run.log_predictions([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], ["mae"], name="val")
        run.register_model("iris", {"weights": [1, 2]}, alias="staging")
    with Tracker(path) as run:
        run.track_id = "run-b"
        run.log({"acc": 0.7})
        run.log_artifact(b"shared bytes", name="copy.txt")  # the same bytes, under another name
        key = run.log_artifact(b"model bytes", name="model.bin")
        run.register_model("iris", key, alias="production", description="from bytes")
        run.register_model("svm", {"c": 1.0})
    with Tracker(path, table="other") as run:
        run.track_id = "run-c"
        run.log({"loss": 1.0})
        run.log_artifact(b"only in other", name="other.txt")
        run.log_predictions([1, 0], [1, 1], ["accuracy"])
    return path


def test_everything_arrives_readable_and_verified(source, tmp_path):
    target = str(tmp_path / "target.db")
    result = copy_tables(source, target)
    assert (result.rows, result.runs, result.predictions) == (5, 3, 5)
    assert (result.artifacts, result.blobs, result.models, result.aliases, result.left_out) == (5, 4, 3, 2, 0)
    for table in ("default", "other"):
        src, dst = Reader(source, table=table), Reader(target, table=table)
        assert dst.artifacts().equals(src.artifacts())
        for name, key, track_id in zip(src.artifacts()["name"], src.artifacts()["hash"], src.artifacts()["track_id"]):
            assert dst.artifact(name, track_id=track_id) == src.artifact(name, track_id=track_id)
            assert dst.artifact(key) == src.artifact(key)
        assert dst.runs()[["track_id", "status", "start", "end"]].equals(
            src.runs()[["track_id", "status", "start", "end"]]
        )
    assert Reader(target).artifact("data.csv") == b"a,b\n1,2\n"
    assert Reader(target).predictions("run-a", "val")["actual"].tolist() == [1.0, 2.0, 4.0]
    assert Reader(target, table="other").predictions("run-c")["prediction"].tolist() == [1, 0]
    assert Reader(target).models().equals(Reader(source).models())
    assert Reader(target).load_model("iris@staging") == {"weights": [1, 2]}
    assert Reader(target).load_model("iris@production") == b"model bytes"
    assert Reader(target).load_model("svm") == {"c": 1.0}
    assert count(target, "xetrack_blobs") == 4  # "shared bytes" once for two entries


def test_a_multi_chunk_blob_arrives_intact_across_transactions(tmp_path, monkeypatch):
    source, target = str(tmp_path / "source.db"), str(tmp_path / "target.db")
    monkeypatch.setattr(xetrack.store.chunks, "CHUNK_SIZE", 1024)
    with Tracker(source) as run:
        key = run.log_artifact(BIG, name="big.bin")
    monkeypatch.undo()
    assert count(source, "xetrack_chunks") == 49
    monkeypatch.setattr(files_side_tables, "BLOB_BYTES_PER_BATCH", 10_000)  # ~10 chunks a transaction
    transactions = []
    real = files_side_tables.SideCopy.blob

    def spy(self, key):
        original = self.transaction
        self.transaction = lambda body: transactions.append(1) or original(body)
        try:
            return real(self, key)
        finally:
            self.transaction = original

    monkeypatch.setattr(files_side_tables.SideCopy, "blob", spy)
    assert copy_tables(source, target).blobs == 1
    assert len(transactions) == 5  # 49 KiB in batches of 10 chunks
    assert count(target, "xetrack_chunks", "WHERE hash = ?", (key,)) == 49
    assert Reader(target).artifact("big.bin") == BIG
    with Reader(target).open_artifact(key) as stream:
        assert stream.read() == BIG


def test_damaged_source_bytes_are_not_copied(tmp_path, monkeypatch):
    source, target = str(tmp_path / "source.db"), str(tmp_path / "target.db")
    monkeypatch.setattr(xetrack.store.chunks, "CHUNK_SIZE", 1024)
    with Tracker(source) as run:
        key = run.log_artifact(BIG, name="big.bin")
    with sqlite3.connect(source) as conn:
        conn.execute("UPDATE xetrack_chunks SET data = zeroblob(1024) WHERE hash = ? AND seq = 30", (key,))
    conn.close()
    with pytest.raises(IntegrityError, match=f"{key} in .* are corrupt"):
        xetrack.copy(source, target)
    assert count(target, "xetrack_blobs") == 0 and count(target, "xetrack_artifacts") == 0
    with sqlite3.connect(source) as conn:
        conn.execute("DELETE FROM xetrack_chunks WHERE hash = ? AND seq = 30", (key,))
    conn.close()
    with pytest.raises(IntegrityError, match="chunk 31 of 49 is missing"):
        xetrack.copy(source, target)
    with pytest.raises(NotFoundError):
        Reader(target).artifact(key)


def test_bytes_shared_by_two_sources_are_stored_once(tmp_path):
    one, two, target = (str(tmp_path / f"{n}.db") for n in ("one", "two", "target"))
    for path, name in ((one, "a.bin"), (two, "b.bin")):
        with Tracker(path) as run:
            key = run.log_artifact(BIG, name=name)
    assert copy_tables(one, target).blobs == 1
    chunks = count(target, "xetrack_chunks")
    result = copy_tables(two, target)
    assert (result.blobs, result.artifacts) == (0, 1)
    assert count(target, "xetrack_blobs") == 1 and count(target, "xetrack_chunks") == chunks
    assert Reader(target).artifact("a.bin") == Reader(target).artifact("b.bin") == BIG
    assert sorted(Reader(target).artifacts()["hash"]) == [key, key]


def test_other_bytes_under_the_same_hash_refuse_the_copy(source, tmp_path):
    target = str(tmp_path / "target.db")
    with Tracker(target) as run:
        key = run.log_artifact(b"model bytes", name="mine.bin")
    with sqlite3.connect(target) as conn:
        conn.execute("UPDATE xetrack_blobs SET digest = ? WHERE hash = ?", ("0" * 64, key))
    conn.close()
    before = side_counts(target)
    with pytest.raises(IntegrityError, match=f"Hash {key} holds different bytes"):
        xetrack.copy(source, target)
    assert side_counts(target) == before and count(target, "default") == 0  # nothing was written


def test_registry_merge_renumbers_and_keeps_the_targets_aliases(source, tmp_path):
    target = str(tmp_path / "target.db")
    with Tracker(target) as run:
        run.register_model("iris", {"own": True}, alias="production")
    result = copy_tables(source, target, tables=[])
    assert (result.models, result.aliases) == (3, 1)  # iris 1, iris 2, svm 1; staging (production is taken)
    models = Reader(target).models().set_index(["name", "version"])
    assert list(models.index) == [("iris", 1), ("iris", 2), ("iris", 3), ("svm", 1)]
    assert models.loc[("iris", 1), "aliases"] == ["production"]  # TARGET's alias stays
    assert models.loc[("iris", 2), "aliases"] == ["staging"]  # SOURCE's version 1 became 2
    assert models.loc[("iris", 3), "description"] == "from bytes"
    assert Reader(target).load_model("iris@production") == {"own": True}
    assert Reader(target).load_model("iris:2") == {"weights": [1, 2]}
    assert Reader(target).load_model("iris:3") == b"model bytes"
    assert Reader(target).load_model("iris@staging") == {"weights": [1, 2]}

    with Tracker(source) as run:  # SOURCE moves on: a new version takes the next number
        run.register_model("iris", {"weights": [3]}, alias="candidate")
    result = copy_tables(source, target, tables=[])
    assert (result.models, result.aliases) == (1, 1)
    assert Reader(target).load_model("iris@candidate") == {"weights": [3]}
    assert Reader(target).models()["version"][Reader(target).models()["name"] == "iris"].tolist() == [1, 2, 3, 4]


def test_copying_twice_changes_nothing(source, tmp_path):
    target = str(tmp_path / "target.db")
    copy_tables(source, target)
    before = side_counts(target)
    models = Reader(target).models()
    result = copy_tables(source, target)
    assert (result.rows, result.runs, result.predictions, result.artifacts) == (0, 0, 0, 0)
    assert (result.blobs, result.models, result.aliases, result.assets) == (0, 0, 0, 0)
    assert side_counts(target) == before
    assert Reader(target).models().equals(models)


def test_tables_narrows_the_side_rows_and_bytes_but_not_the_registry(source, tmp_path):
    target = str(tmp_path / "target.db")
    result = copy_tables(source, target, tables=["other"])
    assert (result.runs, result.predictions, result.artifacts) == (1, 2, 1)
    assert Reader(target, table="other").artifact("other.txt") == b"only in other"
    assert count(target, "xetrack_artifacts", "WHERE \"table\" = 'default'") == 0
    assert count(target, "xetrack_runs", "WHERE \"table\" = 'default'") == 0
    assert count(target, "xetrack_predictions", "WHERE \"table\" = 'default'") == 0
    # The blob of "other.txt" and the one iris:2 points at; not those of default's artifacts.
    assert count(target, "xetrack_blobs") == 2
    assert len(Reader(target).models()) == 3 and Reader(target).load_model("iris:2") == b"model bytes"


def test_without_assets_only_entries_whose_bytes_target_holds(source, tmp_path):
    target = str(tmp_path / "target.db")
    with Tracker(target) as run:
        run.log_artifact(b"shared bytes", name="mine.txt")  # TARGET holds these bytes already
    result = copy_tables(source, target, assets=False)
    assert (result.assets, result.blobs) == (0, 0)
    assert (result.runs, result.predictions) == (3, 5)  # runs and predictions have no bytes
    assert (result.artifacts, result.models, result.left_out) == (2, 0, 6)
    assert sorted(Reader(target).artifacts()["name"]) == ["copy.txt", "mine.txt", "notes/shared.txt"]
    assert Reader(target).artifact("copy.txt") == b"shared bytes"
    assert Reader(target).models().empty and count(target, "xetrack_blobs") == 1

    result = copy_tables(source, target)  # with the bytes, the rest follows
    assert (result.artifacts, result.models, result.left_out) == (3, 3, 0)
    assert Reader(target).load_model("iris@production") == b"model bytes"
    assert Reader(target, table="other").artifact("other.txt") == b"only in other"


def test_a_finished_run_replaces_running_but_nothing_else(tmp_path):
    source, target = str(tmp_path / "worker.db"), str(tmp_path / "all.db")
    worker = Tracker(source, track_id="job").start()
    worker.log({"step": 1})
    copy_tables(source, target)
    assert run_status(target, "job") == "running"
    worker.log({"step": 2})
    worker.end("failed", "boom")
    result = copy_tables(source, target)
    assert (result.rows, result.runs) == (1, 1)
    assert run_status(target, "job") == "failed"
    assert Reader(target).runs().set_index("track_id").loc["job", "status"] == "failed"

    worker.start()  # running again in SOURCE: TARGET's final status stays
    assert copy_tables(source, target).runs == 0 and run_status(target, "job") == "failed"
    worker.end("finished")  # final in both, but different: TARGET's row is kept
    assert copy_tables(source, target).runs == 0 and run_status(target, "job") == "failed"
    worker.close()

    with Tracker(target, track_id="mine").start() as mine:  # running in TARGET, running in SOURCE
        with Tracker(source, track_id="mine").start():
            pass
        with sqlite3.connect(source) as conn:
            conn.execute("UPDATE xetrack_runs SET status = 'running', host = 'elsewhere' WHERE track_id = 'mine'")
        conn.close()
        assert copy_tables(source, target).runs == 0
        assert run_status(target, "mine") == "running"
        mine.log({"x": 1})


def test_predictions_and_artifacts_already_in_target_are_kept(source, tmp_path):
    target = str(tmp_path / "target.db")
    with Tracker(target, track_id="run-a") as run:
        run.log_artifact(b"target's own", name="notes/shared.txt")  # same run, same name
        run.log_predictions([9.0], [9.0], ["mae"], name="val")  # same run, name, idx 0
    xetrack.copy(source, target)
    assert Reader(target).artifact("notes/shared.txt", track_id="run-a") == b"target's own"
    assert Reader(target).predictions("run-a", "val")["prediction"].tolist() == [9.0, 2.0, 3.0]


def test_xt_copy_names_artifacts_and_models(source, tmp_path):
    target = str(tmp_path / "target.db")
    out = subprocess.run([XT, "copy", source, target], capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout == "Copied 5 rows, 2 assets, 5 artifacts and 3 model versions\n"
    out = subprocess.run(
        [XT, "copy", source, str(tmp_path / "bare.db"), "--no-assets"], capture_output=True, text=True, timeout=120
    )
    assert out.stdout == "Copied 5 rows\n"
    assert (
        out.stderr == "Left out 8 artifact entries and model versions: TARGET does not hold their bytes (--no-assets)\n"
    )


def test_copying_a_big_blob_holds_about_one_chunk_in_memory(tmp_path):
    import tracemalloc

    source, target = str(tmp_path / "source.db"), str(tmp_path / "target.db")
    chunk = xetrack.store.chunks.CHUNK_SIZE
    data = tmp_path / "weights.bin"
    data.write_bytes(os.urandom(8 * chunk))  # 32 MiB
    with Tracker(source) as run:
        run.log_artifact(str(data))
    tracemalloc.start()
    try:
        assert copy_tables(source, target).blobs == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * chunk, f"peak {peak:,} bytes"
    assert Reader(target).artifact("weights.bin") == data.read_bytes()
