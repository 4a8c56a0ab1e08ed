"""Function result caching: cache='cache_dir' skips repeated calls, the `cache` column traces
a hit back to the run that computed it, and the cache is read directly with
Reader.read_cache / Reader.scan_cache, and survives into another Python process."""

import os
import subprocess
import sys
import textwrap
import warnings

from xetrack import Reader, Tracker

calls = []


def expensive_computation(x: int, y: int) -> int:
    calls.append((x, y))
    return x**y


class Config:
    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return hash(self.value)

    def __eq__(self, other):
        return isinstance(other, Config) and self.value == other.value


processed = []


def process(item):
    processed.append(item)
    return str(getattr(item, "value", item))


first = Tracker(db="track.db", cache="cache_dir")
assert first.track(expensive_computation, args=[2, 10]) == 1024  # computed
assert first.track(expensive_computation, args=[2, 10]) == 1024  # cache hit
assert first.track(expensive_computation, args=[3, 10]) == 59049  # computed
assert first.track(expensive_computation, args=[2, 10], params={"model": "v2"}) == 1024  # computed
assert first.track(expensive_computation, args=[2, 10], params={"model": "v2"}) == 1024  # cache hit
print("calls", calls)
assert calls == [(2, 10), (3, 10), (2, 10)], calls
assert os.path.isdir("cache_dir")

df = Reader(db="track.db").to_df()
print(df[["function_name", "function_time", "cache", "track_id"]])
assert len(df) == 5
assert df["function_name"].tolist() == ["expensive_computation"] * 5
assert df["function_result"].tolist() == [1024, 1024, 59049, 1024, 1024]
assert df["cache"].tolist() == ["", first.track_id, "", "", first.track_id], df["cache"].tolist()

# a later run hits the cache of the first one
second = Tracker(db="track.db", cache="cache_dir")
assert second.track(expensive_computation, args=[3, 10]) == 59049
assert len(calls) == 3
assert second.latest["cache"] == first.track_id

cache_key = second._generate_cache_key(expensive_computation, [2, 10], {}, {})
assert cache_key is not None
cached_data = Reader.read_cache("cache_dir", cache_key)
print("read_cache", cache_key, cached_data)
assert cached_data["result"] == 1024
assert cached_data["cache"] == first.track_id

# hashable objects: equal hashes share an entry; unhashable arguments skip the cache
assert second.track(process, args=[Config("production")]) == "production"
assert second.track(process, args=[Config("production")]) == "production"
assert len(processed) == 1
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    second.track(process, args=[[1, 2, 3]])
    second.track(process, args=[[1, 2, 3]])
assert len(processed) == 3, processed

entries = list(Reader.scan_cache("cache_dir"))
for key, data in entries:
    print(f"{key}: result={data['result']}, from={data['cache']}")
results = sorted(str(data["result"]) for _, data in entries)
assert results == sorted(["1024", "59049", "1024", "production"]), results

# the cache persists across Python sessions
child = textwrap.dedent("""
    from xetrack import Tracker
    def expensive_computation(x: int, y: int) -> int:
        raise SystemExit("should have come from the cache")
    tracker = Tracker(db="track.db", cache="cache_dir")
    print(tracker.track(expensive_computation, args=[2, 10]), tracker.latest["cache"])
""")
done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
print("another process:", done.stdout, done.stderr)
assert done.returncode == 0, done.stderr
assert done.stdout.split() == ["1024", first.track_id], done.stdout
assert len(Reader("track.db").to_df()) == 11
print("caching ok")
