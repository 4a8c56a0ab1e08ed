"""Log a small experiment into an embedded SQLite file and read it back.

Run it with `make demo` (or `python examples/quickstart.py`). It writes
`quickstart.db` in the current folder and prints what it stored. With
``XETRACK_DB=postgresql://...`` it logs into that PostgreSQL database instead
(`make demo-postgres` starts a throwaway local server for it).
"""

import os
import random

from xetrack import Reader, Tracker

DB = os.environ.get("XETRACK_DB", "quickstart.db")  # `make demo-postgres` passes a postgresql:// URL
if os.path.exists(DB):
    os.remove(DB)

random.seed(7)

# Two runs of a small "training": each Tracker is one run (one track_id).
for model, lr in [("resnet18", 0.01), ("vit-tiny", 0.003)]:
    tracker = Tracker(DB, params={"model": model, "lr": lr})
    loss = 1.0
    for epoch in range(1, 6):
        loss *= random.uniform(0.55, 0.8)
        tracker.log({"epoch": epoch, "loss": round(loss, 4), "accuracy": round(1 - loss / 2, 4)})
    tracker.set_value("test_accuracy", round(0.8 + random.random() / 10, 4))  # known at the end
    print(f"run {tracker.track_id}: logged {len(tracker)} rows; latest = {tracker.latest}")
    tracker.close()

reader = Reader(DB)
frame = reader.to_df()
print(f"\n{reader.db} holds {len(reader)} rows in table 'default':\n")
print(frame.drop(columns=["timestamp"]).to_string(index=False))

best = frame.loc[frame["test_accuracy"].idxmax()]
print(f"\nbest run: {best['track_id']} ({best['model']}, lr={best['lr']}) test_accuracy={best['test_accuracy']}")

# The same file through DuckDB, with SQL.
duck = Reader(DB, engine="duckdb")
summary = duck.conn.execute(
    'SELECT model, min(loss) AS best_loss, max(epoch) AS epochs FROM db."default" GROUP BY model ORDER BY model'
).df()
print("\nper model, through DuckDB:\n")
print(summary.to_string(index=False))
