"""Monitor a model in production through logs only: no database file.

Run from the examples/ folder: `python monitoring.py`. It writes the folder
`monitoring_logs/` (one file a day, `YYYY-MM-DD.log`, rotated as it grows), prints each
event to stdout as well, and reads the events back for a small drift check.
"""

import random
import shutil

import pandas as pd

from xetrack import Reader, Tracker

LOGS = "monitoring_logs"
shutil.rmtree(LOGS, ignore_errors=True)

# SKIP_INSERT: nothing is stored, every event is a structured line in the logs.
tracker = Tracker(db=Tracker.SKIP_INSERT, logs_path=LOGS, logs_stdout=True, params={"model": "churn-v3"})
tracker.logger.info("serving starts")

rnd = random.Random(0)
for hour in range(3):
    # one batch of requests per hour: the inputs drift upwards, hour after hour
    batch = pd.DataFrame(
        {
            "hour": [hour] * 5,
            "tenure": [rnd.gauss(12 + 4 * hour, 2) for _ in range(5)],
            "latency_ms": [rnd.uniform(5, 15) for _ in range(5)],
        }
    )
    batch["prediction"] = (batch["tenure"] > 14).astype(int)
    tracker.logger.monitor(batch)  # one structured line per row, same schema every time
tracker.logger.experiment({"eval_auc": 0.87, "threshold": 14})  # a readable summary, and an event
tracker.close()

# Later, anywhere: read every log file of the folder (oldest first) back as one frame.
df = Reader.read_logs(LOGS)
print(f"\n{len(df)} events read back from {LOGS}/")
drift = df.dropna(subset=["hour"]).groupby("hour")["tenure"].mean()
print("mean tenure per hour (drift check):")
print(drift.round(2).to_string())
if drift.iloc[-1] > drift.iloc[0] + 3:
    print("drift: the inputs moved; time to retrain")
