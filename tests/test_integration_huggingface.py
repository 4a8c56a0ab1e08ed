"""xetrack.integrations.huggingface against the real transformers Trainer: a one-layer BERT
of a few hundred weights, random token ids, a handful of CPU steps, nothing downloaded."""

import functools
import os
import subprocess
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

EXTRA = "(pip install 'xetrack[huggingface]')"
torch = pytest.importorskip("torch", reason=f"the Hugging Face integration needs torch {EXTRA}")
transformers = pytest.importorskip("transformers", reason=f"the Hugging Face integration needs transformers {EXTRA}")

from xetrack import Reader  # noqa: E402
from xetrack.integrations.huggingface import ParamClash, XetrackCallback  # noqa: E402

STEPS = 6


def tiny_model(fail_at=None):
    """A one-layer BERT classifier; with ``fail_at``, its forward raises on that call."""
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        num_labels=2,
    )
    model = transformers.BertForSequenceClassification(config)
    if fail_at is not None:
        calls = {"n": 0}
        forward = model.forward

        @functools.wraps(forward)  # the Trainer keeps the inputs forward's signature names
        def failing_forward(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise RuntimeError(f"forward broke at call {fail_at}")
            return forward(*args, **kwargs)

        model.forward = failing_forward
    return model


@pytest.fixture(scope="module")
def data():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (24, 8), generator=generator)
    return [{"input_ids": row, "labels": i % 2} for i, row in enumerate(ids)]


def make_trainer(tmp_path, data, callbacks, model=None, **overrides):
    options = {
        "output_dir": str(tmp_path / "out"),
        "max_steps": STEPS,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "learning_rate": 1e-3,
        "seed": 7,
        "logging_steps": 1,
        "eval_strategy": "steps",
        "eval_steps": 3,
        "report_to": "none",
        "use_cpu": True,
        "save_strategy": "no",
        "disable_tqdm": True,
    }
    options.update(overrides)
    args = transformers.TrainingArguments(**options)
    return transformers.Trainer(
        model=model or tiny_model(),
        args=args,
        train_dataset=data,
        eval_dataset=data[:8],
        callbacks=callbacks,
    )


def runs_of(db):
    return Reader(db).runs().set_index("track_id")


def errors(db):
    """The error text of each run, in run order (the dashboard's run page shows it)."""
    reader = Reader(db)
    return [reader.store.run_error(reader.table_name, t) for t in reader.runs()["track_id"]]


def test_a_training_is_one_run_of_its_logs(tmp_path, data):
    db = str(tmp_path / "exp.db")
    trainer = make_trainer(tmp_path, data, [XetrackCallback(db, params={"dataset": "random"}, run_name="tiny")])
    trainer.train()
    history = trainer.state.log_history

    rows = Reader(db).to_df()
    assert len(rows) == len(history) == STEPS + 2 + 1  # a row a step, two evaluations, the summary
    assert rows["step"].tolist() == [entry["step"] for entry in history]
    assert rows["epoch"].tolist() == pytest.approx([entry["epoch"] for entry in history])
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert rows["loss"].dropna().tolist() == pytest.approx(losses)
    evals = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    assert len(evals) == 2
    assert rows["eval_loss"].dropna().tolist() == pytest.approx(evals)  # on_log and on_evaluate: one row
    assert rows["learning_rate"].dropna().tolist() == pytest.approx(
        [e["learning_rate"] for e in history if "loss" in e]
    )
    assert rows["train_runtime"].dropna().tolist() == pytest.approx([history[-1]["train_runtime"]])
    assert rows["train_loss"].iloc[-1] == pytest.approx(history[-1]["train_loss"])

    (run,) = runs_of(db).to_dict("index").values()
    assert run["status"] == "finished"
    assert run["loss"] == pytest.approx(losses[-1])
    assert run["lr"] == 1e-3 and run["seed"] == 7 and run["max_steps"] == STEPS
    assert run["per_device_train_batch_size"] == 4 and run["gradient_accumulation_steps"] == 1
    assert run["lr_scheduler_type"] == "linear" and run["weight_decay"] == 0.0
    assert run["model_class"] == "BertForSequenceClassification" and run["model_type"] == "bert"
    assert run["num_parameters"] == trainer.model.num_parameters()
    assert run["dataset"] == "random"
    assert Reader(db).runs()["run_name"].tolist() == ["tiny"]


