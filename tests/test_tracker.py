"""Tracker: one run, its rows, params and views, through the public API."""

import math
import re
import threading

import pandas as pd
import pytest

from xetrack import ColumnNotFoundError, Reader, Tracker


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "exp.db")


def test_log_returns_the_row_as_stored(db):
    tracker = Tracker(db, params={"model": "resnet18"})
    row = tracker.log({"accuracy": 0.9, "loss": 0.1, "epoch": 1})
    assert list(row) == ["accuracy", "loss", "epoch", "model", "timestamp", "track_id"]
    assert row["model"] == "resnet18" and row["track_id"] == tracker.track_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", row["timestamp"])
    reader = Reader(db)
    stored = reader._engine.last_row(reader.table_name)  # the last row, as another process reads it
    assert stored == row
    assert reader.latest().to_dict("records") == [row]  # latest(): the last run's rows, a frame


def test_track_id_is_a_readable_slug_and_assignable(db):
    tracker = Tracker(db)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)+-\d{4}", tracker.track_id)
    assert Tracker.generate_track_id() != Tracker.generate_track_id()
    tracker.track_id = "my-run"
    assert tracker.log({"a": 1})["track_id"] == "my-run"
    with pytest.raises(TypeError):
        tracker.track_id = 5


def test_a_new_tracker_on_the_same_file_is_a_new_run(db):
    first, second = Tracker(db), Tracker(db)
    first.log({"a": 1})
    second.log({"a": 2})
    second.log({"a": 3})
    assert first.track_id != second.track_id
    assert len(first) == 1 and len(second) == 2
    assert list(first.to_df()["a"]) == [1]
    assert list(second.to_df(all=True)["a"]) == [1, 2, 3]


def test_params_are_added_to_every_future_row(db):
    tracker = Tracker(db)
    tracker.log({"acc": 0.1})
    tracker.set_params({"model": "resnet18", "dataset": "cifar10"})
    tracker.set_param("lr", 0.01)
    row = tracker.log({"acc": 0.2})
    assert (row["model"], row["dataset"], row["lr"]) == ("resnet18", "cifar10", 0.01)
    assert tracker.params == {"model": "resnet18", "dataset": "cifar10", "lr": 0.01}
    frame = tracker.to_df()
    assert frame["model"].isna().tolist() == [True, False]


def test_logged_value_wins_over_param_of_same_name(db):
    tracker = Tracker(db, params={"model": "a"})
    assert tracker.log({"model": "b"})["model"] == "b"


def test_set_value_rewrites_only_this_run(db):
    other = Tracker(db)
    other.log({"acc": 1.0})
    tracker = Tracker(db)
    tracker.log({"acc": 0.5})
    tracker.log({"acc": 0.6})
    assert tracker.set_value("test_accuracy", 0.9) == 2
    assert tracker.to_df()["test_accuracy"].tolist() == [0.9, 0.9]
    everything = tracker.to_df(all=True)
    assert everything.loc[everything.track_id == other.track_id, "test_accuracy"].isna().all()


def test_set_where_in_this_run(db):
    tracker = Tracker(db)
    tracker.log_batch([{"split": "train", "acc": 0.5}, {"split": "test", "acc": 0.4}])
    assert tracker.set_where("flag", True, "split", "test") == 1
    flags = tracker.to_df()["flag"]
    assert str(flags.dtype) == "boolean"
    assert flags.isna().tolist() == [True, False] and bool(flags[1]) is True
    with pytest.raises(ColumnNotFoundError, match=r"splt.*Did you mean: split"):
        tracker.set_where("flag", True, "splt", "test")


def test_views_cover_the_current_run_only(db):
    Tracker(db).log_batch([{"x": -1}, {"x": -2}])
    tracker = Tracker(db)
    for i in range(1, 8):
        tracker.log({"x": i})
    assert len(tracker) == 7
    assert tracker.latest["x"] == 7
    assert tracker[1]["x"] == 1 and tracker[7]["x"] == 7 and tracker[-1]["x"] == 7
    assert tracker.head(2)["x"].tolist() == [1, 2]
    assert tracker.tail(3)["x"].tolist() == [5, 6, 7]
    assert tracker["x"].tolist() == list(range(1, 8))
    assert tracker.to_df()["x"].tolist() == list(range(1, 8))
    with pytest.raises(IndexError):
        tracker[8]
    with pytest.raises(IndexError):
        tracker[0]
    with pytest.raises(ColumnNotFoundError):
        tracker["nope"]


def test_run_frame_leaves_out_columns_only_other_runs_filled(db):
    Tracker(db).log({"other_metric": 1})
    tracker = Tracker(db)
    tracker.log({"acc": 0.5})
    assert "other_metric" not in tracker.to_df().columns
    assert "other_metric" in tracker.to_df(all=True).columns


