"""XetrackLogger against the real Lightning, on the CPU: a Linear(4, 1) on random tensors.

Each training also runs Lightning's own CSVLogger side by side (both loggers get the same
calls), so the rows, steps and values are checked against what Lightning itself wrote.
"""

from __future__ import annotations

import csv
import io
import math
import os
import signal
import sys
from argparse import Namespace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the Lightning integration needs torch (pip install 'xetrack[lightning]')")
L = pytest.importorskip(
    "lightning.pytorch", reason="the Lightning integration needs lightning (pip install 'xetrack[lightning]')"
)

from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

from xetrack import Reader  # noqa: E402
from xetrack.integrations.lightning import BEST_CHECKPOINT_TAG, CHECKPOINT, XetrackLogger  # noqa: E402

pytestmark = pytest.mark.filterwarnings(  # Lightning's own notes about these tiny trainings
    "ignore:You defined a `validation_step`", "ignore:.*LeafSpec", "ignore:.*sync_dist=True"
)
QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0}


def loader(n: int = 24, batch_size: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    data = torch.utils.data.TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g))
    return torch.utils.data.DataLoader(data, batch_size=batch_size)


class Tiny(L.LightningModule):
    """Logs ``train/loss`` every step and ``val_loss`` once per validation."""

    def __init__(self, lr: float = 0.1, optimizer: dict | None = None, fail_at: int | None = None, error=ValueError):
        super().__init__()
        self.save_hyperparameters(ignore=["fail_at", "error"])
        self.fail_at, self.error = fail_at, error
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        if self.fail_at is not None and self.global_step == self.fail_at:
            raise self.error(f"boom at step {self.global_step}")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def trainer(tmp_path: Path, logger, **options) -> L.Trainer:
    settings = {"max_epochs": 2, "limit_train_batches": 4, "limit_val_batches": 2, "log_every_n_steps": 1}
    settings.update(enable_checkpointing=False, accelerator="cpu", default_root_dir=str(tmp_path), **QUIET)
    settings.update(options)
    return L.Trainer(logger=logger, **settings)


def csv_rows(csv_logger) -> list[dict[str, str]]:
    with open(os.path.join(csv_logger.log_dir, "metrics.csv"), newline="") as file:
        return list(csv.DictReader(file))


def same_values(ours, theirs: list[str]) -> None:
    """Our column (NaN where a row lacks the metric) against the CSV's ('' there)."""
    assert len(ours) == len(theirs)
    for value, text in zip(ours, theirs):
        if text == "":
            assert math.isnan(value)
        else:
            assert value == pytest.approx(float(text), rel=1e-9)


def run_error(db, track_id: str, table: str = "default") -> str | None:
    """The error text kept with a run."""
    return Reader(db, table=table).store.run_error(table, track_id)


def only_run(db, table: str = "default"):
    runs = Reader(db, table=table).runs()
    assert len(runs) == 1, runs
    return runs.iloc[0]