def test_a_training_that_raises_leaves_its_run_failed(tmp_path, data):
    db = str(tmp_path / "exp.db")
    trainer = make_trainer(tmp_path, data, [XetrackCallback(db)], model=tiny_model(fail_at=3), eval_strategy="no")
    with pytest.raises(RuntimeError, match="forward broke at call 3"):
        trainer.train()

    (run,) = runs_of(db).to_dict("index").values()
    assert run["status"] == "failed"
    assert errors(db) == ["RuntimeError: forward broke at call 3"]
    rows = Reader(db).to_df()
    assert rows["step"].tolist() == [1, 2]  # the steps logged before the error stay
    assert rows["loss"].tolist() == pytest.approx([e["loss"] for e in trainer.state.log_history])


def test_an_error_before_training_starts_is_a_failed_run(tmp_path, data):
    db = str(tmp_path / "exp.db")
    trainer = make_trainer(tmp_path, data, [XetrackCallback(db)])
    with pytest.raises(ValueError, match="No valid checkpoint"):
        trainer.train(resume_from_checkpoint=True)
    runs = Reader(db).runs()
    assert runs["status"].tolist() == ["failed"]
    assert "No valid checkpoint" in errors(db)[0]
    assert runs["lr"].tolist() == [1e-3]


def test_each_train_is_a_run_and_later_evaluations_join_the_last(tmp_path, data):
    db = str(tmp_path / "exp.db")
    trainer = make_trainer(tmp_path, data, [XetrackCallback(db)], eval_strategy="no")
    trainer.train()
    first = len(trainer.state.log_history)
    trainer.train()
    second = len(trainer.state.log_history)
    metrics = trainer.evaluate()
    predicted = trainer.predict(data[:8]).metrics

    runs = Reader(db).runs()
    assert len(runs) == 2 and runs["status"].tolist() == ["finished", "finished"]
    rows = Reader(db).to_df()
    per_run = rows.groupby("track_id", sort=False).size().tolist()
    assert per_run == [first, second + 2]  # evaluate and predict: one row each, in the last run
    last = rows[rows["track_id"] == runs["track_id"].iloc[1]]
    assert last["eval_loss"].dropna().tolist() == pytest.approx([metrics["eval_loss"]])
    assert last["test_loss"].dropna().tolist() == pytest.approx([predicted["test_loss"]])
    assert last["step"].iloc[-1] == STEPS
    assert last["lr"].dropna().tolist() == [1e-3] * len(last)  # the run's params on those rows too


def test_an_evaluation_before_any_training_is_a_run_of_its_own(tmp_path, data):
    db = str(tmp_path / "exp.db")
    trainer = make_trainer(tmp_path, data, [XetrackCallback(db)])
    metrics = trainer.evaluate()
    runs = Reader(db).runs()
    assert runs["status"].tolist() == ["finished"]
    assert runs["eval_loss"].tolist() == pytest.approx([metrics["eval_loss"]])
    assert len(Reader(db).to_df()) == 1


def test_log_model_stores_a_model_that_loads_back(tmp_path, data):
    db = str(tmp_path / "exp.db")
    trainer = make_trainer(tmp_path, data, [XetrackCallback(db, log_model=True)], max_steps=2, eval_strategy="no")
    trainer.train()

    reader = Reader(db)
    names = set(reader.artifacts()["name"])
    assert {"model/config.json", "model/model.safetensors"} <= names
    (track_id,) = reader.runs()["track_id"]
    reader.download_artifacts(track_id, tmp_path / "restored")
    loaded = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "restored" / "model")
    trained = trainer.model.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, trained[name]), name
    assert reader.runs()["status"].tolist() == ["finished"]


