"""Loguru logs: logs_path='logs' with logs_file_format='{time:YYYY}_exp.log' writes
logs/<year>_exp.log, logs_stdout=True prints every event, the default file name is
'{time:YYYY-MM-DD}.log', and Reader.read_logs(path=...) reads every file of a folder back."""

import datetime
import os

from xetrack import Reader, Tracker

year_before = datetime.datetime.now().year
tracker = Tracker(
    "runs/exp.db", params={"model": "lgbm"}, logs_path="logs", logs_stdout=True, logs_file_format="{time:YYYY}_exp.log"
)
tracker.log({"b": 2})
tracker.log({"accuracy": 0.9, "epoch": 1})
years = {year_before, datetime.datetime.now().year}
print("logs/", sorted(os.listdir("logs")))
assert os.path.isfile("runs/exp.db")
names = sorted(os.listdir("logs"))
assert names and set(names) <= {f"{year}_exp.log" for year in years}, names
with open(os.path.join("logs", names[-1]), encoding="utf-8") as f:
    text = f.read()
print(text)
assert '"b": 2' in text and "lgbm" in text and tracker.track_id in text

df = Reader.read_logs(path="logs")
print(df)
assert len(df) == 2
assert df["b"].tolist()[0] == 2
assert df["accuracy"].tolist()[1] == 0.9
assert set(df["model"]) == {"lgbm"} and set(df["track_id"]) == {tracker.track_id}

# another run, in memory only, appends to the same yearly file
Tracker(Tracker.IN_MEMORY, logs_path="logs", logs_file_format="{time:YYYY}_exp.log").log({"b": 3})
assert sorted(os.listdir("logs")) == names
assert sorted(Reader.read_logs(path="logs")["b"].dropna().tolist()) == [2, 3]

# the default file name: one file a day
days = {datetime.date.today()}
memory = Tracker(Tracker.IN_MEMORY, logs_path="daily/")  # tip: in memory, logs only
memory.log({"accuracy": 0.75})
days.add(datetime.date.today())
daily = sorted(os.listdir("daily"))
print("daily/", daily)
assert daily and set(daily) <= {f"{day:%Y-%m-%d}.log" for day in days}, daily
read = Reader.read_logs(path="daily")
assert read["accuracy"].tolist() == [0.75]
assert not os.path.exists(Tracker.IN_MEMORY)
print("logs ok")
