"""A key logged as None gets its column, and numbers widen as pandas widens them.

Each column has a logical type (the side table ``xetrack_columns``): a column added
for None is declared with no type and its first value decides, and an INTEGER column
that receives a float reads back as float64. See docs/concepts.md, "Types".
"""

import math
import os
import random
import sqlite3

import numpy as np
import pandas as pd
import pytest

import xetrack
from xetrack import Reader, Tracker

HUGE = 2**60 + 1  # beyond float64's exact ints


def expected_series(values):
    """What pandas builds from the logged values, with xetrack's rules: NaN is None,
    ints alone are a nullable Int64 (exact), bools alone a nullable boolean."""
    values = [None if isinstance(v, float) and v != v else v for v in values]
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pd.Series(values, dtype=object)
    if kinds == {bool}:
        return pd.Series(values, dtype="boolean")
    if kinds == {int}:
        return pd.Series(values, dtype="Int64")
    if kinds <= {int, float}:
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
    if kinds == {str}:
        return pd.Series(values)  # pandas' own inference for text
    return pd.Series(values, dtype=object)


def assert_column(frame, name, values):
    got = frame[name].reset_index(drop=True)
    try:
        pd.testing.assert_series_equal(got, expected_series(values), check_names=False)
    except AssertionError as exc:
        raise AssertionError(f"column {name!r}: {exc}") from None


def table_types(db, table="default"):
    with sqlite3.connect(db) as conn:
        try:
            return dict(conn.execute('SELECT "name", "type" FROM xetrack_columns WHERE "tbl" = ?', (table,)))
        except sqlite3.OperationalError:
            return {}


def declared(db, table="default"):
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT name, type FROM pragma_table_info(?)", (table,)).fetchall())


# ----------------------------------------------------------- a key logged as None
def test_log_none_makes_the_column(db, engine):
    t = Tracker(db, engine=engine)
    row = t.log({"v": None})
    assert row["v"] is None
    assert "v" in Reader(db).columns and declared(db)["v"] == ""  # a real, untyped column
    assert t.latest["v"] is None
    assert t.to_df()["v"].tolist() == [None]
    assert Reader(db, engine=engine).to_df()["v"].tolist() == [None]
    assert t[1]["v"] is None and t[-1]["v"] is None


def test_dataclass_field_that_is_none(db, engine):
    t = Tracker(db, engine=engine)
    t.log({"a": 1, "cfg_optimizer": None})
    assert t.latest["cfg_optimizer"] is None and t.latest["a"] == 1
    assert "cfg_optimizer" in t.to_df().columns


def test_params_that_are_none(db, engine):
    t = Tracker(db, params={"cfg_optimizer": None, "model": "rf"}, engine=engine)
    t.log({"acc": 0.5})
    assert t.latest["cfg_optimizer"] is None and t.latest["model"] == "rf"
    assert Reader(db, engine=engine).to_df()["cfg_optimizer"].tolist() == [None]


def test_log_batch_none_makes_the_column(db, engine):
    t = Tracker(db, engine=engine)
    assert t.log_batch([{"a": 1, "v": None}, {"a": 2, "v": None}]) == 2
    assert t.latest["v"] is None
    assert_column(Reader(db, engine=engine).to_df(), "v", [None, None])
    t.log_batch([{"other": 1}, {"w": None}])  # the general path, keys differ per row
    assert t.latest["w"] is None and "w" in Reader(db).columns
    t.log_batch([{"w": None}, {"other": 2}])
    assert "w" not in t.latest and t[-2]["w"] is None  # latest: the last row's keys


def test_set_value_and_set_where_none_make_the_column(db, engine):
    t = Tracker(db, engine=engine)
    t.log({"a": 1})
    t.log({"a": 2})
    assert t.set_value("v", None) == 2
    assert t.latest["v"] is None
    assert t.set_where("w", None, "a", 1) == 1
    assert t.latest["w"] is None and "w" in Reader(db).columns
    assert t.set_value("v", 7) == 2  # the first value decides
    assert_column(Reader(db, engine=engine).to_df(), "v", [7, 7])
    reader = Reader(db, engine=engine)
    assert reader.set_value("r", None) == 2 and "r" in reader.columns


