"""The README's command line, run from a script the way a 0.7.0 user scripts it: xt head,
tail, set, sql, describe, stats top/bottom, plot hist/scatter, copy, delete and version.
Every command is tried; the failures are listed together at the end."""

import os
import random
import subprocess
import sys

import xetrack
from xetrack import Reader, Tracker

XT = os.path.join(os.path.dirname(sys.executable), "xt")
PARAMS_HASH = "1b5b2294fc521d12"
failures = []


def xt(*args):
    done = subprocess.run(
        [XT, *args], capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    )
    print(f"$ xt {' '.join(args)}  -> exit {done.returncode}")
    print(done.stdout[-1500:], done.stderr[-800:], sep="")
    if done.returncode != 0:
        failures.append(f"xt {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
    return done


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAILED:", what)


rng = random.Random(7)
runs = {}
for model in ["xgboost", "lightgbm"]:
    tracker = Tracker("database.db", params={"model": model, "data": "mnist", "params": PARAMS_HASH})
    for _ in range(150):
        x = rng.gauss(2.5, 20)
        tracker.log({"accuracy": 0.9, "x": round(x, 2), "y": round(2 * x + rng.gauss(0, 5), 2)})
    runs[model] = tracker.track_id
first, last = runs["xgboost"], runs["lightgbm"]
df = Reader("database.db").to_df()
top_x, bottom_x = df["x"].max(), df["x"].min()

out = xt("head", "database.db", "--n=2").stdout
check(first in out and "xgboost" in out and last not in out, "xt head --n=2 should show the first run's rows")

out = xt("tail", "database.db", "--n=1").stdout
check(last in out and "lightgbm" in out and first not in out, "xt tail --n=1 should show the last row")

xt("set", "database.db", "accuracy", "0.8", "--where-key", "params", "--where-value", PARAMS_HASH, "--track-id", last)
df = Reader("database.db").to_df()
check(set(df.loc[df["track_id"] == last, "accuracy"]) == {0.8}, "xt set did not set the lightgbm run's accuracy")
check(set(df.loc[df["track_id"] == first, "accuracy"]) == {0.9}, "xt set changed another run")

out = xt("sql", "database.db", 'SELECT model, count(*) AS n FROM db."default" GROUP BY model ORDER BY model;').stdout
check("lightgbm" in out and "150" in out, "xt sql should print the counts")

out = xt("describe", "database.db", "--columns=x,y").stdout
check("mean" in out and "std" in out, "xt describe should print pandas' describe")

out = xt("stats", "top", "database.db", "x").stdout
check(f"{top_x:.2f}" in out, f"xt stats top should show the row with x={top_x}")
out = xt("stats", "bottom", "database.db", "x").stdout
check(f"{bottom_x:.2f}" in out, f"xt stats bottom should show the row with x={bottom_x}")

check(xt("plot", "hist", "database.db", "x").stdout.strip() != "", "xt plot hist printed nothing")
check(xt("plot", "scatter", "database.db", "x", "y").stdout.strip() != "", "xt plot scatter printed nothing")

# two databases merged into one, with and without the assets
source = Tracker("source.db", params={"site": "a"})
source_hash = source.log({"score": 1.5, "weights": complex(1, 2)})["weights"]  # a non-primitive: an asset
Tracker("target.db", params={"site": "b"}).log({"score": 2.5})
Tracker("bare.db", params={"site": "c"}).log({"score": 3.5})
xt("copy", "source.db", "target.db", "--assets", "--table=default")
merged = Reader("target.db").to_df()
check(sorted(merged["site"]) == ["a", "b"], f"xt copy: target has sites {sorted(merged['site'])}")
try:
    check(Tracker("target.db").get(source_hash) == complex(1, 2), "xt copy --assets did not bring the asset")
except Exception as error:  # noqa: BLE001 - the tour reports any failure of get() and goes on
    check(False, f"xt copy --assets: get() raised {error!r}")
xt("copy", "source.db", "bare.db", "--no-assets")
check(sorted(Reader("bare.db").to_df()["site"]) == ["a", "c"], "xt copy --no-assets did not copy the rows")

out = xt("delete", "database.db", first).stdout
df = Reader("database.db").to_df()
check(first not in set(df["track_id"]) and len(df) == 150, "xt delete left the run's rows")

out = xt("version").stdout.strip()
check(
    out == xetrack.__version__ == "0.8.0", f"xt version printed {out!r}, xetrack.__version__ is {xetrack.__version__!r}"
)

if failures:
    raise SystemExit("CLI failures:\n" + "\n".join(f"- {f}" for f in failures))
print("cli tour ok")
