"""Cache results of tracked calls on disk, and trace each hit back to the run that computed it.

Run from the examples/ folder: `python caching.py`. It writes `caching_example.db` and the
folder `caching_example_cache/`.
"""

import os
import shutil
import time

from xetrack import Reader, Tracker

DB, CACHE = "caching_example.db", "caching_example_cache"
if os.path.exists(DB):
    os.remove(DB)
shutil.rmtree(CACHE, ignore_errors=True)


def simulate(steps: int, rate: float) -> float:
    """A slow, deterministic computation."""
    time.sleep(0.2)
    value = 1.0
    for _ in range(steps):
        value *= 1 + rate
    return round(value, 6)


# Monday's run computes; Tuesday's run (a new Tracker, same cache) reuses what it can.
for day in ("monday", "tuesday"):
    tracker = Tracker(DB, cache=CACHE, params={"day": day})
    for steps in (10, 20):
        start = time.perf_counter()
        value = tracker.track(simulate, args=[steps], kwargs={"rate": 0.05})
        took = time.perf_counter() - start
        print(f"{day}: simulate({steps}) = {value} in {took:.3f}s, cache={tracker.latest['cache']!r}")

# cache_force recomputes and replaces the entry: later hits point at the refreshing run.
refresh = Tracker(DB, cache=CACHE, params={"day": "wednesday"})
refresh.track(simulate, args=[10], kwargs={"rate": 0.05}, cache_force=True)

frame = Reader(DB).to_df()
print(f"\n{DB}:\n")
print(frame[["day", "args", "function_result", "function_time", "cache", "track_id"]].to_string(index=False))

print(f"\nentries in {CACHE}/:")
for key, entry in Reader.scan_cache(CACHE):
    print(f"  {key}  result={entry['result']}  computed by {entry['cache']}")

deleted = Reader.delete_cache_by_track_id(CACHE, refresh.track_id)
print(f"\ndeleted {deleted} entry computed by {refresh.track_id}; {len(list(Reader.scan_cache(CACHE)))} left")
