"""log()'s fast path (rows of the previous row's keys and value types) stores exactly
what the full path stores."""

import math
import sqlite3

import pytest

from xetrack import Tracker


def stored(db, sql):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_rows_of_one_shape_take_the_fast_path(db):
    tracker = Tracker(db, params={"model": "rf"})
    for i in range(3):
        row = tracker.log({"step": i, "loss": 0.5 * i, "split": "train", "best": i == 2, "note": None})
    assert tracker._shape is not None  # the later rows were stored by the fast path
    assert list(row) == ["step", "loss", "split", "best", "note", "model", "timestamp", "track_id"]
    assert row["model"] == "rf" and row["best"] is True and row["track_id"] == tracker.track_id
    rows = stored(db, 'SELECT step, loss, split, best, note, model, timestamp FROM "default" ORDER BY rowid')
    assert [r[:6] for r in rows] == [(i, 0.5 * i, "train", int(i == 2), None, "rf") for i in range(3)]
    stamps = [r[6] for r in rows]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3


def test_nan_on_the_fast_path_is_none(db):
    tracker = Tracker(db)
    tracker.log({"a": 1.0, "b": 2.0})
    tracker.log({"a": 1.5, "b": 2.5})
    row = tracker.log({"a": math.nan, "b": 3.0})
    assert row["a"] is None
    assert stored(db, 'SELECT a, b FROM "default" ORDER BY rowid')[-1] == (None, 3.0)


def test_a_float_after_none_still_records_the_type(db):
    tracker = Tracker(db)
    tracker.log({"x": None, "y": 1})
    tracker.log({"x": None, "y": 2})
    tracker.log({"x": None, "y": 3})
    tracker.log({"x": 0.5, "y": 4})  # another type: the full path records REAL
    tracker.log({"x": 1, "y": 5.5})
    types = Tracker(db)._engine.column_types("default")
    assert types["x"] == "REAL" and types["y"] == "REAL"


def test_a_hash_like_str_counts_a_reference(db):
    tracker = Tracker(db)
    digest = tracker.log({"model": object.__new__(Ref), "tag": "a"})["model"]
    tracker.log({"ref": "x" * 16, "tag": "b"})
    tracker.log({"ref": "y" * 16, "tag": "c"})
    tracker.log({"ref": digest, "tag": "d"})  # the same shape, but a hash: counted
    assert tracker._engine.asset_refs(digest) == 2


class Ref:
    pass


def test_an_int_beyond_64_bits_raises_the_clear_error(db):
    tracker = Tracker(db)
    tracker.log({"n": 1})
    tracker.log({"n": 2})
    with pytest.raises(ValueError, match="64-bit integer range"):
        tracker.log({"n": 2**70})
    assert stored(db, 'SELECT count(*) FROM "default"') == [(2,)]
    tracker.log({"n": 3})
    assert stored(db, 'SELECT n FROM "default" ORDER BY rowid') == [(1,), (2,), (3,)]


def test_new_params_and_track_id_reach_the_next_row(db):
    tracker = Tracker(db, params={"p": 1})
    tracker.log({"a": 1})
    tracker.log({"a": 2})
    tracker.set_params({"p": 2, "q": "x"})
    assert tracker.log({"a": 3})["q"] == "x"
    tracker.track_id = "other-run"
    row = tracker.log({"a": 4})
    assert (row["p"], row["q"], row["track_id"]) == (2, "x", "other-run")
    assert stored(db, 'SELECT a, p, q, track_id FROM "default" ORDER BY rowid')[-1] == (4, 2, "x", "other-run")


def test_a_reset_by_another_tracker_is_seen(db):
    tracker = Tracker(db)
    tracker.log({"a": 1, "b": 2})
    tracker.log({"a": 1, "b": 3})
    Tracker(db, reset=True).close()  # drops and recreates the table without a and b
    tracker.log({"a": 1, "b": 4})
    assert stored(db, 'SELECT a, b FROM "default"') == [(1, 4)]


def test_keys_that_are_not_their_column_names(db):
    tracker = Tracker(db)
    for i in range(3):
        row = tracker.log({1: i, "ok": i})
    assert row == {"1": 2, "ok": 2, "timestamp": row["timestamp"], "track_id": tracker.track_id}
