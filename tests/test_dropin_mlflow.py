"""``import xetrack.mlflow as mlflow``: MLflow tracking scripts run unchanged and write a
xetrack database, read back with xetrack's Reader and with MLflow's own calls.

The quickstart script runs in a subprocess as a user runs it, once with the import line
changed and, where MLflow is installed, once with MLflow itself (both at once, MLflow on a
file store, which gives the same search_runs columns as its ``sqlite:///`` store without
its seconds of migrations), so that the columns and values search_runs gives can be compared.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

import xetrack.mlflow as mlflow
from xetrack import Reader
from xetrack.mlflow import _state
from xetrack.mlflow.entities import ms_to_stamp

QUICKSTART = textwrap.dedent(
    """
    import json

    import mlflow

    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    mlflow.set_experiment("MLflow Quickstart")

    params = {"solver": "lbfgs", "max_iter": 100, "learning_rate": 0.01}
    losses = [0.9, 0.5, 0.3, 0.25]
    with open("model_summary.txt", "w") as f:
        f.write("LogisticRegression(max_iter=100)\\n")

    with mlflow.start_run(run_name="quickstart") as run:
        mlflow.log_params(params)
        for epoch, loss in enumerate(losses):
            mlflow.log_metric("train/loss", loss, step=epoch)
        mlflow.log_metric("accuracy", 0.95)
        mlflow.set_tag("Training Info", "Basic LR model for iris data")
        mlflow.log_artifact("model_summary.txt")
        mlflow.log_dict({"classes": ["setosa", "versicolor"]}, "config/classes.json")

    runs = mlflow.search_runs(experiment_names=["MLflow Quickstart"])
    row = runs.iloc[0]
    print(json.dumps({
        "run_id": run.info.run_id,
        "columns": list(runs.columns),
        "values": {c: str(row[c]) for c in runs.columns if c.startswith(("metrics.", "params.", "tags.", "status"))},
    }))
    """
)
CRASH = textwrap.dedent(
    """
    import xetrack.mlflow as mlflow

    mlflow.set_tracking_uri("crash.db")
    mlflow.start_run(run_name="crash")
    mlflow.log_metric("loss", 1.0, step=0)
    raise RuntimeError("loss diverged")
    """
)
NO_END = textwrap.dedent(
    """
    import xetrack.mlflow as mlflow

    mlflow.set_tracking_uri("noend.db")
    mlflow.log_param("lr", 0.1)  # starts a run, as MLflow does
    mlflow.log_metric("loss", 0.5)
    """
)


def _launch(folder, code, env):
    folder.mkdir()
    (folder / "script.py").write_text(code)
    return subprocess.Popen(
        [sys.executable, "script.py"], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _mlflow_installed() -> bool:
    try:
        import mlflow as real  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    """Every script at once: the quickstart (ours, and MLflow's own when installed), a
    crash, a script that never ends its run. -> name: (folder, returncode, stdout, stderr)."""
    root = tmp_path_factory.mktemp("scripts")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", HF_HUB_OFFLINE="1")
    codes = {
        "ours": QUICKSTART.replace("import mlflow\n", "import xetrack.mlflow as mlflow\n"),
        "crash": CRASH,
        "noend": NO_END,
    }
    assert codes["ours"] != QUICKSTART  # only the import line changed
    if _mlflow_installed():
        # MLflow itself, on a file store: the same search_runs columns as its sqlite:/// store,
        # without the store's migrations (seconds)
        codes["mlflow"] = QUICKSTART.replace('"sqlite:///mlflow.db"', '"file:./mlruns"')
        env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    started = {name: _launch(root / name, code, env) for name, code in codes.items()}
    done = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        done[name] = (root / name, process.returncode, out, err)
    return done


def _read_result(scripts, name):
    folder, code, out, err = scripts[name]
    assert code == 0, err
    return folder, json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A fresh database as the tracking URI, and no run or experiment left from another test."""
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    _state.reset()
    path = str(tmp_path / "runs.db")
    mlflow.set_tracking_uri(path)
    yield path
    while mlflow.active_run() is not None:
        mlflow.end_run()
    _state.reset()


def _run_row(path, run_id):
    return (
        sqlite3.connect(path).execute("SELECT status, error FROM xetrack_runs WHERE track_id = ?", (run_id,)).fetchone()
    )


# -- the quickstart, run as a script ----------------------------------------------------
def test_quickstart_script_runs_unchanged(scripts, monkeypatch):
    folder, result = _read_result(scripts, "ours")
    run_id, path = result["run_id"], str(folder / "mlflow.db")
    reader = Reader(path, table="MLflow_Quickstart")
    rows = reader.to_df(track_id=run_id)
    assert len(rows) == 5  # four losses, one accuracy: a row per log_metric call
    assert rows["step"].tolist()[:4] == [0, 1, 2, 3] and rows["step"].isna().tolist()[4]
    assert rows["train_loss"].tolist()[:4] == [0.9, 0.5, 0.3, 0.25] and rows["accuracy"].tolist()[4] == 0.95
    assert set(rows["solver"]) == {"lbfgs"} and set(rows["max_iter"]) == {100} and set(rows["learning_rate"]) == {0.01}
    runs = reader.runs()
    assert runs["status"].tolist() == ["finished"] and runs["run_name"].tolist() == ["quickstart"]
    assert reader.tags(run_id) == {"Training Info": "Basic LR model for iris data"}
    assert reader.artifact("model_summary.txt", track_id=run_id) == b"LogisticRegression(max_iter=100)\n"
    assert json.loads(reader.artifact("config/classes.json", track_id=run_id)) == {"classes": ["setosa", "versicolor"]}
    assert reader.tables()["description"].tolist() == ["MLflow experiment: MLflow Quickstart"]
    assert _run_row(path, run_id) == ("finished", None)

    # read back through the module, in this process
    monkeypatch.chdir(folder)
    _state.reset()
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    frame = mlflow.search_runs(experiment_names=["MLflow Quickstart"])
    assert frame.loc[0, "run_id"] == run_id and frame.loc[0, "status"] == "FINISHED"
    assert frame.loc[0, "metrics.train/loss"] == 0.25 and frame.loc[0, "metrics.accuracy"] == 0.95
    assert frame.loc[0, "params.learning_rate"] == "0.01" and frame.loc[0, "params.max_iter"] == "100"
    assert frame.loc[0, "tags.mlflow.runName"] == "quickstart"
    assert str(frame["start_time"].dt.tz) == "UTC" and frame.loc[0, "start_time"] <= frame.loc[0, "end_time"]
    history = mlflow.MlflowClient().get_metric_history(run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == list(enumerate([0.9, 0.5, 0.3, 0.25]))
    _state.reset()


def test_search_runs_matches_mlflows_own(scripts):
    if "mlflow" not in scripts:
        pytest.skip("needs mlflow (pip install mlflow-skinny)")
    _, ours = _read_result(scripts, "ours")
    _, theirs = _read_result(scripts, "mlflow")
    assert set(ours["columns"]) <= set(theirs["columns"]), set(ours["columns"]) - set(theirs["columns"])
    assert ours["columns"][:3] == theirs["columns"][:3] == ["run_id", "experiment_id", "status"]
    assert ours["values"] == {k: v for k, v in theirs["values"].items() if k in ours["values"]}
    assert {k for k in theirs["values"] if not k.startswith("tags.mlflow.")} <= set(ours["values"])


def test_uncaught_error_fails_the_run_and_exit_ends_it(scripts):
    folder, code, _, err = scripts["crash"]
    assert code == 1 and "loss diverged" in err
    runs = Reader(str(folder / "crash.db")).runs()
    assert runs["status"].tolist() == ["failed"] and runs["loss"].tolist() == [1.0]
    assert _run_row(str(folder / "crash.db"), runs.loc[0, "track_id"]) == ("failed", "RuntimeError: loss diverged")

    folder, code, _, err = scripts["noend"]
    assert code == 0, err
    rows = Reader(str(folder / "noend.db")).to_df()
    assert rows["loss"].tolist() == [0.5] and rows["lr"].tolist() == [0.1]
    assert Reader(str(folder / "noend.db")).runs()["status"].tolist() == ["finished"]


# -- runs, in this process -------------------------------------------------------------
def test_a_failing_with_block_marks_the_run_failed(db):
    with pytest.raises(ValueError, match="nan loss"):
        with mlflow.start_run() as run:
            mlflow.log_metric("loss", 0.7, step=0)
            raise ValueError("nan loss")
    assert mlflow.active_run() is None
    assert _run_row(db, run.info.run_id) == ("failed", "ValueError: nan loss")
    assert run.info.status == "FAILED" and run.info.end_time >= run.info.start_time
    assert mlflow.search_runs()["status"].tolist() == ["FAILED"]
    assert mlflow.last_active_run().info.status == "FAILED"
    with mlflow.start_run():
        mlflow.end_run("KILLED")
    assert mlflow.search_runs()["status"].tolist() == ["KILLED", "FAILED"]
    with pytest.raises(ValueError, match="FINISHED, FAILED or KILLED"):
        mlflow.end_run("DONE")


def test_params_go_on_every_row_and_cannot_change(db):
    with mlflow.start_run(run_name="p") as run:
        mlflow.log_metric("loss", 0.9, step=0)
        mlflow.log_metric("loss", 0.5, step=1)
        assert mlflow.log_param("lr", 0.1) == 0.1
        mlflow.log_params({"optimizer": "adam", "layers": [64, 32], "lr": 0.1})  # the same lr again: fine
        mlflow.log_metrics({"loss": 0.3, "acc": 0.8}, step=2)
        with pytest.raises(mlflow.MlflowException, match="Changing param values is not allowed"):
            mlflow.log_param("lr", 0.2)
        with pytest.raises(mlflow.exceptions.MlflowException, match="share the column"):
            mlflow.log_metric("lr", 0.5)
        with pytest.raises(TypeError, match="must be a number"):
            mlflow.log_metric("acc", "high")
        with pytest.raises(ValueError, match="xetrack fills"):
            mlflow.log_metric("timestamp", 1.0)
        assert run.data.params == {"lr": "0.1", "optimizer": "adam", "layers": "[64, 32]"}
        assert run.data.metrics == {"loss": 0.3, "acc": 0.8} and run.info.status == "RUNNING"
    rows = Reader(db).to_df(track_id=run.info.run_id)
    assert len(rows) == 3 and rows["step"].tolist() == [0, 1, 2]
    assert rows["lr"].tolist() == [0.1] * 3 and rows["optimizer"].tolist() == ["adam"] * 3
    assert rows["layers"].tolist() == ["[64, 32]"] * 3
    got = mlflow.get_run(run.info.run_id)
    assert got.data.params == {"lr": "0.1", "optimizer": "adam", "layers": "[64, 32]"}
    assert got.data.metrics == {"loss": 0.3, "acc": 0.8} and got.info.run_name == "p"


def test_metric_history_by_run_id(db):
    before = int(time.time() * 1000)
    with mlflow.start_run() as run:
        for step, value in enumerate([0.9, 0.4, 0.2]):
            mlflow.log_metrics({"val/auc": value, "other": step}, step=step)
        mlflow.log_metric("val/auc", 0.95)  # no step: MLflow's step 0
        mlflow.log_metric("val/auc", 0.99, step=7, timestamp=1_700_000_000_000)
    after = int(time.time() * 1000)
    history = mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, "val/auc")
    assert [(m.key, m.value, m.step) for m in history] == [
        ("val/auc", 0.9, 0),
        ("val/auc", 0.4, 1),
        ("val/auc", 0.2, 2),
        ("val/auc", 0.95, 0),
        ("val/auc", 0.99, 7),
    ]
    assert all(before <= m.timestamp <= after for m in history[:4])
    assert history[4].timestamp == 1_700_000_000_000
    assert Reader(db).to_df()["timestamp"].tolist()[-1] == ms_to_stamp(1_700_000_000_000)
    assert mlflow.MlflowClient(db).get_metric_history(run.info.run_id, "never_logged") == []
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_param("lr", 0.1)
    assert mlflow.MlflowClient(db).get_metric_history(run.info.run_id, "lr") == []  # a param: no history
    with pytest.raises(mlflow.MlflowException, match="not found"):
        mlflow.MlflowClient().get_metric_history("no-such-run", "val/auc")


def test_nested_runs(db):
    with mlflow.start_run(run_name="parent") as parent:
        with pytest.raises(mlflow.MlflowException, match="nested=True"):
            mlflow.start_run()
        for lr in (0.1, 0.01):
            with mlflow.start_run(run_name=f"lr={lr}", nested=True) as child:
                mlflow.log_param("lr", lr)
                mlflow.log_metric("loss", lr * 2)
                assert mlflow.active_run().info.run_id == child.info.run_id
        assert mlflow.active_run().info.run_id == parent.info.run_id
    frame = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", order_by=["params.lr"]
    )
    assert frame["tags.mlflow.runName"].tolist() == ["lr=0.01", "lr=0.1"]
    assert frame["status"].tolist() == ["FINISHED"] * 2
    assert len(mlflow.search_runs()) == 3
    assert mlflow.MlflowClient().get_parent_run(frame.loc[0, "run_id"]).info.run_name == "parent"


