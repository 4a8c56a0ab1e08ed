"""Quickstart of a 0.7.0 user: log into results/exp.db, a folder that does not exist yet,
add params mid-run, set a value "back in time", and read everything back."""

import os

from xetrack import Reader, Tracker

assert not os.path.exists("results"), "run me in an empty folder"

tracker = Tracker("results/exp.db", params={"model": "resnet18"})
row = tracker.log({"accuracy": 0.9, "loss": 0.1, "epoch": 1})  # all you really need
print("logged", row)
assert os.path.isfile("results/exp.db"), "Tracker did not create results/exp.db"

latest = tracker.latest
print("latest", latest)
for key, value in {"accuracy": 0.9, "loss": 0.1, "epoch": 1, "model": "resnet18"}.items():
    assert latest[key] == value, (key, latest)
assert latest["track_id"] == tracker.track_id and latest["timestamp"]

tracker.set_params({"model": "resnet18", "dataset": "cifar10"})
row = tracker.log({"accuracy": 0.92, "loss": 0.08, "epoch": 2})
assert row["dataset"] == "cifar10" and row["model"] == "resnet18", row

tracker.set_value("test_accuracy", 0.88)  # only known at the end of the run
df = tracker.to_df()
print(df)
assert len(df) == 2
assert df["test_accuracy"].tolist() == [0.88, 0.88]
assert df["epoch"].tolist() == [1, 2]
assert tracker["accuracy"].tolist() == [0.9, 0.92]
print(tracker)

# a second run into the same file: to_df() shows this run, to_df(all=True) every run
other = Tracker("results/exp.db", params={"model": "resnet50"})
other.log({"accuracy": 0.95, "loss": 0.05, "epoch": 1})
assert other.track_id != tracker.track_id
assert len(other.to_df()) == 1
assert len(other.to_df(all=True)) == 3

every = Reader("results/exp.db").to_df()
print(every)
assert len(every) == 3
assert sorted(every["model"].tolist()) == ["resnet18", "resnet18", "resnet50"]
assert every["track_id"].nunique() == 2

# multiple experiment types: one table each, same file
model_tracker = Tracker("results/experiments.db", table="model_experiments")
data_tracker = Tracker("results/experiments.db", table="data_experiments")
model_tracker.log({"accuracy": 0.7})
data_tracker.log({"rows": 1000, "source": "s3"})
assert Reader("results/experiments.db", table="model_experiments").to_df()["accuracy"].tolist() == [0.7]
assert Reader("results/experiments.db", table="data_experiments").to_df()["rows"].tolist() == [1000]
print("quickstart ok:", sorted(os.listdir("results")))
