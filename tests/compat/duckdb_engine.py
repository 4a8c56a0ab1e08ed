"""engine='duckdb': the same Tracker calls, with SQL through tracker.conn.execute on the
database attached as db; the file stays a SQLite file readable by either engine."""

import os
import sqlite3

from xetrack import Reader, Tracker

for model, scores in {"resnet18": [0.71, 0.84], "resnet50": [0.79, 0.91]}.items():
    tracker = Tracker("warehouse/experiments.db", params={"model": model}, engine="duckdb")
    for epoch, accuracy in enumerate(scores, 1):
        tracker.log({"epoch": epoch, "accuracy": accuracy, "loss": round(1 - accuracy, 2)})
    print(model, tracker.latest)
    assert tracker.latest["model"] == model and tracker.latest["accuracy"] == scores[-1]

assert os.path.isfile("warehouse/experiments.db")
rows = tracker.conn.execute(
    'SELECT model, epoch, accuracy FROM db."default" WHERE accuracy > 0.8 ORDER BY accuracy'
).fetchall()
print("accuracy > 0.8:", rows)
assert [tuple(r) for r in rows] == [("resnet18", 2, 0.84), ("resnet50", 2, 0.91)]

best = tracker.conn.execute(
    'SELECT model, max(accuracy) AS best FROM db."default" GROUP BY model ORDER BY best DESC'
).fetchall()
assert best[0][0] == "resnet50"

assert len(tracker.to_df()) == 2 and len(tracker.to_df(all=True)) == 4
tracker.set_value("test_accuracy", 0.9)
assert tracker.to_df()["test_accuracy"].tolist() == [0.9, 0.9]

duck = Reader("warehouse/experiments.db", engine="duckdb").to_df()
lite = Reader("warehouse/experiments.db").to_df()
print(duck)
assert len(duck) == len(lite) == 4
assert sorted(duck["accuracy"].tolist()) == sorted(lite["accuracy"].tolist()) == [0.71, 0.79, 0.84, 0.91]

with sqlite3.connect("warehouse/experiments.db") as conn:  # still a plain SQLite file
    assert conn.execute('SELECT count(*) FROM "default"').fetchone()[0] == 4
print("duckdb ok")