def _three_runs():
    for name, lr, acc, team in (("run-a", 0.1, 0.95, "cv"), ("run-b", 0.01, 0.9, "nlp"), ("run-c", 0.1, 0.8, "cv")):
        with mlflow.start_run(run_name=name, tags={"team": team}):
            mlflow.log_params({"lr": lr, "model": "mlp"})
            mlflow.log_metric("acc", acc - 0.1, step=0)
            mlflow.log_metric("acc", acc, step=1)


def test_search_runs_filters_and_order(db):
    _three_runs()
    runs = Reader(db).runs()  # xetrack's own summary: the last values search_runs shows
    frame = mlflow.search_runs(order_by=["metrics.acc DESC"])
    assert frame["tags.mlflow.runName"].tolist() == ["run-a", "run-b", "run-c"]
    assert frame["metrics.acc"].tolist() == sorted(runs["acc"].tolist(), reverse=True)

    def names(text, **kwargs):
        found = mlflow.search_runs(filter_string=text, order_by=["attributes.run_name"], **kwargs)
        return found["tags.mlflow.runName"].tolist() if len(found) else []

    assert names("metrics.acc > 0.85 and params.lr = '0.1'") == ["run-a"]
    assert names("params.lr IN ('0.01', '0.5')") == ["run-b"]
    assert names("tags.team = 'cv' AND attributes.status = 'FINISHED'") == ["run-a", "run-c"]
    assert names("attributes.run_name LIKE 'run-%' and params.model != 'cnn'") == ["run-a", "run-b", "run-c"]
    assert names("tags.team ILIKE 'CV'") == ["run-a", "run-c"]
    assert names("params.model = 'mlp'", max_results=2) == ["run-a", "run-b"]
    assert names("attributes.status = 'FAILED'") == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert names("metrics.accuracy > 0.5") == []  # as in MLflow: a key no run has matches nothing
    assert "metrics.accuracy" in str(caught[0].message)
    with pytest.raises(ValueError, match=r"AND only.*Reader"):
        mlflow.search_runs(filter_string="metrics.acc > 0.9 OR params.lr = '0.1'")
    with pytest.raises(ValueError, match="compared with a number"):
        mlflow.search_runs(filter_string="metrics.acc > 'high'")
    listed = mlflow.search_runs(filter_string="params.lr = '0.01'", output_format="list")
    assert [(r.info.run_name, r.data.params, r.data.metrics) for r in listed] == [
        ("run-b", {"lr": "0.01", "model": "mlp"}, {"acc": 0.9})
    ]
    paged = mlflow.MlflowClient().search_runs(["default"], "tags.team = 'nlp'")
    assert [r.info.run_name for r in paged] == ["run-b"] and paged.token is None


