"""The asset store: objects pickled once by content hash, in the same database file."""

import pickle
import sqlite3

import cloudpickle
import numpy as np
import pytest
from sqlitedict import SqliteDict

from xetrack import Reader, Tracker

ENGINES = ["sqlite", "duckdb"]


class Model:
    """A model-like object whose behaviour lives in a lambda (plain pickle can't do that)."""

    def __init__(self, scale):
        self.scale = scale
        self.predict = lambda x: [v * self.scale for v in x]

    def __eq__(self, other):
        return isinstance(other, Model) and other.scale == self.scale


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "assets.db")


@pytest.mark.parametrize("engine", ENGINES)
def test_object_is_stored_once_and_logged_as_its_hash(db, engine):
    tracker = Tracker(db, engine=engine, params={"model": "scaler"})
    model = Model(3)
    row = tracker.log({"accuracy": 0.9, "lr": model})
    digest = row["lr"]
    assert isinstance(digest, str) and len(digest) == 16 and int(digest, 16) >= 0
    assert Reader(db, engine=engine).to_df()["lr"].tolist() == [digest]
    loaded = tracker.get(digest)
    assert loaded.predict([1, 2]) == [3, 6]  # the lambda came back
    assert Reader(db, engine=engine).assets[digest].scale == 3
    assert tracker.get("0" * 16) is None


@pytest.mark.parametrize("engine", ENGINES)
def test_same_object_from_two_runs_and_two_tables_is_stored_once(db, engine):
    weights = np.arange(1000, dtype=np.float64)
    first = Tracker(db, engine=engine, table="train")
    second = Tracker(db, engine=engine, table="serve")
    h1 = first.log({"w": weights})["w"]
    h2 = second.log({"w": weights.copy()})["w"]
    h3 = Tracker(db, engine=engine, table="train").log({"w": weights})["w"]
    assert h1 == h2 == h3
    assert len(first.assets) == 1 == len(Reader(db).assets)
    assert first.assets.references(h1) == 3
    np.testing.assert_array_equal(first.get(h1), weights)
    blob_rows = sqlite3.connect(db).execute("SELECT count(*) FROM assets").fetchone()[0]
    assert blob_rows == 1


def test_logging_the_hash_string_stores_no_second_copy(db):
    tracker = Tracker(db)
    digest = tracker.log({"model": Model(2)})["model"]
    size = len(tracker.assets.bytes(digest))
    row = tracker.log({"model": digest})  # the tip in the README: log the hash afterwards
    assert row["model"] == digest
    assert len(tracker.assets) == 1 and len(tracker.assets.bytes(digest)) == size
    assert tracker.assets.references(digest) == 2
    tracker.log({"note": "0123456789abcdef"})  # hash-shaped, but no such asset
    assert tracker.assets.references("0123456789abcdef") == 0 and len(tracker.assets) == 1


def test_assets_in_log_batch(db):
    tracker = Tracker(db)
    model = Model(5)
    assert tracker.log_batch([{"step": i, "model": model, "arr": np.ones(3) * i} for i in range(4)]) == 4
    frame = tracker.to_df()
    assert frame["model"].nunique() == 1 and frame["arr"].nunique() == 4
    assert len(tracker.assets) == 5
    assert tracker.assets.references(frame["model"][0]) == 4
    np.testing.assert_array_equal(tracker.get(frame["arr"][3]), np.ones(3) * 3)


@pytest.mark.parametrize("engine", ENGINES)
def test_remove_asset_deletes_it_and_clears_the_column(db, engine):
    tracker = Tracker(db, engine=engine)
    keep = tracker.log({"model": Model(1)})["model"]
    gone = tracker.log({"model": Model(2)})["model"]
    tracker.log({"model": Model(2)})
    other_run = Tracker(db, engine=engine)
    other_run.log({"model": Model(2)})
    assert tracker.remove_asset(gone, "model") == 3  # every run's rows in this table
    assert tracker.get(gone) is None and gone not in tracker.assets
    models = Reader(db, engine=engine).to_df()["model"].tolist()
    assert models[0] == keep and all(m is None or m != m for m in models[1:])
    assert len(tracker.assets) == 1
    with pytest.raises(KeyError, match="No asset"):
        tracker.remove_asset(gone, "model")
    with pytest.raises(KeyError, match="modle"):
        tracker.remove_asset(keep, "modle")


def test_assets_mapping_and_export(db, tmp_path):
    tracker = Tracker(db)
    digests = [tracker.log({"obj": frozenset([i, "x"]), "i": i})["obj"] for i in range(3)]
    assert len(set(digests)) == 3
    reader = Reader(db)
    assert len(reader.assets) == 3 and list(reader.assets) == digests
    assert digests[1] in reader.assets and "nope" not in reader.assets
    out = tmp_path / "model.cloudpickle"
    assert reader.assets.export(digests[2], out) == out.stat().st_size
    with open(out, "rb") as handle:
        assert cloudpickle.loads(handle.read()) == frozenset([2, "x"])
    assert reader.assets.counts() == dict.fromkeys(digests, 1)
    assert reader.assets.delete(digests[0]) is True and reader.assets.delete(digests[0]) is False
    assert len(reader.assets) == 2


def test_assets_table_is_sqlitedicts_layout(db):
    tracker = Tracker(db)
    digest = tracker.log({"model": Model(7)})["model"]
    tracker.close()
    # journal_mode: sqlitedict would otherwise switch the WAL file to rollback mode
    with SqliteDict(db, tablename="assets", flag="r", journal_mode="WAL", decode=pickle.loads) as store:
        assert list(store.keys()) == [digest]
        assert store[digest].scale == 7


def test_dict_holding_an_object_is_stored_as_an_asset(db):
    tracker = Tracker(db)
    value = {"model": Model(4), "name": "m"}
    digest = tracker.log({"bundle": value})["bundle"]
    assert tracker.get(digest)["model"].scale == 4


def test_in_memory_and_skip_insert(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    memory = Tracker(Tracker.IN_MEMORY)
    digest = memory.log({"m": Model(1)})["m"]
    assert memory.get(digest).scale == 1 and len(memory.assets) == 1
    skip = Tracker(Tracker.SKIP_INSERT)
    assert skip.log({"m": Model(1)})["m"] == digest  # the hash, nothing stored
    assert skip.get(digest) is None and len(skip.assets) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_file_without_assets_reads_as_empty(db):
    Tracker(db).log({"a": 1})
    reader = Reader(db)
    assert len(reader.assets) == 0 and list(reader.assets) == [] and reader.assets.get("x") is None
    assert "assets" not in {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}


def test_failed_row_does_not_count_the_asset(db):
    tracker = Tracker(db)
    tracker.log({"a": 1})
    with pytest.raises(ValueError, match="64-bit"):
        tracker.log({"model": Model(9), "a": 2**70})
    assert len(tracker.assets) == 0 and len(tracker) == 1


def test_row_refused_in_its_transaction_leaves_no_asset(db):
    # Keys past the column limit are spilled, not refused; but a table another tool filled
    # to the limit has no room for the spill's link column, so a new key is refused there.
    limit = sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_COLUMN)
    tracker = Tracker(db)
    tracker.log({"k0": 0})
    have = len(Reader(db).to_df().columns)
    with sqlite3.connect(db) as conn:
        for i in range(1, limit - have + 1):
            conn.execute(f'ALTER TABLE "default" ADD COLUMN "k{i}"')
    with pytest.raises(ValueError, match="limit"):
        tracker.log({"model": Model(1), "new_key": 1})
    assert len(tracker.assets) == 0 and len(tracker) == 1
