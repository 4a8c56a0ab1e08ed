"""``import xetrack.wandb as wandb``: W&B scripts, unchanged but for that line, write xetrack runs.

W&B itself is not installed and not needed. Whole scripts run as subprocesses (the way a
user runs them: ``python train.py`` with ``XETRACK_DB`` set), so that the process's end
(finished, failed, killed) is the real one; the rest runs in this process. Every result
is read back with a new ``xetrack.Reader``, and compared with what the script itself
logged (it writes its own record of that as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xetrack.wandb as wandb
from xetrack import Reader
from xetrack.wandb import ConfigError, Error, Unsupported

# W&B's quickstart, as its docs write it: only the first line is changed by the test.
QUICKSTART = """
import wandb
import json, random, sys

random.seed(1)
run = wandb.init(
    project="my-awesome-project",
    name="quickstart",
    tags=["baseline", "cnn"],
    group="sweep-1",
    notes="first try",
    config={"learning_rate": 0.02, "architecture": "CNN", "dataset": "CIFAR-100", "epochs": 10},
    save_code=True,
)
epochs = wandb.config.epochs
offset = random.random() / 5
logged = []
for epoch in range(2, epochs):
    acc = 1 - 2 ** -epoch - random.random() / epoch - offset
    loss = 2 ** -epoch + random.random() / epoch + offset
    wandb.log({"acc": acc, "loss": loss})
    logged.append({"acc": acc, "loss": loss})
run.summary["best_acc"] = max(row["acc"] for row in logged)
record = {"id": run.id, "lr": wandb.config.learning_rate, "logged": logged, "summary_acc": run.summary["acc"]}
json.dump(record, open("logged.json", "w"))
wandb.finish()
assert wandb.run is None
"""


def as_xetrack(script: str) -> str:
    """The one change a user makes: the import line."""
    assert script.count("import wandb\n") == 1
    return script.replace("import wandb\n", "import xetrack.wandb as wandb\n")


def run_script(tmp_path, script: str, name: str = "train.py") -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(as_xetrack(textwrap.dedent(script)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(XETRACK_DB=str(tmp_path / "runs.db"), PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run(
        [sys.executable, name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def one_run(db, table: str = "default"):
    reader = Reader(db, table=table)
    runs = reader.runs()
    assert len(runs) == 1, runs
    return reader, runs.iloc[0]


@pytest.fixture(autouse=True)
def no_global_run(monkeypatch):
    """Each test starts with no global run and W&B's variables unset, and leaves none."""
    for key in [k for k in os.environ if k.startswith("WANDB_") or k == "XETRACK_DB"]:
        monkeypatch.delenv(key)
    assert wandb.run is None
    yield
    wandb.finish()


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "exp.db")


# -- whole scripts -------------------------------------------------------------------------
def test_quickstart_script_runs_with_only_the_import_changed(tmp_path):
    out = run_script(tmp_path, QUICKSTART)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "logged.json").read_text())
    reader, run = one_run(str(tmp_path / "runs.db"), table="my_awesome_project")  # the project, as a table
    df = reader.to_df()
    assert len(df) == len(record["logged"]) == 8
    assert df["step"].tolist() == list(range(8))  # W&B's _step: 0, 1, 2...
    assert df["acc"].tolist() == [row["acc"] for row in record["logged"]]
    assert df["loss"].tolist() == [row["loss"] for row in record["logged"]]
    # config: params on every row; the script read wandb.config.learning_rate back
    assert record["lr"] == 0.02
    assert set(df["learning_rate"]) == {0.02} and set(df["architecture"]) == {"CNN"} and set(df["epochs"]) == {10}
    # summary: the last value by default, and the one the script set
    assert record["summary_acc"] == record["logged"][-1]["acc"] == run["acc"]
    assert set(df["summary_best_acc"]) == {max(row["acc"] for row in record["logged"])}
    assert run["track_id"] == record["id"] and run["run_name"] == "quickstart" and run["status"] == "finished"
    assert reader.tags(record["id"]) == {"baseline": "true", "cnn": "true", "group": "sweep-1", "notes": "first try"}
    artifacts = reader.artifacts(record["id"])
    assert artifacts[["name", "type"]].values.tolist() == [["train.py", "code"]]  # save_code=True
    assert b"import xetrack.wandb as wandb" in reader.artifact("train.py", track_id=record["id"])


