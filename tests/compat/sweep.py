"""A hyper-parameter sweep: a new Tracker per configuration into sweeps/sweep.db (a folder
that does not exist yet), then the whole sweep read back with Reader and ranked."""

import itertools
import os

from xetrack import Reader, Tracker


def train(lr, depth, epoch):
    """A fake training step: deterministic, better with more epochs and depth."""
    loss = round(1.0 / (1 + epoch * lr * depth), 6)
    return {"epoch": epoch, "loss": loss, "accuracy": round(1 - loss, 6)}


assert not os.path.exists("missing"), "run me in an empty folder"
try:
    Reader("missing/sweep.db")
except FileNotFoundError as error:
    print("Reader of a missing file:", error)
else:
    raise AssertionError("Reader('missing/sweep.db') did not raise FileNotFoundError")
assert not os.path.exists("missing"), "Reader created a folder for a missing file"
assert not os.path.exists("missing/sweep.db")

track_ids = {}
for lr, depth in itertools.product([0.01, 0.1, 0.5], [2, 4]):
    tracker = Tracker("sweeps/sweep.db", params={"lr": lr, "depth": depth, "optimizer": "sgd"})
    for epoch in range(1, 4):
        tracker.log(train(lr, depth, epoch))
    track_ids[(lr, depth)] = tracker.track_id
    print(f"lr={lr} depth={depth} -> {tracker.latest['accuracy']} ({tracker.track_id})")

assert len(set(track_ids.values())) == 6, "every Tracker should start its own run"

df = Reader("sweeps/sweep.db").to_df()
print(df)
assert len(df) == 18
assert df["track_id"].nunique() == 6
assert set(df["optimizer"]) == {"sgd"}
assert set(df["lr"]) == {0.01, 0.1, 0.5} and set(df["depth"]) == {2, 4}

final = df[df["epoch"] == 3].sort_values("accuracy", ascending=False)
best = final.iloc[0]
print("best:", best["lr"], best["depth"], best["accuracy"])
assert (best["lr"], best["depth"]) == (0.5, 4)
assert best["track_id"] == track_ids[(0.5, 4)]
assert best["accuracy"] == train(0.5, 4, 3)["accuracy"]

one_run = Reader("sweeps/sweep.db").to_df(track_id=track_ids[(0.01, 2)])
assert one_run["epoch"].tolist() == [1, 2, 3]
assert set(one_run["lr"]) == {0.01}
print("sweep ok")