def test_a_callback_added_later_never_reports_a_broken_run_finished(tmp_path, data):
    db = str(tmp_path / "exp.db")
    trainer = make_trainer(tmp_path, data, [], model=tiny_model(fail_at=2), eval_strategy="no")
    trainer.add_callback(XetrackCallback(db))
    with pytest.raises(RuntimeError, match="call 2"):
        trainer.train()  # not watched yet: the run stays running
    assert Reader(db).runs()["status"].tolist() == ["running"]
    with pytest.raises(RuntimeError, match="call 2"):
        trainer.model.forward = tiny_model(fail_at=2).forward
        trainer.train()  # began again: the first run is failed; this one is watched
    runs = Reader(db).runs()
    assert runs["status"].tolist() == ["failed", "failed"]
    first, second = errors(db)
    assert "before on_train_end" in first
    assert second == "RuntimeError: forward broke at call 2"


def test_only_the_main_process_writes(tmp_path):
    db = str(tmp_path / "exp.db")
    callback = XetrackCallback(db)
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True)
    state = transformers.TrainerState(is_world_process_zero=False, global_step=1)
    control = transformers.TrainerControl()
    callback.on_train_begin(args, state, control, model=tiny_model())
    callback.on_log(args, state, control, logs={"loss": 0.5})
    callback.on_train_end(args, state, control)
    assert not os.path.exists(db)


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="params must be a mapping"):
        XetrackCallback("exp.db", params=["lr"])
    with pytest.raises(TypeError, match="log_model"):
        XetrackCallback("exp.db", log_model="yes")
    with pytest.raises(ValueError, match="Table name"):
        XetrackCallback("exp.db", table="no spaces")
    with pytest.raises(ValueError, match="Unknown engine"):
        XetrackCallback("exp.db", engine="mysql")
    with pytest.raises(ValueError, match="hide the column"):
        XetrackCallback("exp.db", params={"learning_rate": 0.1})


def test_a_param_the_trainer_sets_otherwise_is_refused(tmp_path, data):
    db = str(tmp_path / "exp.db")
    trainer = make_trainer(tmp_path, data, [XetrackCallback(db, params={"seed": 1, "lr": 1e-3})], max_steps=1)
    with pytest.raises(ParamClash, match="seed: yours 1, the Trainer's 7"):
        trainer.train()
    assert not os.path.exists(db)  # nothing written: the error is the user's, not the training's


def test_without_transformers_the_error_names_the_extra():
    code = (
        "import sys; sys.modules['transformers'] = None\n"
        "try:\n    import xetrack.integrations.huggingface\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'xetrack[huggingface]'" in out.stdout


EXITING = """
import sys
import torch, transformers
from xetrack.integrations.huggingface import XetrackCallback

class Breaks(transformers.TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise KeyError("the callback broke")

config = transformers.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=16, max_position_embeddings=16)
data = [{"input_ids": torch.arange(8), "labels": i % 2} for i in range(8)]
args = transformers.TrainingArguments(output_dir=sys.argv[2], max_steps=4, logging_steps=1, report_to="none",
                                      use_cpu=True, save_strategy="no", disable_tqdm=True)
trainer = transformers.Trainer(transformers.BertForSequenceClassification(config), args, train_dataset=data,
                               callbacks=[Breaks()])
trainer.add_callback(XetrackCallback(sys.argv[1]))  # added late: not watched during this train()
trainer.train()
"""


def test_a_process_that_dies_of_its_error_leaves_the_run_failed(tmp_path):
    db = str(tmp_path / "exp.db")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-c", EXITING, db, str(tmp_path / "out")], capture_output=True, text=True, env=env
    )
    assert out.returncode == 1 and "the callback broke" in out.stderr
    assert Reader(db).runs()["status"].tolist() == ["failed"]
    assert errors(db) == ["KeyError: 'the callback broke'"]
    assert Reader(db).to_df()["step"].tolist() == [1]  # step 2 raised before it was logged


