"""Tracking functions with system and network measurements: track(), @tracker.wrap(params=...)
and plain log(), all into bench/functions.db (a folder that does not exist yet)."""

import os
import time

from xetrack import Reader, Tracker

SYSTEM = ["cpu_percent", "ram_percent", "p_memory_percent", "disk_percent"]
NETWORK = ["bytes_sent", "bytes_recv"]


def read_image(path, size=64):
    time.sleep(0.15)  # longer than measurement_interval
    return len(path) * size


def check_percentages(row, keys):
    for key in keys:
        assert key in row, f"{key} missing from {row}"
        value = row[key]
        assert isinstance(value, (int, float)) and 0 <= value <= 100, (key, value)


def check_counters(row, keys):
    for key in keys:
        assert key in row, f"{key} missing from {row}"
        assert isinstance(row[key], (int, float)) and row[key] >= 0, (key, row[key])


tracker = Tracker(
    "bench/functions.db",
    params={"host": "ci"},
    log_system_params=True,
    log_network_params=True,
    measurement_interval=0.1,
)

image = tracker.track(read_image, args=["images/cat.png"], kwargs={"size": 32})
print("track ->", image, tracker.latest)
assert image == len("images/cat.png") * 32
latest = tracker.latest
assert latest["function_name"] == "read_image"
assert latest["function_result"] == image
assert latest["error"] == ""
assert latest["function_time"] >= 0.1
assert latest["host"] == "ci"
check_percentages(latest, ["cpu", "memory_percent", "p_memory_percent", "disk_percent"])
check_counters(latest, NETWORK)


@tracker.wrap(params={"name": "foofoo"})
def foo(a: int, b: str):
    return a + len(b)


result = foo(1, "hello")
print("wrap ->", result, tracker.latest)
assert result == 6
latest = tracker.latest
assert latest["function_name"] == "foo"
assert latest["function_result"] == 6
assert latest["name"] == "foofoo"
assert latest["error"] == ""

# every logged row carries the measurements, not only track()'s
row = tracker.log({"stage": "eval", "accuracy": 0.81})
print("log ->", row)
check_percentages(row, SYSTEM)
check_counters(row, NETWORK)
assert row["accuracy"] == 0.81 and row["host"] == "ci"


# a failing function: the error is logged and, raise_on_error=True by default, re-raised
def broken():
    raise ValueError("corrupt file")


try:
    tracker.track(broken)
except ValueError:
    pass
else:
    raise AssertionError("tracker.track(broken) did not raise")
assert "corrupt file" in tracker.latest["error"], tracker.latest

df = Reader("bench/functions.db").to_df()
print(df.columns.tolist())
assert len(df) == 4
for column in SYSTEM + NETWORK:
    assert column in df.columns, column
assert df.loc[df["stage"] == "eval", "ram_percent"].notna().all()
assert os.path.isfile("bench/functions.db")
print("track functions ok")