@pytest.mark.parametrize(
    ("ending", "status", "error", "code"),
    [
        ("raise ValueError('loss is nan')", "failed", "ValueError: loss is nan", 1),
        ("raise KeyboardInterrupt", "killed", "KeyboardInterrupt", -2),  # exits as killed by SIGINT
        ("print('done')", "finished", None, 0),  # no wandb.finish(): ended at exit, as W&B does
    ],
    ids=["raises", "ctrl-c", "no-finish"],
)
def test_the_process_end_ends_an_unfinished_run(tmp_path, ending, status, error, code):
    script = f"""
    import wandb

    wandb.init(config={{"lr": 0.1}})
    for i in range(3):
        wandb.log({{"loss": 1 / (i + 1)}})
    wandb.log({{"extra": 7}}, commit=False)  # pending: written when the run ends
    {ending}
    """
    out = run_script(tmp_path, script)
    assert out.returncode == code, out.stderr
    if code:  # the interpreter's own traceback is still printed (the excepthook is chained)
        assert "Traceback" in out.stderr and out.stderr.splitlines()[-1] == error
    reader, run = one_run(str(tmp_path / "runs.db"))
    assert run["status"] == status
    assert run_error(reader, run["track_id"]) == error
    df = reader.to_df()
    assert df["step"].tolist() == [0, 1, 2, 3] and df["loss"].tolist()[:3] == [1, 0.5, 1 / 3]
    assert df["extra"].tolist()[3] == 7 and set(df["lr"]) == {0.1}


def run_error(reader, track_id: str) -> str | None:
    """The error text kept with a run (the lifecycle side table)."""
    return reader.store.run_error(reader.table_name, track_id)


# -- steps ----------------------------------------------------------------------------------
def test_commit_false_gathers_one_step_into_one_row(db):
    run = wandb.init(db=db)
    wandb.log({"a": 1}, commit=False)
    wandb.log({"b": 2, "a": 3}, commit=False)  # the same key again in a step: the last value
    assert run.step == 0 and len(Reader(db).to_df()) == 0
    wandb.log({"c": 4})
    wandb.log({"a": 5})
    wandb.log({"b": 6}, commit=False)
    wandb.finish()  # the pending step is written
    df = Reader(db).to_df()
    assert df["step"].tolist() == [0, 1, 2]
    assert df[["a", "b", "c"]].fillna(-1).values.tolist() == [[3, 2, 4], [5, -1, -1], [-1, 6, -1]]


def test_explicit_steps_follow_w_and_b(db):
    run = wandb.init(db=db)
    run.log({"loss": 0.9}, step=0)
    run.log({"acc": 0.1}, step=0)  # the same step: one row, not committed yet
    run.log({"loss": 0.5}, step=np.int64(5))  # a later step commits step 0
    run.log({"acc": 0.7})  # no step: goes into step 5 and commits it
    assert run.step == 6
    run.log({"loss": 0.4})  # the counter goes on from there
    with pytest.raises(ValueError, match="step 7"):
        run.log({"loss": 1.0}, step=3)  # W&B drops it; refused here, nothing written
    with pytest.raises(TypeError, match="step must be an int"):
        run.log({"loss": 1.0}, step=7.5)
    run.log({"loss": 0.3}, step=9, commit=True)
    run.log({"step": 100, "loss": 0.2})  # a logged 'step' key is the row's step
    run.finish()
    df = Reader(db).to_df()
    assert df["step"].tolist() == [0, 5, 6, 9, 100]
    assert df["loss"].tolist() == [0.9, 0.5, 0.4, 0.3, 0.2] and df["acc"].fillna(-1).tolist() == [0.1, 0.7, -1, -1, -1]
    assert Reader(db).history("loss")["step"].tolist() == [0, 5, 6, 9, 100]