def test_rows_reach_the_database_while_training_runs(tmp_path, data):
    db = str(tmp_path / "exp.db")
    seen = []

    class Count(transformers.TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            seen.append((len(Reader(db).to_df()), len(state.log_history)))

    callback = XetrackCallback(db)
    callback.flush_seconds = 0  # each row written as it comes
    trainer = make_trainer(tmp_path, data, [callback, Count()], max_steps=3, eval_strategy="no")
    trainer.train()
    assert seen == [(n, n) for n in range(1, 5)]  # three steps and the summary, each stored at once


def test_an_error_after_on_train_end_still_fails_the_run(tmp_path, data):
    db = str(tmp_path / "exp.db")

    class BreaksAtTheEnd(transformers.TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):
            raise OSError("the push to the hub failed")

    trainer = make_trainer(tmp_path, data, [XetrackCallback(db), BreaksAtTheEnd()], max_steps=2, eval_strategy="no")
    with pytest.raises(OSError, match="push"):
        trainer.train()  # ours marked the run finished first; train() raised after
    assert Reader(db).runs()["status"].tolist() == ["failed"]
    assert errors(db) == ["OSError: the push to the hub failed"]
    assert len(Reader(db).to_df()) == len(trainer.state.log_history)


def test_a_trial_pruned_after_on_train_end_is_pruned(tmp_path, data):
    optuna = pytest.importorskip("optuna", reason="needs optuna (pip install 'xetrack[optuna]')")
    db = str(tmp_path / "exp.db")

    class Prunes(transformers.TrainerCallback):  # as Trainer._report_to_hp_search does
        def on_train_end(self, args, state, control, **kwargs):
            raise optuna.TrialPruned("trial 0 pruned at step 2")

    trainer = make_trainer(tmp_path, data, [XetrackCallback(db), Prunes()], max_steps=2, eval_strategy="no")
    with pytest.raises(optuna.TrialPruned):
        trainer.train()
    assert Reader(db).runs()["status"].tolist() == ["pruned"]
    assert errors(db) == ["TrialPruned: trial 0 pruned at step 2"]


TWO_PROCESSES = r"""
import os, sys
import torch, transformers
from xetrack.integrations.huggingface import XetrackCallback

db = sys.argv[1]
torch.manual_seed(0)
config = transformers.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=16, max_position_embeddings=16, num_labels=2)
data = [{"input_ids": torch.randint(0, 50, (8,)), "labels": i % 2} for i in range(32)]
args = transformers.TrainingArguments(
    output_dir=os.path.join(os.path.dirname(db), "out"), max_steps=4, per_device_train_batch_size=4,
    logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, ddp_backend="gloo",
)
trainer = transformers.Trainer(
    model=transformers.BertForSequenceClassification(config), args=args, train_dataset=data,
    callbacks=[XetrackCallback(db, run_name="ddp")],
)
trainer.train()
with open(sys.argv[1] + ".rank" + os.environ["RANK"], "w") as out:  # its own file: stdout is shared
    out.write(f"rank {os.environ['RANK']} of {trainer.args.world_size} logged {len(trainer.state.log_history)}")
"""


def test_two_processes_write_one_run_from_the_main_one(tmp_path):
    """Distributed data parallel on 2 CPU processes (torchrun, gloo): only world process
    zero writes, as transformers' own loggers do."""
    script, db = tmp_path / "train.py", str(tmp_path / "exp.db")
    script.write_text(TWO_PROCESSES)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), db]
    out = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    said = [(tmp_path / f"exp.db.rank{rank}").read_text() for rank in (0, 1)]
    assert said == ["rank 0 of 2 logged 5", "rank 1 of 2 logged 5"]
    with Reader(db) as reader:
        runs = reader.runs()
        assert len(runs) == 1 and runs.loc[0, "status"] == "finished" and runs.loc[0, "run_name"] == "ddp"
        frame = reader.to_df()
    assert len(frame) == 5 and frame["step"].tolist() == [1, 2, 3, 4, 4]  # 4 steps and the summary row