def test_experiments_are_tables(db):
    experiment = mlflow.set_experiment("churn model v2")
    assert (experiment.experiment_id, experiment.name) == ("churn_model_v2", "churn model v2")
    with mlflow.start_run():
        mlflow.log_metric("auc", 0.7)
    mlflow.set_experiment("Default")
    with mlflow.start_run():
        mlflow.log_metric("auc", 0.6)
    assert Reader(db, table="churn_model_v2").to_df()["auc"].tolist() == [0.7]
    assert Reader(db, table="default").to_df()["auc"].tolist() == [0.6]
    assert mlflow.search_runs()["metrics.auc"].tolist() == [0.6]
    assert mlflow.search_runs(experiment_names=["churn model v2"])["metrics.auc"].tolist() == [0.7]
    both = mlflow.search_runs(search_all_experiments=True, order_by=["metrics.auc"])
    assert both["experiment_id"].tolist() == ["default", "churn_model_v2"]
    assert mlflow.get_experiment_by_name("churn model v2").experiment_id == "churn_model_v2"
    assert mlflow.get_experiment_by_name("nope") is None
    with pytest.warns(UserWarning, match="no experiment"):
        assert len(mlflow.search_runs(experiment_names=["nope"])) == 0
    with pytest.raises(ValueError, match="xetrack keeps for itself"):
        mlflow.set_experiment("xetrack runs")
    with pytest.raises(mlflow.MlflowException, match="already exists"):
        mlflow.create_experiment("churn model v2")