def test_latest_shows_the_keys_of_the_last_row_logged(db, engine):
    t = Tracker(db, engine=engine)
    t.log({"a": 1, "v": None})
    t.log({"b": 2})
    assert t.latest["b"] == 2 and "a" not in t.latest and "v" not in t.latest  # as log() returned it
    assert t[1]["v"] is None and t[-1]["a"] is None  # a row by number: every key this Tracker logged
    assert list(t.to_df().columns[2:]) == ["a", "v", "b"]
    t.set_value("v", None)
    assert t.latest["v"] is None


def test_other_runs_columns_stay_out_of_this_runs_latest(db, engine):
    Tracker(db, engine=engine).log({"other": 5, "shared": None})
    t = Tracker(db, engine=engine)
    t.log({"a": 1})
    assert "other" not in t.latest and "shared" not in t.latest
    assert "other" not in t.to_df().columns and "shared" not in t.to_df().columns
    t.log({"shared": None})
    assert t.latest["shared"] is None and "other" not in t.latest
    assert "shared" in t.to_df().columns


@pytest.mark.parametrize(
    "later",
    [3, HUGE, 0.5, True, "adam", [1, 2]],
    ids=["int", "huge-int", "float", "bool", "str", "json"],
)
def test_the_first_value_after_none_decides_the_dtype(db, engine, later):
    t = Tracker(db, engine=engine)
    t.log({"v": None})
    t.log({"v": later})
    t.log({"v": None})
    stored = xetrack.schema.coerce(later)
    frame = Reader(db, engine=engine).to_df()
    assert_column(frame, "v", [None, stored, None])
    assert t.to_df()["v"].dtype == frame["v"].dtype
    assert t[2]["v"] == stored and type(t[2]["v"]) is type(stored)
    assert t.latest["v"] is None


@pytest.mark.parametrize("path", ["log", "log_batch"])
def test_first_value_in_a_batch_decides(db, engine, path):
    t = Tracker(db, engine=engine)
    t.log({"v": None, "b": None})
    rows = [{"v": None, "b": None}, {"v": 2, "b": True}, {"v": 3, "b": False}]
    if path == "log":
        for r in rows:
            t.log(r)
    else:
        t.log_batch(rows)
    frame = Reader(db, engine=engine).to_df()
    assert_column(frame, "v", [None, None, 2, 3])
    assert_column(frame, "b", [None, None, True, False])


def test_nan_behaves_like_none(db, engine):
    t = Tracker(db, engine=engine)
    t.log({"v": math.nan, "w": np.nan})
    assert t.latest["v"] is None and t.latest["w"] is None
    t.log({"v": 1, "w": True})
    t.log_batch([{"v": math.nan, "w": None}, {"v": 2, "w": False}])  # NaN in an int column
    frame = Reader(db, engine=engine).to_df()
    assert_column(frame, "v", [None, 1, None, 2])
    assert_column(frame, "w", [None, True, None, False])
    assert table_types(db) == {"v": "INTEGER", "w": "BOOLEAN"}


# ----------------------------------------------------------- numbers widen
@pytest.mark.parametrize(
    "values",
    [[0, 0.5], [0, 1.0], [1, None, 2.5, 3], [0.5, 1], [HUGE, 0.5], [None, 1, 2.0]],
    ids=["int-float", "integral-float", "with-none", "float-first", "huge-then-float", "none-first"],
)
def test_ints_widen_to_float64(db, engine, values):
    t = Tracker(db, engine=engine)
    for v in values:
        t.log({"loss": v})
    assert_column(Reader(db, engine=engine).to_df(), "loss", values)

    batch = Tracker(db, table="batch", engine=engine)
    batch.log_batch([{"acc": v} for v in values])
    assert_column(Reader(db, engine=engine, table="batch").to_df(), "acc", values)


def test_log_batch_widens(db, engine):
    t = Tracker(db, engine=engine)
    t.log_batch([{"acc": 1}, {"acc": 2.5}])
    frame = Reader(db, engine=engine).to_df()
    assert frame["acc"].dtype == "float64" and frame["acc"].tolist() == [1.0, 2.5]
    assert declared(db)["acc"] == "INTEGER" and table_types(db) == {"acc": "REAL"}