# ---------------------------------------------------------------------------- a fit
@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One fit with both loggers, then a test on the same trainer."""
    tmp = tmp_path_factory.mktemp("fit")
    db = str(tmp / "exp.db")
    logger = XetrackLogger(db, table="lit", run_name="tiny", tags={"team": "vision"}, params={"data": "random"})
    csv_logger = CSVLogger(str(tmp / "csv"))
    model = Tiny(lr=0.05, optimizer={"name": "sgd", "momentum": 0.9})
    run = trainer(tmp, [logger, csv_logger])
    run.fit(model, loader(), loader())
    fit_rows = csv_rows(csv_logger)
    fit_status = only_run(db, "lit")["status"]
    logged = {k: float(v) for k, v in run.logged_metrics.items()}
    run.test(model, loader(seed=1))
    return {"db": db, "logger": logger, "csv": csv_logger, "fit_rows": fit_rows, "fit_status": fit_status} | {
        "logged": logged,
        "test_logged": {k: float(v) for k, v in run.logged_metrics.items()},
    }


def test_fit_rows_and_steps_are_what_lightning_logged(fitted):
    frame = Reader(fitted["db"], table="lit").to_df()
    expected = fitted["fit_rows"]
    fit = frame[frame["test_loss"].isna()]
    assert len(expected) == 8 + 2  # 4 train steps and one validation, twice
    assert len(fit) == len(expected)
    assert fit["step"].tolist() == [int(r["step"]) for r in expected]
    assert fit["epoch"].tolist() == [int(r["epoch"]) for r in expected]
    for column, key in (("train_loss", "train/loss"), ("val_loss", "val_loss")):
        same_values(fit[column].tolist(), [r[key] for r in expected])
    last = fit.iloc[-1]
    assert last["val_loss"] == pytest.approx(fitted["logged"]["val_loss"], rel=1e-9)
    train = fit.dropna(subset=["train_loss"])
    assert train["train_loss"].iloc[-1] == pytest.approx(fitted["logged"]["train/loss"], rel=1e-9)


def test_hyperparameters_are_the_runs_params_on_every_row(fitted):
    frame = Reader(fitted["db"], table="lit").to_df()
    assert set(frame["lr"]) == {0.05}
    assert set(frame["optimizer_name"]) == {"sgd"}  # nested dicts flattened with _
    assert set(frame["optimizer_momentum"]) == {0.9}
    assert set(frame["data"]) == {"random"}  # the logger's own params
    assert "fail_at" not in frame.columns  # left out by save_hyperparameters(ignore=...)


def test_the_run_is_named_and_finished(fitted):
    logger, db = fitted["logger"], fitted["db"]
    run = only_run(db, "lit")
    assert fitted["fit_status"] == "finished"
    assert run["status"] == "finished"  # the test after the fit too
    assert run["track_id"] == logger.version == logger.track_id
    assert logger.name == "lit" and logger.save_dir is None
    reader = Reader(db, table="lit")
    assert reader.tags(logger.version) == {"team": "vision"}
    assert list(reader.search("run_name = 'tiny'")["track_id"].unique()) == [logger.version]


def test_a_test_after_the_fit_adds_its_rows_to_the_same_run(fitted):
    frame = Reader(fitted["db"], table="lit").to_df()
    tested = frame.dropna(subset=["test_loss"])
    assert len(tested) == 1
    assert tested["test_loss"].iloc[0] == pytest.approx(fitted["test_logged"]["test_loss"], rel=1e-9)
    assert frame["track_id"].nunique() == 1


# --------------------------------------------------------------------- failures
def test_a_training_step_that_raises_marks_the_run_failed(tmp_path):
    db = str(tmp_path / "exp.db")
    logger = XetrackLogger(db)
    with pytest.raises(ValueError, match="boom at step 3"):
        trainer(tmp_path, logger, limit_val_batches=0).fit(Tiny(fail_at=3), loader())
    run = only_run(db)
    assert run["status"] == "failed"
    assert run_error(db, run["track_id"]) == "ValueError: boom at step 3"
    assert Reader(db).to_df()["step"].tolist() == [0, 1, 2]  # the rows before the error stay


def test_a_keyboard_interrupt_marks_the_run_killed(tmp_path):
    db = str(tmp_path / "exp.db")
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown: sys.exit(1)
            trainer(tmp_path, XetrackLogger(db), limit_val_batches=0).fit(
                Tiny(fail_at=2, error=KeyboardInterrupt), loader()
            )
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores Ctrl+C from then on
    run = only_run(db)
    assert run["status"] == "killed"
    assert run_error(db, run["track_id"]).startswith("KeyboardInterrupt")
    assert len(Reader(db).to_df()) == 2


# ------------------------------------------------------------------ checkpoints
def load_checkpoint(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def test_log_model_stores_the_best_and_last_checkpoints(tmp_path):
    db = str(tmp_path / "exp.db")
    logger = XetrackLogger(db, log_model=True)
    checkpoint = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), monitor="val_loss", save_top_k=1, save_last=True)
    model = Tiny()
    trainer(tmp_path, logger, enable_checkpointing=True, callbacks=[checkpoint]).fit(model, loader(), loader())
    reader = Reader(db)
    artifacts = reader.artifacts(logger.version)
    best, last = Path(checkpoint.best_model_path), Path(checkpoint.last_model_path)
    assert sorted(artifacts["name"]) == sorted({f"checkpoints/{best.name}", f"checkpoints/{last.name}"})
    assert set(artifacts["type"]) == {CHECKPOINT}
    assert reader.tags(logger.version)[BEST_CHECKPOINT_TAG] == f"checkpoints/{best.name}"
    stored_last = load_checkpoint(reader.artifact(f"checkpoints/{last.name}", track_id=logger.version))
    assert stored_last["global_step"] == 8
    for key, value in model.state_dict().items():  # the last checkpoint holds the final weights
        assert torch.equal(stored_last["state_dict"][key], value)
    stored_best = reader.artifact(f"checkpoints/{best.name}", track_id=logger.version)
    assert stored_best == best.read_bytes()
    assert only_run(db)["status"] == "finished"


def test_log_model_all_stores_every_checkpoint_as_saved(tmp_path):
    db = str(tmp_path / "exp.db")
    logger = XetrackLogger(db, log_model="all")
    checkpoint = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_top_k=-1, every_n_epochs=1)
    trainer(tmp_path, logger, enable_checkpointing=True, callbacks=[checkpoint]).fit(Tiny(), loader(), loader())
    names = sorted(Reader(db).artifacts(logger.version)["name"])
    assert names == ["checkpoints/epoch=0-step=4.ckpt", "checkpoints/epoch=1-step=8.ckpt"]
    first = load_checkpoint(Reader(db).artifact(names[0], track_id=logger.version))
    assert first["epoch"] == 0 and first["global_step"] == 4


def test_a_failed_training_still_stores_its_checkpoints(tmp_path):
    db = str(tmp_path / "exp.db")
    logger = XetrackLogger(db, log_model=True)
    checkpoint = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), every_n_train_steps=2, save_top_k=-1)
    with pytest.raises(ValueError, match="boom at step 3"):
        trainer(tmp_path, logger, enable_checkpointing=True, callbacks=[checkpoint], limit_val_batches=0).fit(
            Tiny(fail_at=3), loader()
        )
    assert only_run(db)["status"] == "failed"
    artifacts = Reader(db).artifacts(logger.version)
    assert list(artifacts["name"]) == ["checkpoints/epoch=0-step=2.ckpt"]
    stored = load_checkpoint(Reader(db).artifact("checkpoints/epoch=0-step=2.ckpt", track_id=logger.version))
    assert stored["global_step"] == 2


def test_without_log_model_no_checkpoint_is_stored(tmp_path):
    db = str(tmp_path / "exp.db")
    logger = XetrackLogger(db)
    checkpoint = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"))
    trainer(tmp_path, logger, enable_checkpointing=True, callbacks=[checkpoint], max_epochs=1).fit(Tiny(), loader())
    assert Path(checkpoint.best_model_path).is_file()
    assert len(Reader(db).artifacts()) == 0


# ---------------------------------------------------------- the logger by itself
def test_hyperparameters_logged_late_reach_the_earlier_rows(tmp_path):
    db = str(tmp_path / "exp.db")
    logger = XetrackLogger(db)
    logger.log_metrics({"loss": torch.tensor(0.5), "skipped": None}, step=0)
    logger.log_metrics({"loss": 0.25}, step=1)
    logger.log_hyperparams(Namespace(lr=0.1, model=Namespace(depth=2), act=torch.nn.ReLU, shape=[1, 2]))
    logger.log_hyperparams({"seed": 7}, metrics={"hp_metric": 0.3})  # TensorBoardLogger's metrics=: a row
    logger.finalize("success")
    frame = Reader(db).to_df()
    assert frame["step"].tolist()[:2] == [0, 1]
    assert frame["loss"].tolist()[:2] == [0.5, 0.25]
    assert frame["hp_metric"].iloc[2] == 0.3 and len(frame) == 3
    assert frame["seed"].tolist() == [7, 7, 7]
    assert "skipped" not in frame.columns
    assert frame["lr"].tolist() == [0.1] * 3
    assert frame["model_depth"].tolist() == [2] * 3
    assert set(frame["act"]) == {"torch.nn.modules.activation.ReLU"}  # a class by its name
    assert set(frame["shape"]) == {"[1, 2]"}
    assert only_run(db)["status"] == "finished"


def test_finalize_statuses(tmp_path):
    db = str(tmp_path / "exp.db")
    for status, expected in (("failed", "failed"), ("aborted", "killed"), ("success", "finished")):
        logger = XetrackLogger(db, run_name=status)
        logger.log_metrics({"loss": 1.0}, step=0)
        logger.finalize(status)
        logger.finalize("failed" if status == "success" else "success")  # a later call changes nothing
        runs = Reader(db).runs().set_index("track_id")
        assert runs.loc[logger.version, "status"] == expected
        if expected != "finished":
            assert status in run_error(db, logger.version)
    assert len(runs) == 3


def test_bad_input_is_refused(tmp_path):
    db = str(tmp_path / "exp.db")
    with pytest.raises(ValueError, match="log_model"):
        XetrackLogger(db, log_model="best")
    with pytest.raises(TypeError, match="track_id"):
        XetrackLogger(db, track_id="")
    with pytest.raises(TypeError, match="params"):
        XetrackLogger(db, params=["lr"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        XetrackLogger(db, table="xetrack_runs")
    logger = XetrackLogger(db)
    with pytest.raises(TypeError, match="dict of metrics"):
        logger.log_metrics([0.5], step=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Namespace"):
        logger.log_hyperparams(["lr"])
    with pytest.raises(TypeError, match="not 'extra'"):
        logger.log_hyperparams({"lr": 0.1}, "extra")
    assert not os.path.exists(db)  # nothing was opened


def test_a_missing_lightning_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning")]:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: "not installed"
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "xetrack.integrations.lightning", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'xetrack\[lightning\]'"):
        import xetrack.integrations.lightning  # noqa: F401


def test_pytorch_lightning_trainer_takes_the_logger(tmp_path):
    pl = pytest.importorskip("pytorch_lightning", reason="needs pytorch_lightning (pip install pytorch-lightning)")

    class PlTiny(pl.LightningModule):
        def __init__(self, lr: float = 0.1):
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    db = str(tmp_path / "exp.db")
    run = pl.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        log_every_n_steps=1,
        accelerator="cpu",
        logger=XetrackLogger(db),
        default_root_dir=str(tmp_path),  # its checkpoints, not in the working folder
        **QUIET,
    )
    run.fit(PlTiny(), loader())
    frame = Reader(db).to_df()
    assert frame["step"].tolist() == [0, 1, 2]
    assert frame["loss"].iloc[-1] == pytest.approx(float(run.logged_metrics["loss"]), rel=1e-9)
    assert set(frame["lr"]) == {0.1}
    assert only_run(db)["status"] == "finished"


# ---------------------------------------------------------------- processes
def test_ddp_spawn_writes_one_run_from_rank_zero(tmp_path):
    db = str(tmp_path / "exp.db")
    logger = XetrackLogger(db)
    csv_logger = CSVLogger(str(tmp_path / "csv"), version=0)  # the version the worker writes to
    run = trainer(tmp_path, [logger, csv_logger], strategy="ddp_spawn", devices=2, limit_val_batches=1, max_epochs=1)
    run.fit(Tiny(), loader(), loader())
    run_row = only_run(db)  # rank 1 wrote nothing
    assert run_row["track_id"] == logger.version
    assert run_row["status"] == "finished"
    frame = Reader(db).to_df()
    expected = csv_rows(csv_logger)  # what rank 0 handed Lightning's own logger
    assert frame["step"].tolist() == [int(r["step"]) for r in expected]
    assert len(frame) == 3 + 1  # 24 samples: 3 batches of 4 a rank, then one validation
    assert set(frame["lr"]) == {0.1}


def test_a_worker_that_raises_leaves_the_run_failed(tmp_path):
    # The workers die without ending the run; the launching process, which never opened
    # it, marks it failed by its id (fork: the same launcher as ddp_spawn, quicker to start).
    db = str(tmp_path / "exp.db")
    logger = XetrackLogger(db)
    run = trainer(tmp_path, logger, strategy="ddp_fork", devices=2, limit_val_batches=0, max_epochs=1)
    with pytest.raises(Exception, match="boom at step 1"):
        run.fit(Tiny(fail_at=1), loader())
    run_row = only_run(db)
    assert run_row["track_id"] == logger.version
    assert run_row["status"] == "failed"
    assert "ValueError: boom at step 1" in run_error(db, logger.version)
    assert Reader(db).to_df()["step"].tolist() == [0]  # rank 0's row before the error
