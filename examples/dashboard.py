"""A small sweep to look at in the dashboard: 2 models x 2 learning rates x 4 seeds, a
loss and an accuracy per epoch, the machine's readings on every row, and a figure of the
predictions at a few epochs (an image artifact by step).

Run it from anywhere: `python dashboard.py`, then `xt ui dashboard.db`. On the runs page,
"Group by" model and lr shows each group's mean and spread; "Chart selected" opens a
panel per metric; a run's page shows its system metrics and its figures by step.
"""

import io
import math
import os
import random

from xetrack import Reader, Tracker

DB = "dashboard.db"
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(DB + suffix):
        os.remove(DB + suffix)


def figure(xs: list[float], ys: list[float], fit: list[float], title: str) -> bytes:
    """The data and the fit as a PNG (matplotlib), or None without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.2, 2.4), dpi=80)
    ax.scatter(xs, ys, s=8, label="data")
    ax.plot(xs, fit, color="C3", label="fit")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


try:
    import matplotlib  # noqa: F401

    figures = True
except ImportError:  # the figures are optional: the rest runs without matplotlib
    figures = False

EPOCHS = 12
for model in ("linear", "quadratic"):
    for lr in (0.02, 0.06):
        for seed in range(4):
            rnd = random.Random(seed)
            xs = [i / 20 for i in range(40)]
            ys = [1.5 * x * x - x + 0.5 + rnd.gauss(0, 0.08) for x in xs]
            name = f"{model}-lr{lr}-s{seed}"
            with Tracker(DB, params={"model": model, "lr": lr, "seed": seed}, run_name=name, log_system_params=True) as run:
                run.set_tags({"sweep": "demo", "model": model})
                a, b, c = 0.0, 0.0, 0.0
                for epoch in range(EPOCHS):
                    for x, y in zip(xs, ys):
                        guess = (a * x * x if model == "quadratic" else 0.0) + b * x + c
                        err = guess - y
                        if model == "quadratic":
                            a -= lr * err * x * x
                        b, c = b - lr * err * x, c - lr * err
                    fit = [(a * x * x if model == "quadratic" else 0.0) + b * x + c for x in xs]
                    loss = sum((f - y) ** 2 for f, y in zip(fit, ys)) / len(ys)
                    run.log({"epoch": epoch, "loss": loss, "accuracy": math.exp(-5 * loss)})
                    if figures and epoch % 4 == 3:
                        run.log_artifact(figure(xs, ys, fit, f"{name} epoch {epoch}"), name="fit.png", step=epoch)

reader = Reader(DB)
print(reader.runs()[["track_id", "model", "lr", "seed", "loss", "accuracy"]].head())
print(reader.aggregate("loss", by=["model", "lr"], agg=["mean", "std", "count"]))
