"""Track function calls: arguments, results, errors, timing, config dataclasses, system use.

Run from the examples/ folder: `python functions.py`. It writes `functions_example.db`.
"""

import math
import os
import time
from dataclasses import dataclass, field

from xetrack import Reader, Tracker

DB = "functions_example.db"
if os.path.exists(DB):
    os.remove(DB)


@dataclass(frozen=True)
class Optimizer:
    name: str = "sgd"
    lr: float = 0.1


@dataclass
class Config:
    optimizer: Optimizer = field(default_factory=Optimizer)
    epochs: int = 3
    layers: list = field(default_factory=lambda: [16, 8])


tracker = Tracker(DB, params={"dataset": "toy"}, log_system_params=True, measurement_interval=0.01)


@tracker.wrap(params={"stage": "train"})
def train(cfg: Config, seed: int = 0) -> dict:
    """A stand-in for training: returns metrics, which become columns."""
    loss = 1.0
    for _ in range(cfg.epochs):
        loss *= 1 - cfg.optimizer.lr
        time.sleep(0.01)
    return {"loss": round(loss, 4), "accuracy": round(1 - loss / 2, 4)}


for lr in (0.1, 0.3):
    metrics = train(Config(optimizer=Optimizer(lr=lr)), seed=1)
    print(f"train(lr={lr}) returned {metrics}")

# A plain result goes into function_result; the call's params go into its row only.
print("sqrt(2) =", tracker.track(math.sqrt, args=[2], params={"stage": "check"}))

# A failing call is logged with its error, then raised again.
try:
    tracker.track(math.sqrt, args=[-1])
except ValueError as error:
    print(f"math.sqrt(-1) raised {error!r}; its row has error={tracker.latest['error']!r}")

frame = Reader(DB).to_df()
columns = [
    "function_name", "args", "kwargs", "error", "function_time", "cfg_optimizer_lr", "cfg_layers",
    "loss", "accuracy", "function_result", "cpu", "p_memory_percent", "stage", "dataset",
]
print(f"\n{DB} holds {len(frame)} rows:\n")
print(frame[columns].to_string(index=False))