def test_nested_dicts_numpy_values_and_keys(db):
    with wandb.init(db=db, config={"opt": {"name": "adam", "betas": [0.9, 0.99]}, "device": object}) as run:
        run.log({"train": {"loss": np.float32(0.5)}, "eval/acc": np.float64(0.75), "n": np.int64(3), "skip": None})
    df = Reader(db).to_df()
    assert df.loc[0, "train_loss"] == 0.5 and df.loc[0, "eval_acc"] == 0.75 and df.loc[0, "n"] == 3
    assert "skip" not in df.columns
    assert df.loc[0, "opt_name"] == "adam" and json.loads(df.loc[0, "opt_betas"]) == [0.9, 0.99]
    assert df.loc[0, "device"] == str(object)  # not a plain value: kept as its text
    assert run.summary["train_loss"] == 0.5 and run.summary["eval/acc"] == 0.75


# -- config and summary ---------------------------------------------------------------------
def test_config_is_the_runs_params(db):
    run = wandb.init(db=db, config=argparse.Namespace(lr=0.1, layers=2, seed=0), config_exclude_keys=["seed"])
    assert (wandb.config.lr, run.config["layers"], dict(run.config)) == (0.1, 2, {"lr": 0.1, "layers": 2})
    run.log({"loss": 1.0})
    wandb.config.batch_size = 32  # after a row: on that row too
    run.config.update({"dropout": 0.5})
    run.config.setdefaults({"lr": 9, "wd": 0.01})  # lr is set: kept
    with pytest.raises(ConfigError, match="allow_val_change"):
        run.config.update({"lr": 0.2})
    with pytest.raises(ConfigError):
        run.config.lr = 0.3
    assert run.config.lr == 0.1
    run.log({"loss": 0.5})
    run.config.update({"lr": 0.05}, allow_val_change=True)  # one value per run: every row
    with pytest.raises(AttributeError, match="no key 'nope'"):
        run.config.nope  # noqa: B018
    with pytest.raises(Unsupported):
        del run.config["lr"]
    run.finish()
    df = Reader(db).to_df()
    assert "seed" not in df.columns
    assert df[["lr", "layers", "batch_size", "dropout", "wd"]].values.tolist() == [[0.05, 2, 32, 0.5, 0.01]] * 2


def test_a_run_that_logs_nothing_keeps_its_config_in_one_row(db):
    run = wandb.init(db=db, project="evals", config={"model": "rf"})
    run.summary["accuracy"] = 0.93
    run.finish()
    reader, row = one_run(db, table="evals")
    assert len(reader.to_df()) == 1 and row["model"] == "rf" and row["summary_accuracy"] == 0.93
    assert row["status"] == "finished"


def test_summary_and_define_metric(db):
    run = wandb.init(db=db)
    wandb.define_metric("epoch")
    wandb.define_metric("val/*", step_metric="epoch")  # W&B's step_sync: rows get the last epoch
    wandb.define_metric("loss", summary="min")
    wandb.define_metric("val/loss", summary="min")  # over the glob's step metric, not instead of it
    wandb.define_metric("acc", summary="max,mean")
    wandb.define_metric("f1", summary="best", goal="maximize")
    wandb.define_metric("noise", summary="none")
    losses, accs = [0.9, 0.4, 0.6], [0.5, 0.8, 0.7]
    for epoch, (loss, acc) in enumerate(zip(losses, accs)):
        wandb.log({"epoch": epoch, "loss": loss, "acc": acc, "f1": acc / 2, "noise": epoch})
        wandb.log({"val/loss": loss + 1})
    assert run.summary["loss"] == {"min": 0.4} and run.summary["f1"] == {"best": 0.4}
    assert run.summary["acc"]["max"] == 0.8 and run.summary["acc"]["mean"] == pytest.approx(2 / 3)
    assert run.summary["val/loss"] == {"min": 1.4} and "noise" not in run.summary
    wandb.summary["best_epoch"] = 1
    with pytest.raises(ValueError, match="one of min, max"):
        wandb.define_metric("x", summary="median")
    with pytest.raises(ValueError, match="goal"):
        wandb.define_metric("x", summary="best")
    with pytest.raises(Unsupported, match="hidden"):
        wandb.define_metric("x", hidden=True)
    wandb.finish()
    df = Reader(db).to_df()
    val = df[df["val_loss"].notna()]
    assert val["epoch"].tolist() == [0, 1, 2] and val["val_loss"].tolist() == [1.9, 1.4, 1.6]
    last = df.iloc[-1]
    assert (last["summary_loss_min"], last["summary_acc_max"], last["summary_f1_best"]) == (0.4, 0.8, 0.4)
    assert last["summary_best_epoch"] == 1 and last["summary_val_loss_min"] == 1.4 and "summary_noise" not in df.columns
    assert Reader(db).runs(agg="min").iloc[0]["loss"] == 0.4  # the same, from the rows


