"""Names, types and values: what goes in comes back, or a clear error says why not."""

import datetime as dt
import json
import math
import sqlite3
import threading

import numpy as np
import pandas as pd
import pytest

from xetrack import Reader, Tracker


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "types.db")


def test_keys_become_column_names(db):
    tracker = Tracker(db)
    row = tracker.log({"invalid key": 1, "a-b.c/d": 2, 7: 3, "ok_1": 4})
    assert list(row)[:4] == ["invalid_key", "a_b_c_d", "7", "ok_1"]
    assert {"invalid_key", "a_b_c_d", "7", "ok_1"} <= set(Reader(db).columns)


@pytest.mark.parametrize("key", ["1st", "select", "order", "from", 'a"b', "group"])
def test_awkward_keys_are_quoted(db, key):
    tracker = Tracker(db)
    tracker.log({key: 1.5})
    name = key.replace('"', "_")
    assert tracker[name].tolist() == [1.5]
    assert Reader(db, engine="duckdb").to_df()[name].tolist() == [1.5]


def test_keys_that_cannot_be_named_are_refused(db):
    tracker = Tracker(db)
    with pytest.raises(TypeError, match="Keys must be str or int"):
        tracker.log({(1, 2): 1})
    with pytest.raises(ValueError, match="Empty key"):
        tracker.log({"": 1})
    with pytest.raises(ValueError, match="same column"):
        tracker.log({"a b": 1, "a_b": 2})
    with pytest.raises(ValueError, match="ignore case"):
        tracker.log({"Acc": 1, "acc": 2})
    assert len(tracker) == 0


def test_key_differing_only_in_case_uses_the_existing_column(engine_db):
    db = engine_db  # a SQLite file, and a PostgreSQL store
    tracker = Tracker(db)
    tracker.log({"Acc": 1})
    tracker.log({"acc": 2})
    assert Reader(db).columns.count("Acc") == 1 and "acc" not in Reader(db).columns
    assert tracker["acc"].tolist() == [1, 2]


@pytest.mark.parametrize("name", ["my table", "a-b", "x;drop", "", "assets", "sqlite_master", "xetrack_runs"])
def test_bad_table_names_are_refused(db, name):
    with pytest.raises(ValueError, match="Table name"):
        Tracker(db, table=name)


def test_table_name_type(db):
    with pytest.raises(TypeError):
        Tracker(db, table=3)


def test_declared_types_follow_first_value(db):
    tracker = Tracker(db)
    tracker.log({"i": 1, "f": 0.5, "s": "x", "b": True, "j": {"k": 1}, "blob": b"\x00\x01"})
    declared = dict(tracker.conn.execute("SELECT name, type FROM pragma_table_info('default')").fetchall())
    assert declared["i"] == "INTEGER" and declared["f"] == "REAL" and declared["s"] == "TEXT"
    assert declared["b"] == "BOOLEAN" and declared["j"] == "TEXT" and declared["blob"] == "BLOB"


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_types_read_back(db, engine):
    tracker = Tracker(db)
    tracker.log({"other": 1})
    for epoch in (1, 2, 3):
        tracker.log({"epoch": epoch, "acc": epoch / 10, "ok": epoch != 2, "name": f"e{epoch}"})
    tracker.log({"big": 2**63 - 1, "small": -(2**63)})
    frame = Reader(db, engine=engine).to_df()
    assert str(frame["epoch"].dtype) == "Int64"
    assert frame["epoch"].dropna().tolist() == [1, 2, 3]
    assert str(frame["ok"].dtype) == "boolean"
    assert frame["ok"].dropna().tolist() == [True, False, True]
    assert frame["acc"].dtype == np.float64
    assert frame["big"].dropna().tolist() == [2**63 - 1]
    assert frame["small"].dropna().tolist() == [-(2**63)]
    assert frame["name"].dropna().tolist() == ["e1", "e2", "e3"]


def test_values_are_coerced(db):
    tracker = Tracker(db)
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 600)
    row = tracker.log(
        {
            "np_int": np.int64(3),
            "np_float": np.float32(0.5),
            "np_bool": np.bool_(True),
            "np_nan": np.float64("nan"),
            "none": None,
            "when": when,
            "day": dt.date(2024, 1, 2),
            "lst": [1, 2.5, "x"],
            "tup": (1, 2),
            "dct": {"a": {"b": [1, np.int64(2)]}},
            "nested_nan": [1.0, math.nan, math.inf],
            "pd_ts": pd.Timestamp("2024-01-02 03:04:05"),
        }
    )
    assert row["np_int"] == 3 and type(row["np_int"]) is int
    assert row["np_float"] == 0.5 and type(row["np_float"]) is float
    assert row["np_bool"] is True
    assert row["np_nan"] is None and row["none"] is None
    assert row["when"] == "2024-01-02 03:04:05.000600" and row["day"] == "2024-01-02"
    assert json.loads(row["lst"]) == [1, 2.5, "x"] and json.loads(row["tup"]) == [1, 2]
    assert json.loads(row["dct"]) == {"a": {"b": [1, 2]}}
    assert json.loads(row["nested_nan"]) == [1.0, None, math.inf]
    assert row["pd_ts"] == "2024-01-02 03:04:05"
    stored = Reader(db).latest().to_dict("records")[-1]
    assert stored["np_int"] == 3 and stored["np_bool"] is True and stored["when"] == row["when"]