def test_a_later_batch_widens_an_existing_int_column(db, engine):
    t = Tracker(db, engine=engine)
    t.log_batch([{"step": i} for i in range(3)])
    t.log_batch([{"step": 3}, {"step": 4.0}])
    assert_column(Reader(db, engine=engine).to_df(), "step", [0, 1, 2, 3, 4.0])


def test_huge_ints_stay_exact(db, engine):
    values = [HUGE, 2**63 - 1, None, -(2**62) - 7]
    t = Tracker(db, engine=engine)
    for v in values:
        t.log({"id": v})
    t.log_batch([{"id2": None}] + [{"id2": v} for v in values])
    frame = Reader(db, engine=engine).to_df()
    assert frame["id"].dtype == "Int64" and frame["id"].tolist()[:2] == [HUGE, 2**63 - 1]
    assert_column(frame, "id", values + [None] * 5)
    assert_column(frame, "id2", [None] * 4 + [None] + values)


def test_set_value_widens(db, engine):
    t = Tracker(db, engine=engine)
    t.log({"x": 1})
    t.set_value("x", 0.5)
    t.log({"x": 2})
    assert_column(Reader(db, engine=engine).to_df(), "x", [0.5, 2.0])


def test_text_in_a_numeric_column_is_object(db, engine):
    t = Tracker(db, engine=engine)
    for v in (1, 2.5, "three"):
        t.log({"mixed": v})
    frame = Reader(db, engine=engine).to_df()
    assert frame["mixed"].dtype == object and frame["mixed"].tolist() == [1, 2.5, "three"]


def test_bool_columns_stay_boolean(db, engine):
    t = Tracker(db, engine=engine)
    t.log({"flag": True})
    t.log({"flag": None})
    t.log({"flag": False})
    frame = Reader(db, engine=engine).to_df()
    assert frame["flag"].dtype == "boolean" and table_types(db) == {}


def test_runs_and_compare_follow_the_logical_types(db, engine):
    a = Tracker(db, engine=engine, track_id="a", params={"opt": None})
    a.log({"loss": 0, "v": None, "n": 1})
    a.log({"loss": 0.5, "v": 3, "n": 2})
    b = Tracker(db, engine=engine, track_id="b", params={"opt": None})
    b.log({"loss": 1, "v": None, "n": 5})
    reader = Reader(db, engine=engine)
    runs = reader.runs().set_index("track_id")
    assert runs["loss"].dtype == "float64" and runs.loc["a", "loss"] == 0.5
    assert runs["v"].dtype == "Int64" and runs["n"].dtype == "Int64"
    assert "opt" in runs.columns and runs["opt"].isna().all()
    compared = reader.compare(["a", "b"])
    if "field" in compared.columns:
        compared = compared.set_index("field")
    assert type(compared.loc["loss", "b"]) is float and compared.loc["loss", "b"] == 1.0
    assert compared.loc["n", "b"] == 5
    history = reader.history("loss", track_id="a")
    assert history["value"].dtype == "float64" and history["value"].tolist() == [0.0, 0.5]


def test_empty_reads_use_the_logical_types(db, engine):
    t = Tracker(db, engine=engine)
    t.log({"x": None, "y": 1})
    t.log({"x": 2, "y": 0.5})
    empty = Reader(db, engine=engine).to_df(track_id="nobody")
    assert len(empty) == 0 and empty["x"].dtype == "Int64" and empty["y"].dtype == "float64"


def test_trackers_with_stale_caches_never_misread(db, engine):
    one, two = Tracker(db, engine=engine), Tracker(db, engine=engine)
    one.log({"v": None})
    two.log({"v": None})  # both now know v as untyped
    one.log({"v": 1})  # records INTEGER
    two.log({"v": 2})  # stale: proposes INTEGER again, writes nothing new
    two.log({"v": 0.5})  # widens
    one.log({"v": 3})  # stale INTEGER: nothing to record
    assert_column(Reader(db, engine=engine).to_df(), "v", [None, None, 1, 2, 0.5, 3])
    assert table_types(db) == {"v": "REAL"}


def test_case_of_keys_is_one_column(db):
    t = Tracker(db)
    t.log({"Acc": None})
    t.log({"acc": 1})
    t.log({"ACC": 0.5})
    assert table_types(db) == {"Acc": "REAL"}
    assert_column(Reader(db).to_df(), "Acc", [None, 1, 0.5])


