"""Artifacts and the model registry: train a toy model per setting, keep its files, register
the models, promote the best one to production, load it back and clean up.

Run it from anywhere: `python artifacts.py`. It writes artifacts_example.db next to where it runs.
"""

import io
import os
import shutil

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from xetrack import Reader, Tracker  # noqa: E402

DB = "artifacts_example.db"
for leftover in (DB, "restored"):
    if os.path.isdir(leftover):
        shutil.rmtree(leftover)
    elif os.path.exists(leftover):
        os.remove(leftover)


class Threshold:
    """A one-parameter classifier: predicts 1 above the threshold."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def predict(self, xs: list[float]) -> list[int]:
        return [int(x > self.threshold) for x in xs]


xs = [i / 20 for i in range(20)]
truth = [int(x > 0.42) for x in xs]
for threshold in (0.2, 0.4, 0.6):
    with Tracker(DB, params={"threshold": threshold}) as run:
        model = Threshold(threshold)
        predicted = model.predict(xs)
        accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(xs)
        run.log({"accuracy": accuracy})
        run.log_artifact(pd.DataFrame({"x": xs, "predicted": predicted}), name="predictions.parquet")
        fig, ax = plt.subplots()
        ax.plot(xs, predicted, label="predicted")
        ax.plot(xs, truth, label="truth")
        run.log_artifact(fig, name="plots/decision.png")
        plt.close(fig)
        run.log_artifact(f"threshold: {threshold}\n".encode(), name="config.yaml")
        version = run.register_model("threshold-classifier", model, description=f"accuracy {accuracy:.2f}")
        print(f"run {run.track_id}: accuracy {accuracy:.2f}, registered version {version}")

reader = Reader(DB)
print(reader.artifacts()[["track_id", "name", "type", "size"]].to_string(index=False))

best = reader.search(order_by="-accuracy", limit=1).loc[0, "track_id"]
models = reader.models()
version = int(models[models["track_id"] == best]["version"].iloc[0])
reader.set_model_alias("threshold-classifier", version, "production")
production = reader.load_model("threshold-classifier@production")
print(f"production is version {version}: threshold {production.threshold}, predicts {production.predict([0.1, 0.9])}")

frame = pd.read_parquet(io.BytesIO(reader.artifact("predictions.parquet", track_id=best)))
print(f"the best run's predictions: {len(frame)} rows, {int(frame['predicted'].sum())} positives")
paths = reader.download_artifacts(best, "restored")
print("downloaded:", sorted(os.path.relpath(p, "restored") for p in paths))

worst = reader.search(order_by="accuracy", limit=1).loc[0, "track_id"]
reader.delete_run(worst)
freed = reader.gc()
print(f"deleted run {worst}; gc freed {freed.artifacts} artifacts, {freed.bytes} bytes "
      "(its model version and shared bytes stay)")
print(reader.models()[["name", "version", "aliases", "track_id"]].to_string(index=False))