def test_json_is_queryable(db):
    tracker = Tracker(db)
    tracker.log({"cfg": {"optimizer": {"lr": 0.01}}})
    value = tracker.conn.execute("SELECT json_extract(cfg, '$.optimizer.lr') FROM \"default\"").fetchone()[0]
    assert value == 0.01
    duck = Tracker(db, engine="duckdb")
    assert duck.conn.execute("SELECT cfg->>'$.optimizer.lr' FROM db.\"default\"").fetchall() == [("0.01",)]


def test_later_value_of_another_type_is_stored_not_rejected(db):
    tracker = Tracker(db)
    tracker.log({"epoch": 1, "acc": 0.5, "name": "a"})
    tracker.log({"epoch": "three", "acc": "n/a", "name": 5})
    tracker.log({"epoch": 2.5})
    for engine in ("sqlite", "duckdb"):
        frame = Reader(db, engine=engine).to_df()
        assert frame["epoch"].tolist() == [1, "three", 2.5]
        assert frame["acc"].tolist()[:2] == [0.5, "n/a"]
        assert frame["name"].tolist()[:2] == ["a", "5"]  # TEXT affinity keeps text


def test_int_beyond_64_bits_is_a_clear_error(db):
    tracker = Tracker(db)
    with pytest.raises(ValueError, match="64-bit integer range"):
        tracker.log({"a": 2**64})
    assert len(tracker) == 0


def test_unpicklable_objects_are_a_clear_type_error(db):
    tracker = Tracker(db)
    with pytest.raises(TypeError, match=r"'lock'.*cloudpickle cannot serialize"):
        tracker.log({"lock": threading.Lock()})
    with pytest.raises(TypeError, match="cloudpickle"):
        tracker.log({"gen": (i for i in range(3))})
    assert len(tracker) == 0 and len(tracker.assets) == 0


def test_keys_past_the_column_limit_are_stored_and_the_table_stays_under_it(db):
    """Past SQLite's column limit (less a reserve) keys are spilled, not refused
    (docs/runs.md): every value reads back, the table itself stays under the limit."""
    tracker = Tracker(db, params={"model": "m"})
    limit = sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_COLUMN)
    tracker.log({f"k{i}": i for i in range(limit - 10)})
    tracker.log({f"n{i}": i for i in range(20)})
    tracker.log_batch([{f"m{i}": i + 0.5 for i in range(20)}])
    frame = Reader(db).to_df()
    assert len(frame) == 3 and frame["k1989"].tolist()[0] == limit - 11 and frame["n19"].tolist()[1] == 19
    assert frame["m3"].tolist()[2] == 3.5 and frame["model"].tolist() == ["m"] * 3
    conn = sqlite3.connect(db)
    assert len(conn.execute('SELECT * FROM pragma_table_info("default")').fetchall()) < limit
    conn.close()


class _NoGetlimit(sqlite3.Connection):
    """A connection as Python 3.10's sqlite3 makes it: no ``getlimit`` (new in 3.11)."""

    @property
    def getlimit(self):
        raise AttributeError("'sqlite3.Connection' object has no attribute 'getlimit'")


def test_without_getlimit_the_limits_are_sqlites_defaults(db, monkeypatch):
    """Python 3.10 is supported: the column limit falls back to SQLite's default of 2000
    columns, the chunk size of an artifact to the 1 GB value limit."""
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kwargs: connect(*args, factory=_NoGetlimit, **kwargs))
    tracker = Tracker(db)
    assert not hasattr(tracker._engine._live(), "getlimit")
    tracker.log({f"k{i}": i for i in range(1990)})  # with timestamp and track_id: 1992 keys
    tracker.log({f"n{i}": i for i in range(20)})  # past 2000 less the reserve: spilled
    spilled = Reader(db).to_df()["n19"]
    assert len(tracker) == 2 and spilled.isna().tolist() == [True, False] and spilled.iloc[1] == 19
    assert len(tracker._engine._read_columns(tracker._engine._live(), "default")) == 2000 - 64
    digest = tracker.log_artifact(b"weights" * 100, name="w.bin")
    assert Reader(db).artifact(digest) == b"weights" * 100


def test_huge_text_round_trips(db):
    text = "x" * 5_000_000
    Tracker(db).log({"big": text})
    assert Reader(db).latest()["big"].tolist() == [text]


def test_rowid_named_key_keeps_row_order(db):
    tracker = Tracker(db)
    tracker.log_batch([{"rowid": 10 - i, "oid": i} for i in range(5)])
    assert tracker["oid"].tolist() == [0, 1, 2, 3, 4]
    assert tracker.tail(2)["oid"].tolist() == [3, 4]
    assert Reader(db, engine="duckdb").to_df(tail=2)["oid"].tolist() == [3, 4]


def test_frames_without_pandas_private_helpers_match(db, monkeypatch):
    """The numpy fallback (for a pandas without lib.maybe_convert_objects) gives the same frame."""
    import xetrack.frames as frames

    tracker = Tracker(db)
    tracker.log({"other": "x"})
    tracker.log_batch([{"i": i, "f": i / 2, "b": i % 2 == 0, "s": f"s{i}"} for i in range(50)])
    tracker.log({"i": 2**63 - 1, "mixed": 1})
    tracker.log({"mixed": "two"})
    fast = Reader(db).to_df()
    monkeypatch.setattr(frames, "_infer", None)
    monkeypatch.setattr(frames, "_object_table", None)
    slow = Reader(db).to_df()
    pd.testing.assert_frame_equal(fast, slow)
    assert str(slow["i"].dtype) == "Int64" and slow["mixed"].dropna().tolist() == [1, "two"]