def test_reset_forgets_the_types(db, engine):
    t = Tracker(db, engine=engine)
    t.log({"x": None})
    t.log({"x": 1})
    t.log({"x": 0.5})
    fresh = Tracker(db, engine=engine, reset=True)
    assert table_types(db) == {}
    fresh.log({"x": None})
    fresh.log({"x": True})
    assert_column(Reader(db, engine=engine).to_df(), "x", [None, True])


def test_delete_run_keeps_other_runs_types(db, engine):
    a = Tracker(db, engine=engine, track_id="a")
    a.log({"x": None})
    a.log({"x": 1})
    Tracker(db, engine=engine, track_id="b").log({"x": 2})
    reader = Reader(db, engine=engine)
    assert reader.delete_run("a") == 2
    assert_column(Reader(db, engine=engine).to_df(), "x", [2])


def test_the_side_table_is_internal(db, engine):
    t = Tracker(db, engine=engine)
    t.log({"x": None})
    t.log({"x": 1})
    assert "xetrack_columns" in {n for (n,) in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert list(Reader(db, engine=engine).tables()["table"]) == ["default"]
    with pytest.raises(ValueError, match="reserved"):
        Tracker(db, table="xetrack_columns")


def test_files_without_the_side_table_read_as_declared(db, engine):
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE "default" ("timestamp" TEXT, "track_id" TEXT, "n" INTEGER, "u")')
        conn.execute("""INSERT INTO "default" VALUES ('t1', 'r', 1, 1), ('t2', 'r', 2.5, 'x')""")
    frame = Reader(db, engine=engine).to_df()
    assert frame["n"].dtype == object and frame["n"].tolist() == [1, 2.5]  # as before
    assert frame["u"].tolist() == [1, "x"]


# ----------------------------------------------------------- copy
def test_copy_carries_the_logical_types(tmp_path):
    source, target = str(tmp_path / "source.db"), str(tmp_path / "target.db")
    t = Tracker(source, track_id="s")
    t.log({"v": None, "loss": 0, "b": None, "n": 1})
    t.log({"v": 2, "loss": 0.5, "b": True, "n": 2})
    assert xetrack.copy(source, target) == 2
    pd.testing.assert_frame_equal(Reader(source).to_df(), Reader(target).to_df())
    assert table_types(target) == table_types(source) == {"v": "INTEGER", "loss": "REAL", "b": "BOOLEAN"}


def test_copy_widens_the_targets_types(tmp_path):
    source, target = str(tmp_path / "source.db"), str(tmp_path / "target.db")
    own = Tracker(target, track_id="t")
    own.log({"loss": 1, "v": None, "n": 1})
    src = Tracker(source, track_id="s")
    src.log({"loss": 0.5, "v": 3, "n": None})
    assert xetrack.copy(source, target) == 1
    frame = Reader(target, engine="duckdb").to_df()
    assert_column(frame, "loss", [1, 0.5])
    assert_column(frame, "v", [None, 3])
    assert_column(frame, "n", [1, None])


def test_cli_copy_carries_the_types(tmp_path):
    import subprocess
    import sys

    source, target = str(tmp_path / "source.db"), str(tmp_path / "target.db")
    t = Tracker(source)
    t.log({"v": None})
    t.log({"v": 1.5})
    xt = os.path.join(os.path.dirname(sys.executable), "xt")
    subprocess.run([xt, "copy", source, target], check=True, capture_output=True)
    assert_column(Reader(target).to_df(), "v", [None, 1.5])


# ----------------------------------------------------------- randomized
_FAMILIES = ("int", "num", "float", "bool", "str", "str_in_num", "none")


def _value(rnd, family, first):
    """A random value of the column's family; ``first``: no non-empty value yet."""
    if rnd.random() < 0.25:
        return rnd.choice([None, None, math.nan])
    if family == "none":
        return None
    if family == "int" or (family in ("num", "str_in_num") and rnd.random() < 0.5):
        return rnd.choice([rnd.randint(-5, 5), rnd.randint(-(2**62), 2**62), 2**53 + rnd.randint(1, 99)])
    if family in ("num", "float", "str_in_num") and (family != "str_in_num" or first or rnd.random() < 0.6):
        return rnd.choice([rnd.random(), float(rnd.randint(-3, 3)), rnd.uniform(-1e6, 1e6)])
    if family == "bool":
        return rnd.random() < 0.5
    # text that no affinity turns into a number
    return rnd.choice(["adam", "sgd", "x1", "", "a b"])


@pytest.mark.parametrize("seed", [int(os.environ.get("XT_TYPES_SEED", 0)) + k for k in range(6)])
def test_randomized_mixes_read_back_as_pandas_builds_them(tmp_path, engine, seed):
    rnd = random.Random(seed)
    db = str(tmp_path / f"random-{seed}.db")
    families = {f"c{i}": rnd.choice(_FAMILIES) for i in range(rnd.randint(4, 10))}
    history: dict[str, list] = {name: [] for name in families}  # every row, in table order
    started: set[str] = set()
    trackers = [Tracker(db, engine=engine) for _ in range(rnd.randint(2, 4))]
    logged: dict[int, set] = {i: set() for i in range(len(trackers))}  # keys each tracker logged
    last: dict[int, dict] = {}  # each tracker's last row
    rows_total = 0

    def make_row(keys=None):
        row = {}
        for name, family in families.items():
            if (rnd.random() < 0.5) if keys is None else (name in keys):
                value = _value(rnd, family, name not in started)
                if value is not None and not (isinstance(value, float) and value != value):
                    started.add(name)
                row[name] = value
        return row

    def remember(rows):
        nonlocal rows_total
        for row in rows:
            for name in history:
                history[name].append(row.get(name))
        rows_total += len(rows)

    for _ in range(rnd.randint(5, 25)):
        index = rnd.randrange(len(trackers))
        tracker = trackers[index]
        if rnd.random() < 0.6:
            row = make_row()
            tracker.log(row)
            remember([row])
            logged[index].update(row)
            last[index] = row
        else:
            same_keys = rnd.random() < 0.5
            first = make_row()
            rows = [first]
            for _ in range(rnd.randint(0, 6)):
                # same_keys: the fast path of log_batch, every row with the same keys
                rows.append(make_row(first if same_keys else None))
            tracker.log_batch(rows)
            remember(rows)
            for r in rows:
                logged[index].update(r)
            last[index] = rows[-1]

    try:
        frame = Reader(db, engine=engine).to_df()
        assert len(frame) == rows_total
        for name, values in history.items():
            if name not in frame.columns:
                assert False, f"column {name} was logged but is missing"
            assert_column(frame, name, values)
        for index, row in last.items():
            latest = trackers[index].latest
            # the keys of the last row logged, None or not; none of other runs' columns
            assert {k for k in latest if k in families} == set(row), f"tracker {index}"
            assert set(row) <= logged[index]
            for key, value in row.items():
                if value is None or (isinstance(value, float) and value != value):
                    assert latest[key] is None, (index, key)
                else:
                    dtype = expected_series(history[key]).dtype
                    if dtype == "float64":
                        value = float(value)  # the column reads as floats, the row too
                    if dtype == np.dtype(object) and isinstance(value, (int, float)) and not isinstance(value, bool):
                        # SQLite's REAL affinity keeps a float of a huge int, as stored
                        assert latest[key] == pytest.approx(value, rel=1e-15), (index, key, latest[key], value)
                    else:
                        assert latest[key] == value, (index, key, latest[key], value)
                    if dtype != np.dtype(object):
                        assert type(latest[key]) is type(value), (index, key, latest[key], value)
    except AssertionError as exc:
        raise AssertionError(
            f"seed={seed} engine={engine} families={families}\nhistory={dict(history)}\n{exc}"
        ) from exc


def _writer(db, kind, n):
    t = Tracker(db)
    for i in range(n):
        t.log({"v": None, kind: None})
        t.log({"v": (i + 0.5) if kind == "f" else i, kind: i})


def test_processes_racing_on_one_column(db):
    import multiprocessing

    Tracker(db).log({"start": 1})
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(db, kind, 40)) for kind in ("i", "j", "f")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    frame = Reader(db).to_df()
    assert frame["v"].dtype == "float64" and frame["v"].notna().sum() == 120
    assert frame["i"].dtype == "Int64" and frame["f"].dtype == "Int64"
    assert table_types(db) == {"v": "REAL", "i": "INTEGER", "j": "INTEGER", "f": "INTEGER"}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
