"""JSONL for a GenAI dataset: jsonl='logs/data.jsonl' writes one flat JSON object per event
(ISO timestamps with a time zone, level TRACKING), read back with Reader.read_jsonl or
pandas, next to the database read with Reader.read_db."""

import datetime
import json
import os

import pandas as pd

from xetrack import Reader, Tracker

tracker = Tracker(db="genai/database.db", params={"generator": "v1"}, jsonl="logs/data.jsonl")
tracker.log({"subject": "taxes", "prompt": "Help me with my taxes"})
tracker.log({"subject": "dance", "prompt": "Help me with my moves"})
tracker.log({"subject": "cooking", "prompt": "Help me with my pasta", "score": 0.5})
assert os.path.isfile("logs/data.jsonl") and os.path.isfile("genai/database.db")

with open("logs/data.jsonl", encoding="utf-8") as f:
    lines = [json.loads(line) for line in f if line.strip()]
print(json.dumps(lines[0]))
assert len(lines) == 3
for line in lines:
    assert line["level"] == "TRACKING", line
    assert line["track_id"] == tracker.track_id and line["generator"] == "v1"
    stamp = datetime.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert stamp.tzinfo is not None, line["timestamp"]

df = Reader.read_jsonl("logs/data.jsonl")
print(df)
assert df["subject"].tolist() == ["taxes", "dance", "cooking"]
assert df["prompt"].tolist()[1] == "Help me with my moves"
assert set(df["level"]) == {"TRACKING"}

direct = pd.read_json("logs/data.jsonl", lines=True)
assert direct["subject"].tolist() == ["taxes", "dance", "cooking"]

db = Reader.read_db("genai/database.db", engine="sqlite", table="default")
print(db)
assert db["prompt"].tolist() == df["prompt"].tolist()

other = Tracker(db="genai/database.db", jsonl="logs/data.jsonl")
other.log({"subject": "chess", "prompt": "Help me with my openings"})
assert len(Reader.read_jsonl("logs/data.jsonl")) == 4
assert len(Reader.read_db("genai/database.db")) == 4
mine = Reader.read_db("genai/database.db", track_id=tracker.track_id, head=100)
assert mine["subject"].tolist() == ["taxes", "dance", "cooking"]
first_two = Reader.read_db("genai/database.db", track_id=tracker.track_id, head=2)
assert first_two["subject"].tolist() == ["taxes", "dance"]
print("jsonl ok")
