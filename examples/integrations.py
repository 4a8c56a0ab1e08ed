"""One line from each framework: tiny trainings logged to integrations.db, a table each.

Needs the frameworks (pip install 'xetrack[huggingface,lightning,keras,optuna,xgboost,lightgbm]');
one that is missing is skipped with a message. Then: xt ui integrations.db
"""

import importlib.util
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # keras on any installed backend
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded

import numpy as np

from xetrack import Reader

DB = "integrations.db"
rng = np.random.default_rng(0)
x = rng.normal(size=(300, 5)).astype("float32")
y = (x[:, 0] + rng.normal(scale=0.5, size=300) > 0).astype(int)


def xgboost_run() -> None:
    import xgboost as xgb

    from xetrack.integrations.xgboost import XetrackCallback

    train, valid = xgb.DMatrix(x[:200], label=y[:200]), xgb.DMatrix(x[200:], label=y[200:])
    xgb.train(
        {"objective": "binary:logistic", "eta": 0.1, "max_depth": 3, "eval_metric": "logloss"},
        train,
        num_boost_round=40,
        evals=[(train, "train"), (valid, "valid")],
        verbose_eval=False,
        callbacks=[XetrackCallback(DB, table="xgboost", run_name="depth-3")],
    )


def lightgbm_run() -> None:
    import lightgbm as lgb

    from xetrack.integrations.lightgbm import xetrack_callback

    train = lgb.Dataset(x[:200], label=y[:200])
    valid = lgb.Dataset(x[200:], label=y[200:], reference=train)
    lgb.train(
        {"objective": "binary", "learning_rate": 0.1, "num_leaves": 7, "verbose": -1},
        train,
        num_boost_round=40,
        valid_sets=[valid],
        callbacks=[xetrack_callback(DB, table="lightgbm", run_name="leaves-7")],
    )


def optuna_run() -> None:
    import optuna

    from xetrack.integrations.optuna import XetrackCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
        for step in range(5):
            trial.report((lr - 0.1) ** 2 + 1 / (step + 1), step)
        return (lr - 0.1) ** 2

    study = optuna.create_study(study_name="lr-search", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=12, callbacks=[XetrackCallback(DB, table="optuna", metric_name="loss")])


def lightning_run() -> None:
    import lightning.pytorch as L
    import torch

    from xetrack.integrations.lightning import XetrackLogger

    class Classifier(L.LightningModule):
        def __init__(self, lr: float = 0.1) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(5, 1)

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            inputs, labels = batch
            loss = torch.nn.functional.binary_cross_entropy_with_logits(self.layer(inputs).squeeze(1), labels)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    data = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y, dtype=torch.float32))
    trainer = L.Trainer(
        max_epochs=4,
        log_every_n_steps=1,
        logger=XetrackLogger(DB, table="lightning", run_name="linear"),
        accelerator="cpu",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir="lightning_logs",
    )
    trainer.fit(Classifier(), torch.utils.data.DataLoader(data, batch_size=32))


def keras_run() -> None:
    import keras

    from xetrack.integrations.keras import XetrackCallback

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    model.fit(
        x,
        y.astype("float32"),
        epochs=8,
        batch_size=32,
        validation_split=0.25,
        verbose=0,
        callbacks=[XetrackCallback(DB, table="keras", params={"batch_size": 32}, run_name="mlp")],
    )


def huggingface_run() -> None:
    import torch
    import transformers

    from xetrack.integrations.huggingface import XetrackCallback

    transformers.logging.set_verbosity_error()
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
    data = [{"input_ids": torch.randint(0, 50, (8,)), "labels": i % 2} for i in range(48)]
    args = transformers.TrainingArguments(
        output_dir="hf-out",
        max_steps=12,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=4,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(
        model=transformers.BertForSequenceClassification(config),
        args=args,
        train_dataset=data,
        eval_dataset=data[:8],
        callbacks=[XetrackCallback(DB, table="huggingface", run_name="tiny-bert")],
    )
    trainer.remove_callback(transformers.PrinterCallback)  # the run is in the database, not on stdout
    trainer.train()


def mlflow_script() -> None:
    import xetrack.mlflow as mlflow  # a script written for MLflow, with only this line changed

    mlflow.set_tracking_uri(DB)
    mlflow.set_experiment("mlflow_script")
    with mlflow.start_run(run_name="sgd"):
        mlflow.log_params({"lr": 0.1, "optimizer": "sgd"})
        for step in range(10):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)


def wandb_script() -> None:
    import xetrack.wandb as wandb  # a script written for W&B, with only this line changed

    run = wandb.init(project="wandb_script", name="adam", config={"lr": 0.01}, db=DB)
    for step in range(10):
        wandb.log({"accuracy": 1 - 0.5 / (step + 1)})
    run.finish()


FRAMEWORKS = {
    "xgboost": xgboost_run,
    "lightgbm": lightgbm_run,
    "optuna": optuna_run,
    "lightning": lightning_run,
    "keras": keras_run,
    "transformers": huggingface_run,
}
for module, train in FRAMEWORKS.items():
    if importlib.util.find_spec(module) is None:
        print(f"{module} is not installed: skipped")
        continue
    train()
mlflow_script()
wandb_script()

tables = Reader(DB).tables()
print(tables.to_string(index=False))
for table in tables["table"]:
    runs = Reader(DB, table=table).runs()
    assert set(runs["status"]) <= {"finished", "pruned"}, (table, runs["status"])
print(f"See them: xt ui {DB}")