# -- files ----------------------------------------------------------------------------------
def test_save_and_log_artifact_keep_local_files(db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "a.pt").write_bytes(b"A1")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "x.txt").write_text("x")
    run = wandb.init(db=db, dir=tmp_path)  # run.dir is made in there
    assert wandb.save("ckpt/*.pt") == ["a.pt"]  # live: now, and again at the end if changed
    assert wandb.save("late.txt", policy="end") == []
    assert wandb.save("a.pt", base_path="ckpt", policy="now") == ["a.pt"]
    with pytest.raises(FileNotFoundError, match="no file matches"):
        wandb.save("missing-*.bin", policy="now")
    digest = wandb.log_artifact(str(tmp_path / "report"), name="report", type="dataset")
    with pytest.raises(FileNotFoundError):
        wandb.log_artifact("nope.csv")
    (tmp_path / "ckpt" / "a.pt").write_bytes(b"A2 changed")
    (tmp_path / "ckpt" / "b.pt").write_bytes(b"B")
    (tmp_path / "late.txt").write_text("written after save()")
    assert os.path.dirname(run.dir) == str(tmp_path)
    with open(os.path.join(run.dir, "model.txt"), "w") as f:  # W&B's run.dir: kept at the end
        f.write("weights")
    wandb.finish()
    reader = Reader(db)
    names = sorted(reader.artifacts(run.id)["name"])
    assert names == ["a.pt", "b.pt", "late.txt", "model.txt", "report/x.txt"]
    assert reader.artifact("a.pt", track_id=run.id) == b"A2 changed"
    assert reader.artifact("late.txt", track_id=run.id) == b"written after save()"
    assert reader.artifact("model.txt", track_id=run.id) == b"weights"
    assert digest and reader.artifact("report/x.txt", track_id=run.id) == b"x"


# -- the run's life -------------------------------------------------------------------------
def test_with_block_finishes_or_fails(db):
    with wandb.init(db=db, name="ok") as run:
        run.log({"x": 1})
        assert wandb.run is run
    assert wandb.run is None
    with pytest.raises(RuntimeError, match="boom"), wandb.init(db=db, name="bad") as bad:
        bad.log({"x": 2}, commit=False)
        raise RuntimeError("boom")
    runs = Reader(db).runs().set_index("run_name")
    assert runs.loc["ok", "status"] == "finished" and runs.loc["bad", "status"] == "failed"
    assert run_error(Reader(db), bad.id) == "RuntimeError: boom"
    assert Reader(db).to_df(track_id=bad.id)["x"].tolist() == [2]  # the pending step was kept
    second = wandb.init(db=db)
    second.finish(exit_code=2)
    for code in (0, 3):  # sys.exit inside the block: 0 finished, else failed
        with pytest.raises(SystemExit), wandb.init(db=db, name=f"exit-{code}"):
            sys.exit(code)
    runs = Reader(db).runs().set_index("run_name")
    assert runs.loc["exit-0", "status"] == "finished" and runs.loc["exit-3", "status"] == "failed"
    assert Reader(db).runs().set_index("track_id").loc[second.id, "status"] == "failed"
    assert run_error(Reader(db), second.id) == "exit code 2"


def test_project_db_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = wandb.init(project="My Project-2")
    assert run.project == "My_Project_2" and run.url == str(tmp_path / "xetrack.db")
    run.finish()
    monkeypatch.setenv("XETRACK_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.setenv("WANDB_TAGS", "a,b")
    with wandb.init() as run:
        run.log({"x": 1})
    reader, row = one_run(str(tmp_path / "env.db"), table="from_env")
    assert reader.tags(row["track_id"]) == {"a": "true", "b": "true"}
    with pytest.raises(ValueError, match="reserved"):
        wandb.init(project="xetrack_runs")
    with pytest.raises(TypeError, match="positional"):
        wandb.init("positional")  # W&B's positional order differs: keywords only


def test_disabled_mode_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = wandb.init(mode="disabled", config={"lr": 0.1})
    wandb.log({"loss": 0.5})
    wandb.config.update({"bs": 8})
    assert (run.summary["loss"], run.config.bs, run.url, run.disabled) == (0.5, 8, None, True)
    wandb.finish()
    assert os.listdir(tmp_path) == []
    monkeypatch.setenv("WANDB_MODE", "disabled")
    wandb.init(db=str(tmp_path / "x.db")).finish()
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="mode must be"):
        wandb.init(mode="cloud")