def test_repr_and_html_show_the_run_as_a_table(db):
    tracker = Tracker(db)
    for i in range(30):
        tracker.log({"step": i, "loss": 1 / (i + 1)})
    text = repr(tracker)
    assert tracker.track_id in text and "[30 rows x 4 columns]" in text
    assert "..." in text and " 29 " in text  # head and tail shown, middle cut
    html = tracker._repr_html_()
    assert "<table" in html and "30 rows" in html
    assert "<table" in Reader(db)._repr_html_()


def test_to_csv_and_to_parquet(db, tmp_path):
    tracker = Tracker(db, params={"model": "m"})
    tracker.log_batch([{"epoch": i, "acc": i / 10} for i in range(5)])
    tracker.to_csv(tmp_path / "run.csv")
    tracker.to_parquet(tmp_path / "run.parquet")
    csv = pd.read_csv(tmp_path / "run.csv")
    parquet = pd.read_parquet(tmp_path / "run.parquet")
    assert csv["epoch"].tolist() == parquet["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert set(parquet["model"]) == {"m"}


def test_log_batch_is_one_transaction_with_increasing_timestamps(db):
    tracker = Tracker(db, params={"p": 1})
    assert tracker.log_batch([{"i": i, "f": i * 0.5} for i in range(1000)]) == 1000
    frame = tracker.to_df()
    assert frame["i"].tolist() == list(range(1000))
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique
    assert set(frame["p"]) == {1}


def test_log_batch_with_different_keys_per_row(db):
    tracker = Tracker(db)
    tracker.log_batch([{"a": 1}, {"b": "x"}, {"a": 3, "c": [1, 2]}, {"d": None}])
    frame = tracker.to_df()
    assert frame["a"].tolist()[0] == 1 and frame["b"].tolist()[1] == "x"
    assert frame["c"].tolist()[2] == "[1, 2]"
    assert len(frame) == 4


def test_log_batch_bad_value_writes_nothing(db):
    tracker = Tracker(db)
    with pytest.raises(ValueError, match="64-bit"):
        tracker.log_batch([{"a": 1}, {"a": 2**70}])
    with pytest.raises(TypeError, match="cloudpickle cannot serialize"):
        tracker.log_batch([{"a": 1}, {"a": threading.Lock()}])
    assert len(tracker) == 0 and len(tracker.assets) == 0


def test_reset_drops_existing_rows(db):
    Tracker(db).log({"a": 1})
    tracker = Tracker(db, reset=True)
    assert len(Reader(db)) == 0
    tracker.log({"b": 2})
    assert Reader(db).columns == ["timestamp", "track_id", "b"]


def test_tables_are_independent(db):
    models = Tracker(db, table="model_experiments")
    data = Tracker(db, table="data_experiments")
    models.log({"acc": 0.9})
    data.log({"rows": 100})
    assert Reader(db, table="model_experiments").columns == ["timestamp", "track_id", "acc"]
    assert Reader(db, table="data_experiments").to_df()["rows"].tolist() == [100]


def test_in_memory_stores_nothing_on_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracker = Tracker(Tracker.IN_MEMORY, params={"m": 1})
    tracker.log({"a": 1})
    tracker.log({"a": 2})
    assert tracker.to_df()["a"].tolist() == [1, 2]
    assert list(tmp_path.iterdir()) == []


def test_skip_insert_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracker = Tracker(Tracker.SKIP_INSERT, params={"m": 1})
    row = tracker.log({"a": 1})
    assert row["a"] == 1 and row["m"] == 1
    assert len(tracker) == 0 and tracker.latest is None
    assert list(tmp_path.iterdir()) == []


def test_context_manager_closes_and_reopens_lazily(db):
    with Tracker(db) as tracker:
        tracker.log({"a": 1})
    assert tracker.log({"a": 2})["a"] == 2
    assert len(tracker) == 2


def test_non_dict_log_is_a_type_error(db):
    with pytest.raises(TypeError, match="takes a dict"):
        Tracker(db).log([1, 2])


def test_nan_is_stored_as_null(db):
    tracker = Tracker(db)
    assert tracker.log({"a": math.nan, "b": 1.0})["a"] is None
    assert "a" in Reader(db).columns  # a key logged as NaN (None) has its column
    assert Reader(db).to_df()["a"].tolist() == [None]
    tracker.log({"a": 0.5})
    tracker.log_batch([{"a": math.nan, "b": 2.0}])
    values = Reader(db).to_df()["a"].tolist()
    assert math.isnan(values[0]) and values[1] == 0.5 and math.isnan(values[2])
    raw = tracker.conn.execute('SELECT count(*) FROM "default" WHERE a IS NULL').fetchone()[0]
    assert raw == 2


def test_html_shows_logged_markup_as_text(db):
    """A logged string and a run id render escaped in the notebook view (a key is made a
    column name first: its markup characters become underscores)."""
    tracker = Tracker(db, track_id="<i>run</i>")
    tracker.log({"<b>key</b>": "<script>alert(1)</script>", "n": 1})
    for html in (tracker._repr_html_(), Reader(db)._repr_html_()):
        assert "<script>" not in html and "<b>key" not in html and "<i>run" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<th>_b_key__b_</th>" in html
        assert "&lt;i&gt;run&lt;/i&gt;" in html
