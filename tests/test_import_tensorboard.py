"""``xetrack.import_tensorboard`` and ``xt import tensorboard``, on event files written by
torch's own ``SummaryWriter`` and read back, for comparison, with TensorBoard's own reader."""

import os
import shutil
import subprocess
import sys
import time

import pytest

pytest.importorskip(
    "tensorboard", reason="the TensorBoard import needs tensorboard (pip install 'xetrack[tensorboard]')"
)
pytest.importorskip("torch", reason="the tests write event files with torch's SummaryWriter (pip install torch)")

import torch
from torch.utils.tensorboard import SummaryWriter

from xetrack import Reader, import_tensorboard

XT = os.path.join(os.path.dirname(sys.executable), "xt")
T0 = 1_700_000_000.0  # the wall time of step 0
RUNS = {
    "run_a": {"lr": 0.1, "batch_size": 32, "optimizer": "adam"},
    "run_b": {"lr": 0.01, "batch_size": 64, "optimizer": "sgd"},
}


def stamp(seconds):
    whole, fraction = divmod(round(seconds * 1_000_000), 1_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S.", time.localtime(whole)) + f"{fraction:06d}"


def write_run(folder, hparams, offset=0.0, steps=range(5)):
    writer = SummaryWriter(str(folder))
    for step in steps:
        wall = T0 + offset + step
        writer.add_scalar("train/loss", 1.0 / (step + 1) * hparams["lr"], step, walltime=wall)
        writer.add_scalar("val/acc", 0.5 + step / 10, step, walltime=wall + 0.25, new_style=True)  # a tensor scalar
    # into a subfolder named by the time, with a metric named like a curve of the run
    writer.add_hparams(hparams, {"hparam/best_acc": 0.9, "val/acc": 0.95})
    writer.close()


def failed_run(folder):
    """A run whose hparams session, in its own folder, ended with STATUS_FAILURE."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from torch.utils.tensorboard.summary import hparams

    writer = SummaryWriter(str(folder))
    _, start, _ = hparams({"lr": 1.0, "layers": 3}, {})
    writer._get_file_writer().add_summary(start)
    writer.add_scalar("train/loss", float("inf"), 0, walltime=T0)
    writer.add_scalar("step", 7.0, 0, walltime=T0)  # a tag named like the step column
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_FAILURE)
    content = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=end))
    writer._get_file_writer().add_summary(
        Summary(value=[Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=content)])
    )
    writer.close()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb") / "runs"
    for i, (name, hparams) in enumerate(RUNS.items()):
        write_run(root / name, hparams, offset=100 * i)
    failed_run(root / "nested" / "crashed")
    with SummaryWriter(str(root / "nested" / "histograms_only")) as writer:
        writer.add_histogram("weights", torch.tensor([0.1, 0.2, 0.3]), 0)
    return root


@pytest.fixture(scope="module")
def imported(logdir, tmp_path_factory):
    db = str(tmp_path_factory.mktemp("db") / "exp.db")
    return db, import_tensorboard(logdir, db)


def tb_points(folder):
    """tag -> [(step, wall_time, value)] as TensorBoard's own reader gives them."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    out = {t: [(e.step, e.wall_time, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
    for tag in acc.Tags()["tensors"]:
        out[tag] = [(e.step, e.wall_time, tensor_util.make_ndarray(e.tensor_proto).item()) for e in acc.Tensors(tag)]
    return out


def run_ids(db):
    with Reader(db) as reader:
        runs = reader.runs()
    return dict(zip(runs["run_name"], runs["track_id"]))


def test_each_run_folder_is_a_run_with_its_scalars_by_step(logdir, imported):
    db, result = imported
    assert (result.runs, result.skipped, result.replaced, result.rows) == (3, 0, 0, 11)
    assert any("histograms_only" in w and "no scalars" in w for w in result.warnings)
    assert any("histograms: weights" in w for w in result.warnings)
    ids = run_ids(db)
    assert set(ids) == {"run_a", "run_b", "nested/crashed"}  # the hparams subfolders are part of their run
    with Reader(db) as reader:
        frame = reader.to_df()
    for name, hparams in RUNS.items():
        rows = frame[frame["track_id"] == ids[name]].sort_values("step")
        assert rows["step"].tolist() == [0, 1, 2, 3, 4]
        points = tb_points(logdir / name)
        assert rows["train_loss"].tolist() == [v for _, _, v in points["train/loss"]]
        assert rows["val_acc"].tolist() == [v for _, _, v in points["val/acc"]]
        assert rows["val_acc"].iloc[-1] == pytest.approx(0.9)
        assert rows["timestamp"].tolist() == [stamp(wall) for _, wall, _ in points["train/loss"]]
        for key, value in hparams.items():  # params on every row
            assert rows[key].tolist() == [value] * 5
        assert rows["batch_size"].dtype.kind == "i"  # written as 32.0: whole numbers stay ints
        assert rows["hparam_best_acc"].iloc[0] == pytest.approx(0.9) and rows["hparam_best_acc"].iloc[1:].isna().all()
        assert rows["hparams_val_acc"].iloc[0] == pytest.approx(0.95)  # beside val_acc, which it leaves alone


def test_params_status_start_end_and_tags(logdir, imported):
    db, _ = imported
    ids = run_ids(db)
    with Reader(db) as reader:
        runs = reader.runs().set_index("run_name")
        tags = reader.tags(ids["run_a"])
        params, _, _ = reader.classify()
    assert {"lr", "batch_size", "optimizer"} <= set(params)
    assert runs.loc["run_a", "status"] == "finished"
    assert runs.loc["run_a", "start"] == stamp(T0)
    assert runs.loc["run_a", "end"] > stamp(T0 + 4.25)  # the hparams' metric, written after the last step
    assert runs.loc["run_b", "start"] == stamp(T0 + 100)
    assert tags["import.source"] == "tensorboard" and tags["import.path"] == str(logdir / "run_a")
    crashed = runs.loc["nested/crashed"]
    assert crashed["status"] == "failed" and crashed["lr"] == 1.0 and crashed["layers"] == 3
    with Reader(db) as reader:
        row = reader.to_df(track_id=ids["nested/crashed"]).iloc[0]
    assert row["step"] == 0 and row["step_metric"] == 7.0 and row["train_loss"] == float("inf")


def test_a_second_import_adds_nothing(logdir, imported):
    db, _ = imported
    with Reader(db) as reader:
        before = len(reader.to_df())
    again = import_tensorboard(logdir, db)
    assert (again.runs, again.skipped, again.rows) == (0, 3, 0)
    with Reader(db) as reader:
        assert len(reader.to_df()) == before
        assert len(reader.runs()) == 3


def test_a_run_that_grew_is_replaced_whole(logdir, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(logdir / "run_a", root / "run_a")
    db = str(tmp_path / "exp.db")
    import_tensorboard(root, db, table="tb")
    first = run_ids_of(db, "tb")
    with SummaryWriter(str(root / "run_a")) as writer:  # training resumed: a new event file
        for step in (5, 6):
            writer.add_scalar("train/loss", 0.001 * step, step, walltime=T0 + step)
    result = import_tensorboard(root, db, table="tb")
    assert (result.runs, result.replaced, result.skipped, result.rows) == (1, 1, 0, 7)
    assert run_ids_of(db, "tb") == first  # the same run, now whole
    with Reader(db, table="tb") as reader:
        frame = reader.to_df()
    assert frame["step"].tolist() == list(range(7)) and frame["train_loss"].iloc[-1] == pytest.approx(0.006)
    assert frame["lr"].tolist() == [0.1] * 7


def test_a_later_file_named_with_a_bigger_counter_keeps_the_run(logdir, tmp_path):
    """A writer's file names end in a counter (...9, ...10): the run is still known by its
    first file when the later one sorts first as text."""
    root = tmp_path / "runs"
    shutil.copytree(logdir / "run_a", root / "run_a")
    (original,) = (root / "run_a").glob("events.out.tfevents.*")
    original.rename(root / "run_a" / "events.out.tfevents.1700000000.host.1.9")
    db = str(tmp_path / "exp.db")
    import_tensorboard(root, db)
    first = run_ids_of(db, "default")
    later = tmp_path / "later"
    with SummaryWriter(str(later)) as writer:
        writer.add_scalar("train/loss", 0.005, 5, walltime=T0 + 5)
    (written,) = later.glob("events.out.tfevents.*")
    shutil.move(str(written), root / "run_a" / "events.out.tfevents.1700000000.host.1.10")
    result = import_tensorboard(root, db)
    assert (result.runs, result.replaced) == (1, 1)
    assert run_ids_of(db, "default") == first


def run_ids_of(db, table):
    with Reader(db, table=table) as reader:
        runs = reader.runs()
    return dict(zip(runs["run_name"], runs["track_id"]))


def test_bad_logdirs_are_clear_errors(tmp_path):
    db = str(tmp_path / "exp.db")
    with pytest.raises(FileNotFoundError, match="No such folder"):
        import_tensorboard(tmp_path / "missing", db)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no TensorBoard event files"):
        import_tensorboard(tmp_path / "empty", db)
    assert not os.path.exists(db)


def test_without_tensorboard_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard.backend.event_processing.event_accumulator", None)
    with pytest.raises(ImportError, match=r"pip install 'xetrack\[tensorboard\]'"):
        import_tensorboard(tmp_path, str(tmp_path / "exp.db"))


def xt(*args):
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("XT_TRACEBACK", None)
    return subprocess.run([XT, *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def test_the_cli_command(logdir, tmp_path):
    db = tmp_path / "exp.db"
    out = xt("import", "tensorboard", logdir, db, "--table", "tb")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"Imported 3 runs (11 rows) from {logdir}; 0 runs already there"
    assert "2 warnings (see stderr)" in out.stderr and "histograms_only" in out.stderr
    assert set(run_ids_of(str(db), "tb")) == {"run_a", "run_b", "nested/crashed"}
    again = xt("import", "tensorboard", logdir, db, "--table", "tb")
    assert again.stdout.strip() == f"Imported 0 runs (0 rows) from {logdir}; 3 runs already there"
    missing = xt("import", "tensorboard", tmp_path / "nope", db)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: No such folder") and missing.stdout == ""