def test_tracking_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _state.reset()
    assert mlflow.get_tracking_uri() == "mlruns.db" and _state.tracking_db() == "mlruns.db"
    mlflow.set_tracking_uri("sqlite:///sub/exp.db")
    assert mlflow.get_tracking_uri() == "sqlite:///sub/exp.db" and _state.tracking_db() == "sub/exp.db"
    mlflow.set_tracking_uri("sqlite:////tmp/x.db")
    assert _state.tracking_db() == "/tmp/x.db"
    mlflow.set_tracking_uri(tmp_path / "p.db")
    assert _state.tracking_db() == str(tmp_path / "p.db")
    for uri in ("http://127.0.0.1:5000", "https://mlflow.example.com", "databricks", "file:///tmp/mlruns"):
        with pytest.raises(ValueError, match="pass a database path"):
            mlflow.set_tracking_uri(uri)
    with pytest.raises(ValueError, match="is a folder"):
        mlflow.set_tracking_uri(str(tmp_path))
    with pytest.raises(ValueError, match="names no file"):
        mlflow.set_tracking_uri("sqlite://")
    _state.reset()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///from_env.db")
    with mlflow.start_run():
        mlflow.log_metric("x", 1)
    assert Reader("from_env.db").to_df()["x"].tolist() == [1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://localhost:5000")
    with pytest.warns(UserWarning, match="MLFLOW_TRACKING_URI is not used"):
        assert _state.tracking_db() == "mlruns.db"
    _state.reset()


def test_calls_not_offered_say_what_to_use(db):
    with pytest.raises(NotImplementedError, match=r"xetrack\.integrations"):
        mlflow.autolog()
    with pytest.raises(AttributeError, match=r"mlflow\.sklearn is not offered.*register_model"):
        mlflow.sklearn.autolog()
    with pytest.raises(AttributeError, match=r"xetrack\.integrations\.lightning"):
        mlflow.pytorch.log_model(None, "model")
    with pytest.raises(AttributeError, match=r"mlflow\.register_model.*Tracker\(db\)\.register_model"):
        mlflow.register_model("runs:/x/model", "iris")
    assert not hasattr(mlflow, "log_table")
    with pytest.raises(AttributeError, match=r"MlflowClient\.create_registered_model"):
        mlflow.MlflowClient().create_registered_model("iris")
    with mlflow.start_run():
        with pytest.raises(NotImplementedError, match="dataset="):
            mlflow.log_metric("acc", 0.9, dataset=object())
        with pytest.raises(NotImplementedError, match="image history"):
            mlflow.log_image([[0.0]], key="samples", step=1)
    assert len(Reader(db).to_df()) == 1  # the run's one row: nothing of those calls was kept


def test_artifacts(db, tmp_path):
    matplotlib = pytest.importorskip("matplotlib", reason="log_figure needs matplotlib (pip install matplotlib)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    (tmp_path / "outputs" / "plots").mkdir(parents=True)
    (tmp_path / "outputs" / "a.txt").write_text("a")
    (tmp_path / "outputs" / "plots" / "b.csv").write_text("x,y\n1,2\n")
    figure, axis = plt.subplots(figsize=(2, 2))
    axis.plot([1, 2, 3])
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "outputs"), artifact_path="run1")
        mlflow.log_text("hello", "notes/readme.md")
        mlflow.log_figure(figure, "plots/curve.png")
        mlflow.log_image(np.zeros((4, 4, 3)), "images/black.png")
        mlflow.log_dict({"a": 1}, "cfg.yaml")
        with pytest.raises(FileNotFoundError):
            mlflow.log_artifact("missing.txt")
    plt.close(figure)
    reader = Reader(db)
    names = sorted(reader.artifacts(run.info.run_id)["name"])
    assert names == [
        "cfg.yaml",
        "images/black.png",
        "notes/readme.md",
        "plots/curve.png",
        "run1/a.txt",
        "run1/plots/b.csv",
    ]
    assert reader.artifact("plots/curve.png").startswith(b"\x89PNG") and reader.artifact("notes/readme.md") == b"hello"
    assert reader.artifact("cfg.yaml") == b"a: 1\n"
    client = mlflow.MlflowClient()
    listed = client.list_artifacts(run.info.run_id, "run1")
    assert [(f.path, f.is_dir, f.file_size) for f in listed] == [("run1/a.txt", False, 1), ("run1/plots", True, None)]
    local = client.download_artifacts(run.info.run_id, "run1", str(tmp_path / "back"))
    with open(os.path.join(local, "plots", "b.csv")) as f:
        assert f.read() == "x,y\n1,2\n"


