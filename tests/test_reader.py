"""Reader: every run of a table, through either engine; never creates a database."""

import os

import pandas as pd
import pytest

import xetrack
from xetrack import ColumnNotFoundError, DatabaseError, Reader, TableNotFoundError, Tracker
from xetrack.store.sqlite import idle

ENGINES = ["sqlite", "duckdb"]


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "exp.db")
    first = Tracker(path, params={"model": "a"})
    first.track_id = "run-a"
    first.log_batch([{"epoch": i, "acc": 0.5 + i / 100} for i in range(1, 6)])
    second = Tracker(path, params={"model": "b"})
    second.track_id = "run-b"
    second.log_batch([{"epoch": i, "acc": 0.6 + i / 100} for i in range(1, 4)])
    first.close()
    second.close()
    return path


@pytest.mark.parametrize("engine", ENGINES)
def test_to_df_oldest_first_with_filters(db, engine):
    reader = Reader(db, engine=engine)
    frame = reader.to_df()
    assert len(frame) == len(reader) == 8
    assert frame["track_id"].tolist() == ["run-a"] * 5 + ["run-b"] * 3
    assert reader.to_df(track_id="run-b")["epoch"].tolist() == [1, 2, 3]
    assert reader.to_df(head=2)["epoch"].tolist() == [1, 2]
    assert reader.to_df(tail=3)["model"].tolist() == ["b", "b", "b"]
    assert reader.to_df(track_id="run-a", tail=2)["epoch"].tolist() == [4, 5]
    assert reader.to_df(track_id="missing").empty
    latest = reader.latest()  # the last run's rows, as a frame
    assert latest["track_id"].tolist() == ["run-b"] * 3 and latest["epoch"].tolist() == [1, 2, 3]
    assert reader.columns == ["timestamp", "track_id", "epoch", "acc", "model"]
    with pytest.raises(ValueError, match="head or tail"):
        reader.to_df(head=1, tail=1)
    with pytest.raises(ValueError):
        reader.to_df(head=-1)


def test_both_engines_return_the_same_frame(db):
    Tracker(db).log({"flag": True, "note": "x", "cfg": {"a": 1}})
    sqlite_frame = Reader(db).to_df()
    duck_frame = Reader(db, engine="duckdb").to_df()
    pd.testing.assert_frame_equal(sqlite_frame, duck_frame)


def test_read_db_classmethod(db):
    frame = Reader.read_db(db, engine="sqlite", table="default", track_id="run-a", head=2)
    assert frame["epoch"].tolist() == [1, 2]
    assert len(Reader.read_db(db, engine="duckdb", tail=1)) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_set_value_set_where_delete_run(db, engine):
    reader = Reader(db, engine=engine)
    assert reader.set_value("reviewed", True, track_id="run-a") == 5
    assert reader.set_where("acc", 0.0, "epoch", 1) == 2
    frame = reader.to_df()
    assert frame["reviewed"].isna().tolist() == [False] * 5 + [True] * 3
    assert frame.loc[frame.epoch == 1, "acc"].tolist() == [0.0, 0.0]
    assert reader.set_value("stage", "done") == 8
    assert reader.delete_run("run-a") == 5
    assert len(reader) == 3 and set(reader.to_df()["track_id"]) == {"run-b"}
    with pytest.raises(ColumnNotFoundError, match="epoc"):
        reader.set_where("acc", 1, "epoc", 1)


def test_column_access(db):
    reader = Reader(db)
    assert reader["epoch"].tolist() == [1, 2, 3, 4, 5, 1, 2, 3]
    with pytest.raises(ColumnNotFoundError, match="Did you mean: acc"):
        reader["acx"]


def test_missing_file_is_a_clear_error_and_is_not_created(tmp_path):
    path = tmp_path / "nope.db"
    for engine in ENGINES:
        with pytest.raises(FileNotFoundError, match=r"nope\.db"):
            Reader(path, engine=engine)
        with pytest.raises(FileNotFoundError):
            Reader.read_db(path, engine=engine)
    assert not path.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_missing_table_lists_the_tables(db, engine):
    Tracker(db, table="model_experiments")
    reader = Reader(db, engine=engine, table="model_experiment")
    listed = r"Did you mean: model_experiments.*Tables: default, model_experiments"
    with pytest.raises(TableNotFoundError, match=listed):
        reader.to_df()
    with pytest.raises(TableNotFoundError):
        len(reader)


def test_reader_does_not_create_tables_or_touch_the_file(db):
    idle.close_all()  # the connection kept for a next Tracker, closed as at exit
    assert not os.path.exists(db + "-wal")  # every write is checkpointed into the file
    before = os.stat(db).st_mtime_ns
    reader = Reader(db, table="other")
    with pytest.raises(TableNotFoundError):
        reader.to_df()
    Reader(db).to_df()
    Reader(db, engine="duckdb").to_df()
    assert os.stat(db).st_mtime_ns == before
    assert "other" not in Reader(db)._engine.tables()


@pytest.mark.parametrize("engine", ENGINES)
def test_corrupt_file_is_a_clear_error(tmp_path, engine):
    path = tmp_path / "bad.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseError, match="not a SQLite database"):
        Reader(path, engine=engine)
    with pytest.raises(DatabaseError):
        Tracker(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_directory_is_a_clear_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        Reader(tmp_path)


def test_unknown_engine(tmp_path):
    with pytest.raises(ValueError, match="Unknown engine"):
        Tracker(str(tmp_path / "x.db"), engine="postgres")


def test_in_memory_is_not_readable():
    with pytest.raises(ValueError, match="needs a database file"):
        Reader(Tracker.IN_MEMORY)


def test_backend_switch(db):
    polars = pytest.importorskip("polars")
    assert xetrack.get_backend() == "pandas"
    try:
        xetrack.set_backend("polars")
        assert xetrack.get_backend() == "polars"
        frame = Reader(db).to_df()
        assert isinstance(frame, polars.DataFrame) and frame.height == 8
        assert frame["epoch"].to_list() == [1, 2, 3, 4, 5, 1, 2, 3]
        tracker = Tracker(db)
        tracker.log({"x": 1})
        assert isinstance(tracker["x"], polars.Series)
        xetrack.set_backend("auto")  # pandas is installed: auto picks it, as 0.7.0 did
        assert xetrack.get_backend() == "pandas"
    finally:
        xetrack.set_backend("pandas")
    assert isinstance(Reader(db).to_df(), pd.DataFrame)
    with pytest.raises(ValueError, match="Unknown backend"):
        xetrack.set_backend("spark")


def test_a_table_name_in_the_second_place_gets_a_hint(tmp_path):
    db = str(tmp_path / "x.db")
    with pytest.raises(TypeError, match=r"params must be a dict, got str; to choose the table, pass table='runs'"):
        Tracker(db, "runs")
    with pytest.raises(ValueError, match=r"Unknown engine 'runs'.*; to choose the table, pass table='runs'"):
        Reader(db, "runs")
    assert not (tmp_path / "x.db").exists() or Reader(db).tables() == []