def test_resume_reinit_and_setters(db):
    first = wandb.init(db=db, id="run-1", name="first", tags=["a", "b"], config={"lr": 0.1})
    first.log({"loss": 1.0})
    same = wandb.init(db=db)  # W&B's default in a script: the active run, as it is
    assert same is first
    with pytest.raises(Error, match=r"still running.*config"):
        wandb.init(db=db, config={"lr": 0.2})
    first.tags = ("b", "c")
    first.name = "renamed"
    other = wandb.init(db=db, reinit="create_new")  # a second run; wandb.run stays
    assert wandb.run is first and other.id != first.id
    other.finish()
    first.log({"loss": 0.5})
    wandb.finish()
    with pytest.raises(Error, match="already in table"):
        wandb.init(db=db, id="run-1")
    with pytest.raises(Error, match="no run 'nope'"):
        wandb.init(db=db, id="nope", resume="must")
    again = wandb.init(db=db, id="run-1", resume="allow", config={"lr": 0.1})
    assert again.step == 2
    again.log({"loss": 0.25})
    newer = wandb.init(db=db, reinit="finish_previous")
    newer.finish()
    reader = Reader(db)
    df = reader.to_df(track_id="run-1")
    assert df["step"].tolist() == [0, 1, 2] and df["loss"].tolist() == [1.0, 0.5, 0.25]
    assert reader.tags("run-1") == {"b": "true", "c": "true"}
    runs = reader.runs().set_index("track_id")
    assert runs.loc["run-1", "run_name"] == "renamed" and set(runs["status"]) == {"finished"} and len(runs) == 3


def test_what_is_not_offered_says_so(db):
    with pytest.raises(Error, match=r"wandb.init\(\) before wandb.log"):
        wandb.log({"x": 1})
    with pytest.raises(Error, match=r"wandb.init\(\) before using wandb.config"):
        wandb.config.lr  # noqa: B018
    assert wandb.login(key="secret") is True
    run = wandb.init(db=db, settings=wandb.Settings(start_method="thread", silent=True))
    for call, name in [
        (lambda: wandb.Image(np.zeros((2, 2))), "wandb.Image"),
        (lambda: wandb.Table(columns=["a"]), "wandb.Table"),
        (lambda: wandb.Histogram([1, 2]), "wandb.Histogram"),
        (lambda: wandb.Artifact("data", type="dataset"), "wandb.Artifact"),
        (lambda: wandb.use_artifact("data:latest"), "wandb.use_artifact()"),
        (lambda: run.use_artifact("data:latest"), "run.use_artifact()"),
        (lambda: wandb.watch(object()), "wandb.watch()"),
        (lambda: wandb.plot.line(None, "x", "y"), "wandb.plot.line()"),
        (lambda: wandb.log_artifact("f.txt", aliases=["best"]), "aliases"),
        (lambda: wandb.log_artifact(object()), "wandb.log_artifact of a builtins.object"),
        (lambda: wandb.init(db=db, sync_tensorboard=True), "sync_tensorboard"),
        (lambda: wandb.init(db=db, settings={"x_server": 1}), "x_server"),
    ]:
        with pytest.raises(Unsupported, match=r"not offered by xetrack\.wandb") as caught:
            call()
        assert name in str(caught.value)
    assert not isinstance(1, wandb.Image)
    with pytest.raises(AttributeError, match=r"no attribute 'Api2'.*offers init"):
        wandb.Api2  # noqa: B018
    with pytest.raises(TypeError, match="takes a dict"):
        wandb.log([1, 2])
    run.log({"x": 1})
    run.finish()
    late_calls = [
        lambda: run.log({"x": 2}),
        lambda: run.summary.__setitem__("a", 1),
        lambda: run.config.update({"b": 1}),
    ]
    for late in late_calls:
        with pytest.raises(Error, match="is finished"):
            late()
    assert Reader(db).to_df()["x"].tolist() == [1]