def test_client_writes_by_run_id_and_resumed_runs(db):
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_metric("loss", 0.5, step=0)
    run_id = run.info.run_id
    client = mlflow.MlflowClient()
    client.log_metric(run_id, "test_acc", 0.9)
    client.set_tag(run_id, "reviewed", True)
    assert client.log_param(run_id, "seed", 7) == 7
    with mlflow.start_run(run_id=run_id):  # continues the run: its params go on new rows too
        mlflow.log_metric("loss", 0.25, step=1)
    rows = Reader(db).to_df(track_id=run_id)
    assert rows["loss"].tolist()[-1] == 0.25 and rows["lr"].tolist() == [0.1] * 3 and rows["seed"].tolist() == [7] * 3
    client.update_run(run_id, name="renamed")
    assert Reader(db).runs()["run_name"].tolist() == ["renamed"]
    got = client.get_run(run_id)
    assert got.info.run_name == "renamed" and got.data.tags["mlflow.runName"] == "renamed"
    assert got.data.params == {"lr": "0.1", "seed": "7"} and got.data.tags["reviewed"] == "True"
    assert got.data.metrics == {"loss": 0.25, "test_acc": 0.9} and got.info.status == "FINISHED"

    created = client.create_run("default", run_name="by-client", tags={"kind": "manual"})
    assert created.info.status == "RUNNING" and created.data.tags["kind"] == "manual"
    points = [mlflow.Metric("m", v, 1_700_000_000_000 + s, s) for s, v in enumerate([3.0, 2.0])]
    client.log_batch(created.info.run_id, metrics=points, params=[mlflow.Param("depth", 4)])
    client.set_terminated(created.info.run_id, "FAILED")
    got = client.get_run(created.info.run_id)
    assert (got.info.status, got.data.params, got.data.metrics) == ("FAILED", {"depth": "4"}, {"m": 2.0})
    assert [(m.step, m.timestamp) for m in client.get_metric_history(created.info.run_id, "m")] == [
        (0, 1_700_000_000_000),
        (1, 1_700_000_000_001),
    ]
    with pytest.raises(mlflow.MlflowException, match="not found"):
        mlflow.start_run(run_id="no-such-run")
