"""Runs: lifecycle, the runs() summary, history, search, compare, aggregate, predictions."""

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from xetrack import Reader, Tracker
from xetrack.errors import ColumnNotFoundError
from xetrack.filters import FilterError, parse_condition


def make_runs(db, engine="sqlite"):
    """Three finished runs: rf/0.1, lr/0.2, rf/0.3, three epochs each."""
    ids = []
    for i, (model, lr) in enumerate([("rf", 0.1), ("lr", 0.2), ("rf", 0.3)]):
        with Tracker(db, params={"model": model, "lr": lr}, track_id=f"run-{i}", engine=engine) as run:
            for epoch in range(3):
                run.log({"epoch": epoch, "acc": round(0.5 + lr * epoch, 6), "loss": round(1 - lr * epoch, 6)})
        ids.append(run.track_id)
    return ids


def rows(frame):
    return frame.to_dict("records")


# ------------------------------------------------------------------ lifecycle
def test_context_manager_marks_finished_and_keeps_wide_table(db, engine):
    with Tracker(db, params={"model": "rf"}, engine=engine) as run:
        columns_before = run.columns
        run.log({"acc": 0.5})
        status = Reader(db).runs().set_index("track_id").loc[run.track_id, "status"]
        assert status == "running"
    summary = Reader(db, engine=engine).runs()
    row = summary.set_index("track_id").loc[run.track_id]
    assert row["status"] == "finished" and row["end"] >= row["start"] and row["duration"] >= 0
    assert row["events"] == 1
    # no new columns in the user's table, and the side table is not an experiment
    assert Reader(db).columns == columns_before + ["acc", "model"]
    assert Reader(db).tables()["table"].tolist() == ["default"]
    side = sqlite3.connect(db).execute('SELECT "table", pid, host FROM xetrack_runs').fetchall()
    assert side[0][0] == "default" and side[0][1] == os.getpid()


def test_failed_run_records_error_and_reraises(db):
    with pytest.raises(ZeroDivisionError):
        with Tracker(db, track_id="bad") as run:
            run.log({"x": 1})
            _ = 1 / 0
    status, error = (
        sqlite3.connect(db).execute("SELECT status, error FROM xetrack_runs WHERE track_id = 'bad'").fetchone()
    )
    assert status == "failed" and "ZeroDivisionError" in error and "division by zero" in error
    assert Reader(db).runs().loc[0, "status"] == "failed"


def test_interrupt_marks_killed_and_reraises(db):
    with pytest.raises(KeyboardInterrupt):
        with Tracker(db, track_id="stopped"):
            raise KeyboardInterrupt
    assert sqlite3.connect(db).execute("SELECT status FROM xetrack_runs").fetchone() == ("killed",)


def test_start_end_by_hand_and_bad_status(db):
    run = Tracker(db, track_id="hand").start()
    run.log({"x": 1})
    with pytest.raises(ValueError, match="status must be one of"):
        run.end("done")
    run.end("failed", error="diverged")
    assert sqlite3.connect(db).execute("SELECT status, error FROM xetrack_runs").fetchone() == ("failed", "diverged")
    run.close()


def test_renaming_inside_with_moves_the_status_row(db):
    with Tracker(db) as run:
        first = run.track_id
        run.track_id = "renamed"
        run.log({"x": 1})
    side = sqlite3.connect(db).execute("SELECT track_id, status FROM xetrack_runs").fetchall()
    assert side == [("renamed", "finished")] and first != "renamed"


def test_runs_without_lifecycle_have_no_status(db):
    run = Tracker(db, track_id="plain")
    run.log({"x": 1})
    run.log({"x": 2})
    row = rows(Reader(db).runs())[0]
    assert row["status"] is None and row["events"] == 2 and row["start"] < row["end"]


