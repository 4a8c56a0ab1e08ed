"""Model monitoring on a server: Tracker(db=Tracker.SKIP_INSERT, logs_path='logs',
logs_stdout=True) writes structured lines and no database; tracker.logger.monitor(...)
takes a dict or a DataFrame, tracker.logger.experiemnt(...) (sic) an evaluation;
Reader.read_logs(path='logs') reads it all back."""

import os

import pandas as pd

from xetrack import Reader, Tracker

before = set(os.listdir("."))
tracker = Tracker(db=Tracker.SKIP_INSERT, params={"service": "fraud-api"}, logs_path="logs", logs_stdout=True)

tracker.logger.monitor({"latency_ms": 12.5, "prediction": 1, "amount": 99.0})
batch = pd.DataFrame({"latency_ms": [8.0, 30.1, 9.9], "prediction": [0, 1, 0], "amount": [5.0, 1200.0, 42.0]})
tracker.logger.monitor(batch)
tracker.logger.experiemnt({"model": "xgboost", "accuracy": 0.93, "max_depth": 6})
tracker.logger.info("monitoring batch done")

created = set(os.listdir(".")) - before
print("created:", created)
assert created == {"logs"}, created  # no database file
assert os.listdir("logs")

df = Reader.read_logs(path="logs")
print(df)
monitored = df[df["latency_ms"].notna()]
assert monitored["latency_ms"].tolist() == [12.5, 8.0, 30.1, 9.9]
assert monitored["prediction"].tolist() == [1, 0, 1, 0]
assert set(monitored["service"]) == {"fraud-api"}
assert set(df["track_id"].dropna()) == {tracker.track_id}
evaluation = df[df["accuracy"].notna()]
assert evaluation["model"].tolist() == ["xgboost"] and evaluation["accuracy"].tolist() == [0.93]

# drift check a user would run on the logs
mean = monitored["amount"].mean()
outliers = monitored[monitored["amount"] > 3 * monitored["amount"].median()]
print(f"mean amount {mean:.1f}, outliers: {outliers['amount'].tolist()}")
assert outliers["amount"].tolist() == [1200.0]
print("monitoring ok")
