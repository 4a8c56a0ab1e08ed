"""Runs, history, search, compare, aggregate and predictions: a few toy models in a loop.

Run it from anywhere: `python runs.py`. It writes runs.db next to where it runs.
"""

import math
import os
import random

import pandas as pd

from xetrack import Reader, Tracker

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)
DB = "runs.db"
if os.path.exists(DB):
    os.remove(DB)

# Train a toy "model" per (model, lr): loss shrinks with the epochs, faster for a bigger lr.
data = [(x / 10, 3 * x / 10 + 1 + random.Random(x).gauss(0, 0.1)) for x in range(20)]
for model, lr in [("linear", 0.1), ("linear", 0.3), ("mean", 0.1), ("mean", 0.3)]:
    with Tracker(DB, params={"model": model, "lr": lr}) as run:
        w, b = 0.0, 0.0
        for epoch in range(5):
            if model == "linear":
                for x, y in data:
                    err = w * x + b - y
                    w, b = w - lr * err * x / 5, b - lr * err / 5
            else:
                b += lr * (sum(y for _, y in data) / len(data) - b) * 3
            loss = sum((w * x + b - y) ** 2 for x, y in data) / len(data)
            run.log({"epoch": epoch, "loss": loss, "accuracy": 1 / (1 + loss)})
        run.log_predictions([w * x + b for x, _ in data], [y for _, y in data], metrics=["rmse", "mae", "r2"])

# A run that fails: the error is recorded and still raised.
try:
    with Tracker(DB, params={"model": "broken", "lr": 1.0}) as run:
        run.log({"epoch": 0, "loss": math.inf})
        raise RuntimeError("diverged")
except RuntimeError:
    pass

reader = Reader(DB)
print("Experiments:\n", reader.tables(), "\n")
runs = reader.runs()
print("One row per run:\n", runs[["track_id", "status", "events", "model", "lr", "loss", "accuracy", "r2"]], "\n")

best = reader.search("metrics.accuracy > 0 and params.model = 'linear'", order_by="-accuracy", limit=1)
best_id = best.loc[0, "track_id"]
print("Best linear run:", best_id, "with lr", best.loc[0, "lr"], "accuracy", round(best.loc[0, "accuracy"], 4), "\n")
print("Loss curve of the best run:\n", reader.history("loss", track_id=best_id), "\n")

other = runs[(runs["model"] == "mean") & (runs["lr"] == 0.3)]["track_id"].iloc[0]
print("Side by side, only what differs:\n", reader.compare([best_id, other], only_diff=True), "\n")
print("Accuracy per model (each run counted once, by its last value):\n",
      reader.aggregate("accuracy", by=["model"], agg=["mean", "max", "count"]), "\n")
print("Predictions of the best run:\n", reader.predictions(best_id).head(3))
print("Failed run:", reader.search("status = 'failed'")[["track_id", "status"]].to_dict("records"))