def test_sigkilled_run_shows_dead(db):
    script = textwrap.dedent(f"""
        import sys, time
        from xetrack import Tracker
        run = Tracker({db!r}, track_id="victim").start()
        run.log({{"x": 1}})
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert rows(Reader(db).runs())[0]["status"] == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader = Reader(db)
    assert rows(reader.runs())[0]["status"] == "dead"
    assert reader.search("status = 'dead'")["track_id"].tolist() == ["victim"]


# ------------------------------------------------------------------ runs()
def test_runs_params_metrics_and_agg_variants(db, engine):
    make_runs(db, engine)
    reader = Reader(db, engine=engine)
    last = reader.runs().set_index("track_id")
    assert list(last.columns[:5]) == ["status", "start", "end", "duration", "events"]
    assert {"model", "lr", "acc", "loss", "epoch"} <= set(last.columns)
    assert last.loc["run-1", "model"] == "lr" and last.loc["run-1", "lr"] == 0.2
    assert last.loc["run-2", "acc"] == pytest.approx(1.1)
    assert last.loc["run-0", "events"] == 3
    expected = {"first": 0.5, "min": 0.5, "max": 1.1, "mean": (0.5 + 0.8 + 1.1) / 3, "last": 1.1}
    for agg, value in expected.items():
        frame = reader.runs(agg=agg).set_index("track_id")
        assert frame.loc["run-2", "acc"] == pytest.approx(value), agg
        assert frame.loc["run-2", "loss"] == pytest.approx(
            {"first": 1.0, "min": 0.4, "max": 1.0, "mean": 0.7, "last": 0.4}[agg]
        ), agg
    with pytest.raises(ValueError, match="agg must be one of"):
        reader.runs(agg="median")


def test_runs_classifies_params_and_metrics(db):
    run = Tracker(db, params={"model": "rf"}, track_id="a")
    run.log({"acc": 0.1, "phase": "train", "final": None})
    run.log({"acc": 0.2, "phase": "eval", "final": 7})
    from xetrack.runs import RunQueries

    params, metrics, _ = RunQueries(Reader(db)._engine, "default").classify()
    # model constant, final set once -> params; acc varies and is numeric -> metric;
    # phase varies but is text -> neither. Table order: "final" got its column when it
    # was first logged (as None), before the params' columns.
    assert params == ["final", "model"] and metrics == ["acc"]
    assert "phase" not in Reader(db).runs().columns


def test_last_skips_nulls_and_clashing_names(db):
    run = Tracker(db, track_id="a")
    run.log({"acc": 0.1, "status": "x1"})
    run.log({"acc": 0.3, "status": "x1"})
    run.log({"loss": 0.2, "status": "x1"})
    row = rows(Reader(db).runs())[0]
    assert row["acc"] == 0.3  # the last non-NULL value
    assert row["status_"] == "x1" and row["status"] is None  # a user column named like a summary field


# ------------------------------------------------------------------ history
def test_history_steps(db):
    make_runs(db)
    reader = Reader(db)
    one = reader.history("acc", track_id="run-1")
    assert rows(one) == [{"track_id": "run-1", "step": e, "value": pytest.approx(0.5 + 0.2 * e)} for e in range(3)]
    assert len(reader.history("loss")) == 9
    run = Tracker(db, table="plain", track_id="p")
    for v in (3, None, 5):
        run.log({"v": v, "w": 1})
    assert rows(Reader(db, table="plain").history("v")) == [
        {"track_id": "p", "step": 0, "value": 3},
        {"track_id": "p", "step": 2, "value": 5},
    ]
    assert Reader(db, table="plain").history("v", step="w")["step"].tolist() == [1, 1]
    with pytest.raises(ColumnNotFoundError, match="Did you mean: acc"):
        reader.history("acx")


def test_history_of_one_run_searches_the_index_and_fetches_two_columns(db):
    make_runs(db)
    queries = Reader(db)._runs()
    sql, binds, decls, constants = queries.history_sql("acc", track_id="run-1")
    conn = sqlite3.connect(db)
    plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, binds))
    conn.close()
    assert "USING INDEX ix_default_track_id" in plan and "TEMP B-TREE" not in plan, plan
    assert '"track_id"' not in sql.split(" FROM ")[0]  # a constant: not fetched per row
    assert binds == ["run-1"] and decls == ["INTEGER", "REAL"] and constants == [("track_id", "", "run-1")]


def test_history_frames_are_the_same_under_both_engines(db):
    make_runs(db)
    run = Tracker(db, table="plain", track_id="p")
    for v in (3, None, 5.5, "x"):
        run.log({"v": v, "w": 1})
    sqlite, duck = Reader(db), Reader(db, engine="duckdb")
    for table, calls in (
        (
            "default",
            [
                ("acc", "run-1", None),
                ("loss", None, None),
                ("acc", "nope", None),
                ("epoch", "run-2", "acc"),
                ("acc", 1, None),
            ],
        ),
        ("plain", [("v", "p", None), ("v", None, "w"), ("w", "p", None)]),
    ):
        for metric, track_id, step in calls:
            a = Reader(db, table=table).history(metric, track_id=track_id, step=step)
            b = Reader(db, table=table, engine="duckdb").history(metric, track_id=track_id, step=step)
            pd.testing.assert_frame_equal(a, b, check_exact=True)
            assert list(a.columns) == ["track_id", "step", "value"]
    one = sqlite.history("acc", track_id="run-1")
    assert str(one["track_id"].dtype) == str(sqlite.history("acc")["track_id"].dtype)
    assert one["step"].dtype == "Int64" and one["value"].dtype == "float64"
    empty = duck.history("acc", track_id="nope")
    assert len(empty) == 0 and empty["step"].dtype == "Int64" and empty["value"].dtype == "float64"
    assert Reader(db, table="plain").history("v", track_id="p")["step"].tolist() == [0, 2, 3]


# ------------------------------------------------------------------ search
def test_search_sql_and_mlflow_syntax(db, engine):
    make_runs(db, engine)
    reader = Reader(db, engine=engine)
    sql = reader.search("acc > 0.9 AND model = 'rf'")
    mlflow = reader.search("metrics.acc > 0.9 and params.model = 'rf'")
    tags = reader.search("tags.model = 'rf' and metrics.`acc` > 0.9")
    assert sql["track_id"].tolist() == mlflow["track_id"].tolist() == tags["track_id"].tolist() == ["run-2"]
    assert reader.search("model IN ('lr', 'x') OR (lr >= 0.3 AND NOT loss > 0.5)")["track_id"].tolist() == [
        "run-1",
        "run-2",
    ]
    assert reader.search("model LIKE 'r%'", order_by="acc DESC")["track_id"].tolist() == ["run-2", "run-0"]
    assert reader.search(order_by=["-acc", "loss"], limit=2)["track_id"].tolist() == ["run-2", "run-1"]
    assert reader.search(order_by="metrics.loss")["track_id"].tolist() == ["run-2", "run-1", "run-0"]
    assert reader.search("status IS NOT NULL AND model <> 'rf'")["track_id"].tolist() == ["run-1"]
    assert len(reader.search("acc > 5")) == 0


def test_search_typos_and_unsafe_text(db):
    make_runs(db)
    reader = Reader(db)
    with pytest.raises(ColumnNotFoundError, match=r"'acuracy' not found.*Did you mean: acc"):
        reader.search("metrics.acuracy > 0.9")
    with pytest.raises(ColumnNotFoundError, match="Did you mean: loss"):
        reader.search(order_by="-los")
    for bad in (
        'acc > 0.9; DROP TABLE "default"',
        "acc > (SELECT 1)",
        "acc >",
        "acc = 1 AND",
        "foo.acc > 1",
        "acc = 1 UNION SELECT 1",
        "acc IN (loss)",
    ):
        with pytest.raises((FilterError, ColumnNotFoundError)):
            reader.search(bad)
    assert len(Reader(db).to_df()) == 9  # nothing was run
    assert parse_condition("a = 'it''s'", ["a"]) == ('"a" = ?', ["it's"])
    # a bool param's values in a list, as the dashboard's parallel coordinates write them
    assert parse_condition("params.flag in (FALSE, TRUE)", ["flag"]) == ('"flag" IN (?, ?)', [False, True])


def test_search_a_bool_param_in_a_list(db):
    for i, flag in enumerate([True, False, None]):
        Tracker(db, params={"flag": flag, "i": i}, track_id=f"b{i}").log({"acc": i / 10})
    reader = Reader(db)
    assert sorted(reader.search("flag IN (TRUE, FALSE)")["track_id"]) == ["b0", "b1"]
    assert reader.search("params.flag in (true)")["track_id"].tolist() == ["b0"]


# ------------------------------------------------------------------ compare, aggregate, tables
def test_compare_and_only_diff(db):
    make_runs(db)
    reader = Reader(db)
    both = reader.compare(["run-0", "run-2"]).set_index("field")
    assert list(both.columns) == ["run-0", "run-2"]
    assert both.loc["model", "run-0"] == "rf" and both.loc["lr", "run-2"] == 0.3
    diff = reader.compare(["run-0", "run-2"], only_diff=True)["field"].tolist()
    assert "model" not in diff and "status" not in diff and {"lr", "acc", "loss"} <= set(diff)
    with pytest.raises(KeyError, match=r"Run .run-9. not found.*Did you mean: run-2"):
        reader.compare(["run-0", "run-9"])


def test_aggregate_by_param(db, engine):
    make_runs(db, engine)
    out = Reader(db, engine=engine).aggregate("acc", by=["model"]).set_index("model")
    assert out.loc["rf", "mean"] == pytest.approx(0.9) and out.loc["rf", "count"] == 2
    assert out.loc["rf", "std"] == pytest.approx(math.sqrt(2 * 0.2**2)) and math.isnan(out.loc["lr", "std"])
    assert out.loc["rf", "min"] == pytest.approx(0.7) and out.loc["rf", "max"] == pytest.approx(1.1)
    overall = Reader(db).aggregate("acc", agg=["mean", "count"], run_agg="max")
    assert rows(overall) == [{"mean": pytest.approx((0.7 + 0.9 + 1.1) / 3), "count": 3}]
    with pytest.raises(ValueError, match="Unknown agg"):
        Reader(db).aggregate("acc", by="model", agg=["median"])


def test_tables_counts(db):
    make_runs(db)
    Tracker(db, table="other").log({"x": 1})
    assert rows(Reader(db).tables()) == [
        {"table": "default", "rows": 9, "runs": 3},
        {"table": "other", "rows": 1, "runs": 1},
    ]


# ------------------------------------------------------------------ predictions
def test_log_predictions_metrics_by_hand(db, engine):
    p, a = [2.0, 3.0, 5.0, 9.0], [1.0, 3.0, 6.0, 7.0]
    run = Tracker(db, track_id="p", engine=engine)
    row = run.log_predictions(p, a, metrics=["mse", "rmse", "mae", "r2", "mape", "max_error"], name="test")
    errors = [1.0, 0.0, -1.0, 2.0]
    mse = sum(e * e for e in errors) / 4  # 1.5
    mean = sum(a) / 4  # 4.25
    r2 = 1 - 6.0 / sum((y - mean) ** 2 for y in a)
    assert row["test_mse"] == pytest.approx(mse) and row["test_rmse"] == pytest.approx(math.sqrt(1.5))
    assert row["test_mae"] == pytest.approx(1.0) and row["test_r2"] == pytest.approx(r2)
    assert row["test_mape"] == pytest.approx((1 + 0 + 1 / 6 + 2 / 7) / 4) and row["test_max_error"] == 2.0
    labels = run.log_predictions(["a", "b", "b"], ["a", "b", "c"], metrics=["accuracy"])
    assert labels["accuracy"] == pytest.approx(2 / 3)
    reader = Reader(db, engine=engine)
    assert rows(reader.predictions("p", name="test")) == [
        {"idx": i, "prediction": x, "actual": y} for i, (x, y) in enumerate(zip(p, a))
    ]
    assert reader.predictions("p", name="")["prediction"].tolist() == ["a", "b", "b"]
    assert len(reader.predictions("nobody")) == 0


def test_log_predictions_errors_write_nothing(db):
    run = Tracker(db, track_id="p")
    with pytest.raises(ValueError, match=r"Unknown metric 'rsme'.*Did you mean: rmse"):
        run.log_predictions([1], [1], metrics=["rsme"])
    with pytest.raises(ValueError, match="differ in length: 2 and 3"):
        run.log_predictions([1, 2], [1, 2, 3], metrics=["mae"])
    with pytest.raises(TypeError, match="needs numbers"):
        run.log_predictions(["a"], ["b"], metrics=["mae"])
    assert len(run) == 0
    names = {n for (n,) in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert "xetrack_predictions" not in names


def test_numpy_inputs(db):
    np = pytest.importorskip("numpy")
    row = Tracker(db).log_predictions(np.array([1.0, 2.0]), np.array([1.0, 4.0]), metrics=["mae"])
    assert row["mae"] == 1.0


def test_tables_lists_a_table_without_track_id(tmp_path):
    db = str(tmp_path / "foreign.db")
    Tracker(db).log({"a": 1})
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE other (x INTEGER)")
    conn.executemany("INSERT INTO other VALUES (?)", [(1,), (2,)])
    conn.commit()
    conn.close()
    frame = Reader(db).tables()
    assert frame["table"].tolist() == ["default", "other"]
    assert frame["rows"].tolist() == [1, 2]
    assert frame["runs"].isna().tolist() == [False, True] and frame["runs"][0] == 1
