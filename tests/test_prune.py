"""Pruning runs (``Reader.prune``, ``xt prune``) and ``xt du``.

Stores are made through the public API: Trackers log rows, tags, predictions, artifacts,
objects and a registered model; a run ``running`` lives in a child process the test keeps
alive, a ``dead`` one was started by a child that exited without ending it. Ages are set
afterwards: the rows' timestamps with ``Reader.set_value`` (public), the lifecycle's
start and end by SQL on the test's own file through ``Reader.conn`` (the fixture
``age_runs``: no public call back-dates a run). What a prune must keep is computed from
what the test made, not from the code under test.
"""

import datetime as dt
import json
import os
import pty
import random
import signal
import subprocess
import sys
import time

import pytest

from test_cli import XT, fails, fingerprint, ok
from xetrack import Reader, Tracker
from xetrack.cli.prune import is_dry_run

STAMP = "%Y-%m-%d %H:%M:%S.%f"
SIDES = ("xetrack_runs", "xetrack_predictions", "xetrack_artifacts", "xetrack_tags", "xetrack_run_names")
EMPTY = {"rows": 0, "sides": dict.fromkeys(SIDES, 0), "tags": {}, "predictions": 0, "artifacts": []}
CHILD = """
import os, sys
from xetrack import Tracker
db, mode, *ids = sys.argv[1:]
for track_id in ids:
    Tracker(db, track_id=track_id).start()
print("ready", flush=True)
if mode == "dead":
    os._exit(0)  # no end(): the lifecycle says running, and the process is gone
sys.stdin.read()  # alive until the test closes stdin
"""


class Model:
    """An object logged by value: its pickle goes into the asset store."""

    def __init__(self, w):
        self.w = w


def start_children(db, dead, live):
    """Start the ``dead`` runs in a child that exits and the ``live`` ones in a child that
    stays; returns the live child (None without live runs)."""
    if dead:
        out = subprocess.run([sys.executable, "-c", CHILD, db, "dead", *dead], capture_output=True, text=True)
        assert out.stdout.strip() == "ready", out.stderr
    if not live:
        return None
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db, "live", *live], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "ready"
    return child


def stop(child):
    if child is not None:
        child.stdin.close()
        child.wait(timeout=30)


def sql(db, query, params=()):
    """SQL of the test's own on its file (or server), through the public ``Reader.conn``."""
    reader = Reader(db)
    if db.startswith("postgresql://"):
        query = query.replace("?", "%s")
    cursor = reader.conn.execute(query, params)
    rows = cursor.fetchall() if cursor.description else []
    reader.close()
    return rows


def age_runs(db, ages, now):
    """Back-date each run: its rows to ``now - age`` and its lifecycle's start an hour
    before that (its end at that moment when it has one)."""
    for track_id, age in ages.items():
        last = now - dt.timedelta(days=age)
        Reader(db).set_value("timestamp", last.strftime(STAMP), track_id=track_id)
        start = (last - dt.timedelta(hours=1)).strftime(STAMP)
        sql(db, 'UPDATE xetrack_runs SET "start" = ? WHERE "track_id" = ?', (start, track_id))
        sql(
            db,
            'UPDATE xetrack_runs SET "end" = ? WHERE "track_id" = ? AND "end" IS NOT NULL',
            (last.strftime(STAMP), track_id),
        )


def side_counts(db, track_id):
    counts = {}
    for side in SIDES:
        try:
            counts[side] = sql(
                db, f'SELECT count(*) FROM {side} WHERE "track_id" = ? AND "table" = ?', (track_id, "default")
            )[0][0]
        except Exception:  # noqa: BLE001 - the side table was never made: nothing there
            counts[side] = 0
    return counts


def snapshot(db, track_id):
    """Everything of one run: its rows, side rows, tags, predictions and artifacts."""
    reader = Reader(db)
    rows = reader.to_df(track_id=track_id)
    return {
        "rows": len(rows),
        "sides": side_counts(db, track_id),
        "tags": reader.tags(track_id),
        "predictions": len(reader.predictions(track_id)),
        "artifacts": sorted(reader.artifacts(track_id)["hash"]),
    }


def make_store(db, rng, count=14):
    """Random runs: statuses, ages, an ``acc`` (ties and missing ones too), tags, run names,
    predictions, artifacts and objects of their own and shared, one registered model.
    Returns (what each run is, the live child)."""
    statuses = ["finished", "failed", "killed", "dead", "running", None]
    runs = {}
    shared_artifact, shared_object = b"shared" * 2000, Model([0.0] * 50)
    for i in range(count):
        track_id = f"run-{i:02d}"
        status = rng.choice(statuses)
        acc = rng.choice([None, round(rng.uniform(0.5, 0.9), 1)])
        tags = {
            k: rng.choice(v) for k, v in {"stage": ["prod", "dev"], "team": ["a", "b"]}.items() if rng.random() < 0.6
        }
        t = Tracker(
            db, track_id=track_id, params={"lr": rng.choice([0.1, 0.01])}, run_name=rng.choice([None, f"name-{i}"])
        )
        if status in ("finished", "failed", "killed"):
            t.start()
        for step in range(rng.randint(1, 4)):
            t.log({"step": step, "loss": rng.random()})
        if acc is not None:
            t.log({"acc": acc})
        t.log({"weights": Model([rng.random() for _ in range(200)])})
        if rng.random() < 0.4:
            t.log({"shared": shared_object})
        t.log_artifact(os.urandom(rng.randint(1000, 30000)), name="own.bin")
        if rng.random() < 0.4:
            t.log_artifact(shared_artifact, name="shared.bin")
        if rng.random() < 0.5:
            t.log_predictions([1.0, 2.0, 3.0], [1.0, 2.5, 2.5], ["mae"])
        if tags:
            t.set_tags(tags)
        if status in ("finished", "failed", "killed"):
            t.end(status)
        runs[track_id] = {"status": status, "acc": acc, "tags": tags, "model": False, "age": rng.randint(0, 30) + 0.5}
        t.close()
    registered = rng.choice(sorted(runs))
    Tracker(db, track_id=registered).register_model("iris", Model("from a run"))
    runs[registered]["model"] = True
    dead = [k for k, r in runs.items() if r["status"] == "dead"]
    live = [k for k, r in runs.items() if r["status"] == "running"]
    child = start_children(db, dead, live)
    return runs, child


def random_rules(rng):
    while True:
        rules = {
            "older_than": rng.choice([None, f"{rng.randint(1, 25)}d", f"{24 * rng.randint(1, 25)}h"]),
            "status": rng.choice(
                [None, rng.sample(["finished", "failed", "killed", "dead", "running"], rng.randint(1, 3))]
            ),
            "keep_best": rng.choice([None, rng.randint(1, 4)]),
            "keep_tags": [f"{k}={v}" for k, v in [("stage", "prod"), ("team", "a")] if rng.random() < 0.3],
            "force": rng.random() < 0.3,
        }
        if rules["keep_best"] is not None:
            rules["by"], rules["mode"] = "acc", rng.choice(["max", "min"])
        if rules["older_than"] or rules["status"] or rules["keep_best"]:
            return rules


def expected_pruned(runs, rules):
    """The runs the rules prune, from what the test made."""
    days = None
    if rules["older_than"]:
        n, unit = int(rules["older_than"][:-1]), rules["older_than"][-1]
        days = n if unit == "d" else n / 24
    best = set()
    if rules["keep_best"]:
        scored = sorted((r["acc"] for r in runs.values() if r["acc"] is not None), reverse=rules["mode"] == "max")
        if scored:
            cut = scored[min(rules["keep_best"], len(scored)) - 1]
            better = (lambda a: a >= cut) if rules["mode"] == "max" else (lambda a: a <= cut)
            best = {k for k, r in runs.items() if r["acc"] is not None and better(r["acc"])}
    kept_tags = [tuple(p.split("=")) for p in rules["keep_tags"]]
    out = set()
    for track_id, run in runs.items():
        if rules["status"] is not None and run["status"] not in rules["status"]:
            continue
        if rules["status"] is None and run["status"] == "running":
            continue
        if days is not None and not run["age"] > days:
            continue
        if track_id in best or any(run["tags"].get(k) == v for k, v in kept_tags):
            continue
        if run["model"] and not rules["force"]:
            continue
        out.add(track_id)
    return out


def stored_holders(db):
    """hash -> the runs pointing at it (artifact entries and logged objects), the hashes
    a model version holds, and hash -> stored bytes."""
    reader = Reader(db)
    holders = {}
    for track_id, key in reader.artifacts()[["track_id", "hash"]].itertuples(index=False):
        holders.setdefault(key, set()).add(track_id)
    frame = reader.to_df()
    for column in {"weights", "shared"} & set(frame.columns):
        for track_id, key in frame[["track_id", column]].dropna().itertuples(index=False):
            holders.setdefault(key, set()).add(track_id)
    sizes = {key: size for key, size, _, _ in reader.store.asset_listing()}
    sizes.update(zip(reader.artifacts()["hash"], reader.artifacts()["size"]))
    return holders, set(reader.models()["hash"]), sizes


def check_prune(db, seed, count=14):
    rng = random.Random(seed)
    runs, child = make_store(db, rng, count)
    try:
        age_runs(db, {k: r["age"] for k, r in runs.items()}, dt.datetime.now())
        shown = Reader(db).runs().set_index("track_id")["status"]
        made = {k: r["status"] for k, r in runs.items()}
        assert {k: (v if isinstance(v, str) else None) for k, v in shown.items()} == made, f"seed {seed}"
        before = {k: snapshot(db, k) for k in runs}
        holders, modelled, sizes = stored_holders(db)
        gone: set = set()
        freed: set = set()
        for _ in range(3):  # three prunes in a row, each of the runs the last one left
            left = {k: r for k, r in runs.items() if k not in gone}
            rules = random_rules(rng)
            if rules["keep_best"] and left and all(r["acc"] is None for r in left.values()):
                with pytest.raises(ValueError, match="no number in any run"):  # nothing to rank by
                    Reader(db).prune(**rules, dry_run=True)
                continue
            want = expected_pruned(left, rules)
            dry = Reader(db).prune(**rules, dry_run=True)
            assert set(dry.track_ids) == want == set(dry.runs["track_id"]), f"seed {seed} rules {rules}: dry run"
            assert set(Reader(db).runs()["track_id"]) == set(left), f"seed {seed}: a dry run deleted something"
            done = Reader(db).prune(**rules)
            assert set(done.track_ids) == want and not done.skipped, f"seed {seed} rules {rules}"
            gone |= want
            assert set(Reader(db).runs()["track_id"]) == set(runs) - gone, f"seed {seed} rules {rules}"
            for track_id in runs:
                now = snapshot(db, track_id)
                if track_id in gone:
                    assert now == EMPTY, f"seed {seed}: {track_id} pruned but something stayed: {now}"
                else:
                    assert now == before[track_id], f"seed {seed}: kept {track_id} changed"
            # gc removes exactly what only the runs pruned now (and before) pointed at
            held_only = {k for k, who in holders.items() if who <= gone and k not in modelled}
            removed = set(done.garbage.hashes) if done.garbage is not None else set()
            assert removed == held_only - freed, f"seed {seed} rules {rules}: gc"
            assert (done.garbage is None) == (not want), f"seed {seed}: gc runs after a deletion only"
            assert dry.stored_bytes == sum(sizes[k] for k in held_only - freed), f"seed {seed}: dry run's bytes"
            freed = held_only
            reader = Reader(db)
            for key in holders:
                kept = key in set(reader.assets.keys()) or key in set(reader.artifacts()["hash"])
                assert kept == (key not in freed), f"seed {seed}: {key}"
        if not db.startswith("postgresql://"):
            assert sql(db, "PRAGMA integrity_check") == [("ok",)]
    finally:
        stop(child)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_prune_keeps_exactly_what_the_rules_keep(db, seed):
    check_prune(db, seed)


@pytest.mark.parametrize("seed", [4])
def test_prune_on_postgres(pg_url, seed):
    check_prune(pg_url, seed, count=10)


def test_models_runs_stay_unless_forced_and_bad_rules_are_one_clear_error(engine_db):
    for i, status in enumerate(["failed", "failed", "finished"]):
        with Tracker(engine_db, track_id=f"r{i}") as t:
            t.log({"acc": 0.1 * i})
            if i == 0:
                t.register_model("iris", Model(1))
        sql(engine_db, 'UPDATE xetrack_runs SET "status" = ? WHERE "track_id" = ?', (status, f"r{i}"))
    reader = Reader(engine_db)
    done = reader.prune(status="failed")
    assert done.track_ids == ["r1"] and done.protected == ["r0"]
    assert Reader(engine_db).prune(status="failed", force=True).track_ids == ["r0"]
    assert Reader(engine_db).models()["track_id"].tolist() == ["r0"]  # the version stays
    assert Reader(engine_db).load_model("iris").w == 1
    for rules, match in [
        ({}, "Nothing to prune by"),
        ({"keep_tags": {"a": "b"}, "force": True}, "Nothing to prune by"),
        ({"older_than": "30 days"}, "duration such as 30d"),
        ({"older_than": "0d"}, "positive"),
        ({"status": "faild"}, "Unknown status 'faild'. Did you mean: failed"),
        ({"keep_best": 2}, "keep_best needs by"),
        ({"keep_best": 0, "by": "acc"}, "1 or more"),
        ({"keep_best": 1, "by": "acc", "mode": "best"}, "mode must be"),
        ({"keep_best": 1, "by": "acx"}, "Did you mean: acc"),
        ({"keep_best": 1, "by": "track_id"}, "no number in any run"),
        ({"status": "failed", "keep_tags": ["team"]}, "KEY=VALUE"),
        ({"status": "failed", "dry_run": True, "vacuum": True}, "nothing to vacuum"),
    ]:
        with pytest.raises((ValueError, KeyError), match=match):
            Reader(engine_db).prune(**rules)
    assert set(Reader(engine_db).runs()["track_id"]) == {"r2"}


def test_delete_run_is_one_transaction_with_its_side_rows(engine_db):
    with Tracker(engine_db, track_id="gone", run_name="x") as t:
        t.log({"a": 1})
        t.set_tag("k", "v")
        t.log_predictions([1.0], [1.0], ["mae"])
        t.log_artifact(b"bytes", name="f")
    Tracker(engine_db, track_id="kept").log({"a": 2})
    assert Reader(engine_db).delete_run("gone") == 2
    assert side_counts(engine_db, "gone") == dict.fromkeys(SIDES, 0)
    assert Reader(engine_db).delete_run("gone") == 0
    with pytest.raises(TypeError, match="track_id must be a str"):
        Reader(engine_db).delete_run(3)
    with pytest.raises(ValueError, match="Table 'nope' not found"):
        Reader(engine_db, table="nope").delete_run("kept")


KILLED = """
import sys
from xetrack import Reader
print("go", flush=True)
Reader(sys.argv[1]).prune(status="failed")
print("done", flush=True)
"""


def whole_or_gone(db, before):
    """Each run is as it was, or nothing of it is left."""
    counts = {"whole": 0, "gone": 0}
    for track_id, was in before.items():
        now = snapshot(db, track_id)
        if now == was:
            counts["whole"] += 1
        else:
            assert now == EMPTY, f"{track_id} half pruned: {now}"
            counts["gone"] += 1
    return counts


@pytest.mark.parametrize("seed", [11, 14])
def test_a_prune_killed_midway_leaves_every_run_whole_or_gone(db, seed):
    rng = random.Random(seed)
    count, rows = 60, 2000  # runs long enough to delete that the kill lands inside some
    for i in range(count):
        with Tracker(db, track_id=f"run-{i:03d}", run_name=f"n{i}") as t:
            t.log_batch([{"x": j} for j in range(rows)])
            t.set_tag("k", str(i))
            t.log_predictions([1.0, 2.0], [1.0, 2.0], ["mae"])
            t.log_artifact(f"artifact {i}".encode(), name="a.txt")
        if i % 10:
            sql(db, 'UPDATE xetrack_runs SET "status" = ? WHERE "track_id" = ?', ("failed", f"run-{i:03d}"))
    before = {f"run-{i:03d}": snapshot(db, f"run-{i:03d}") for i in range(count)}
    target = count - rng.randint(2, 45)  # kill once that few runs are left
    child = subprocess.Popen([sys.executable, "-c", KILLED, db], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "go"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if Reader(db).tables()["runs"].iloc[0] <= target:
            break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    counts = whole_or_gone(db, {k: v for k, v in before.items() if int(k[-3:]) % 10})
    print(f"seed {seed}: killed with {counts} of the failed runs")
    assert counts["gone"] and counts["whole"], f"seed {seed}: the kill came before or after the prune: {counts}"
    assert whole_or_gone(db, {k: v for k, v in before.items() if not int(k[-3:]) % 10})["gone"] == 0
    assert sql(db, "PRAGMA integrity_check") == [("ok",)]
    Reader(db).prune(status="failed")  # a second prune finishes the job
    assert len(Reader(db).runs()) == count // 10


WRITER = """
import sys, time
from xetrack import Tracker
db, seconds, *ids = sys.argv[1:]
trackers = [Tracker(db, track_id=t) for t in ids]
print("writing", flush=True)
end, n = time.monotonic() + float(seconds), 0
while time.monotonic() < end:
    for t in trackers:
        t.log({"n": n, "writer": 1})
    n += 1
print(n, flush=True)
"""


def test_writers_during_a_prune_lose_nothing(db):
    for i in range(80):
        with Tracker(db, track_id=f"run-{i:02d}") as t:
            t.log_batch([{"x": j} for j in range(3)])
        if i >= 4:
            sql(db, 'UPDATE xetrack_runs SET "status" = ? WHERE "track_id" = ?', ("failed", f"run-{i:02d}"))
    kept = ["run-00", "run-01", "run-02"]
    resumed = "run-40"  # chosen as failed, and written again while the prune runs
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, db, "3", *kept, resumed], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "writing"
    done = Reader(db).prune(status="failed")
    logged = int(writer.stdout.readline())
    assert writer.wait(timeout=60) == 0
    frame = Reader(db).to_df()
    for track_id in kept:
        mine = frame[(frame["track_id"] == track_id) & frame["writer"].notna()]
        assert sorted(mine["n"].astype(int)) == list(range(logged)), track_id
        assert frame[frame["track_id"] == track_id]["writer"].isna().sum() == 3  # its own rows too
    ours = frame[frame["track_id"] == resumed]
    written = ours[ours["writer"].notna()]["n"].astype(int).tolist()
    old = len(ours) - len(written)
    assert old in (0, 3), f"half of {resumed} left: {old} of its 3 rows"
    assert written == list(range(logged - len(written), logged)), "rows written after the prune's decision were lost"
    if old == 3:  # left whole: it changed after it was chosen
        assert resumed in done.skipped and written == list(range(logged))
    assert set(done.track_ids) | set(done.skipped) == {f"run-{i:02d}" for i in range(4, 80)}


# -- the command line -------------------------------------------------------------
def failed_runs(db, n=3, size=40_000):
    for i in range(n):
        with Tracker(db, track_id=f"bad-{i}") as t:
            t.log_batch([{"x": j, "note": "x" * 200} for j in range(199)] + [{"acc": 0.1 * i}])
            t.log_artifact(os.urandom(size), name="weights.bin")
        sql(db, 'UPDATE xetrack_runs SET "status" = ? WHERE "track_id" = ?', ("failed", f"bad-{i}"))
    with Tracker(db, track_id="good") as t:
        t.log_batch([{"x": j, "note": "y" * 200} for j in range(199)] + [{"acc": 0.05}])
        t.log_artifact(os.urandom(size), name="weights.bin")


def xt_at_a_terminal(*args):
    """Run xt with its stdin a terminal (a pseudo-terminal), stdout captured."""
    main, other = pty.openpty()
    try:
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
        out = subprocess.run([XT, *args], stdin=other, capture_output=True, text=True, env=env, timeout=120)
    finally:
        os.close(main)
        os.close(other)
    return out


def test_the_dry_run_decision():
    assert is_dry_run(dry_run=False, yes=False, interactive=True) == (True, True)
    assert is_dry_run(dry_run=False, yes=True, interactive=True) == (False, False)
    assert is_dry_run(dry_run=False, yes=False, interactive=False) == (False, False)
    assert is_dry_run(dry_run=True, yes=True, interactive=False) == (True, False)


def test_xt_prune_at_a_terminal_is_a_dry_run_until_yes(db):
    failed_runs(db)
    out = xt_at_a_terminal("prune", db, "--status", "failed")
    assert out.returncode == 0, out.stderr
    assert "would prune 3 runs (600 rows)" in out.stdout and "| track_id" in out.stdout and "| why" in out.stdout
    assert out.stdout.strip().endswith("To prune, run again with --yes.")
    assert len(Reader(db).runs()) == 4
    out = xt_at_a_terminal("prune", db, "--status", "failed", "--yes")
    assert out.returncode == 0 and "pruned 3 runs (600 rows)" in out.stdout, out.stderr
    assert "gc removed 0 assets and 3 artifacts: 120,000 bytes" in out.stdout
    assert Reader(db).runs()["track_id"].tolist() == ["good"]


def test_xt_prune_in_a_script_prunes_and_says_so_in_json(db):
    failed_runs(db)
    fails("prune", db, match="Nothing to prune by: give --older-than, --status or --keep-best")
    fails("prune", db, "--keep-best", "1", "--by", "x", match="add --min or --max")
    fails("prune", db, "--status", "fail", match="Unknown status 'fail'. Did you mean: failed")
    fails("prune", db, "--older-than", "soon", match="duration such as 30d")
    fails("prune", db, "--status", "failed", "--table", "nope", match="Table 'nope' not found")
    dry = json.loads(ok("prune", db, "--status", "failed", "--dry-run", "--json"))
    assert dry[0]["dry_run"] and sorted(dry[0]["track_ids"]) == ["bad-0", "bad-1", "bad-2"]
    assert [r["why"] for r in dry[0]["runs"]] == ["status failed"] * 3 and dry[0]["stored_bytes"] == 120_000
    assert len(Reader(db).runs()) == 4
    done = json.loads(ok("prune", db, "--status", "failed", "--keep-best", "1", "--by", "acc", "--max", "--json"))
    assert not done[0]["dry_run"] and done[0]["rows"] == 400 and done[0]["gc"]["artifacts"] == 2
    assert sorted(done[0]["track_ids"]) == ["bad-0", "bad-1"]  # bad-2 has the best acc
    out = ok("prune", db, "--keep-best", "1", "--by", "acc", "--min")
    assert "pruned 1 run (200 rows)" in out and "not among the 1 best by acc (min)" in out
    assert Reader(db).runs()["track_id"].tolist() == ["good"]
    assert "no run to prune" in ok("prune", db, "--status", "failed")
    for table in ("a", "b"):  # --table, repeated: each table by the same rules
        with Tracker(db, table=table, track_id=f"{table}-failed") as t:
            t.log({"x": 1})
        sql(db, 'UPDATE xetrack_runs SET "status" = ? WHERE "track_id" = ?', ("failed", f"{table}-failed"))
        Tracker(db, table=table, track_id=f"{table}-kept").log({"x": 2})
    out = json.loads(ok("prune", db, "--status", "failed", "--table", "a", "--table", "b", "--json"))
    assert [(o["table"], o["track_ids"]) for o in out] == [("a", ["a-failed"]), ("b", ["b-failed"])]
    assert [Reader(db, table=t).runs()["track_id"].tolist() for t in "ab"] == [["a-kept"], ["b-kept"]]


def test_xt_du_adds_up_and_prune_frees_what_it_said(db):
    failed_runs(db, n=6, size=120_000)
    Reader(db).gc(vacuum=True)  # a compact file to start from
    before = fingerprint(db)
    du = json.loads(ok("du", db, "--json"))
    text = ok("du", db, "--top", "2")
    dry = json.loads(ok("prune", db, "--status", "failed", "--dry-run", "--json"))[0]
    assert fingerprint(db) == before  # du and a dry run leave the file exactly as it was
    size = os.path.getsize(db)
    assert du["exact"] and du["bytes"] == size
    listed = sum(t["row_bytes"] for t in du["tables"]) + sum(t["bytes"] for t in du["internal"])
    assert size - 4 * 4096 <= listed <= size  # every page but sqlite_schema's is some table's
    assert [r["track_id"] for r in du["runs"][:1]] and len(du["runs"]) == 7
    artifacts = next(s for s in du["stored"] if s["kind"] == "artifacts")
    assert artifacts["objects"] == 7 and artifacts["bytes"] == 7 * 120_000 and artifacts["references"] == 7
    assert all(r["own_bytes"] == 120_000 for r in du["runs"])
    assert du["reclaimable"]["unreferenced_bytes"] == 0
    assert sum(r["bytes"] for r in du["runs"]) <= size
    assert "| track_id" in text and "would give back about" in text and "from dbstat" in text
    predicted = dry["bytes"]
    du_said = sum(r["bytes"] for r in du["runs"] if r["track_id"].startswith("bad-"))
    assert abs(predicted - du_said) <= 0.02 * du_said
    json.loads(ok("prune", db, "--status", "failed", "--vacuum", "--json"))
    shrunk = size - os.path.getsize(db)
    print(f"predicted {predicted:,}, the file shrank {shrunk:,}")
    assert abs(shrunk - predicted) <= 0.1 * predicted + 8 * 4096, (predicted, shrunk)
    assert sql(db, "PRAGMA integrity_check") == [("ok",)]


def test_xt_du_counts_keys_past_the_columns_in_their_runs_rows(db):
    wide = Tracker(db, track_id="wide")
    for step in range(20):
        wide.log({"step": step, **{f"class_{i}_f1": step + i / 3000 for i in range(2500)}})
    narrow = Tracker(db, track_id="narrow")
    for step in range(20):
        narrow.log({"step": step, "class_0_f1": 0.5})
    assert Reader(db).store.spilled("default")
    du = json.loads(ok("du", db, "--json"))
    runs = {r["track_id"]: r for r in du["runs"]}
    spill_pages = sql(db, "SELECT sum(pgsize) FROM dbstat WHERE name = 'xetrack_spill'")[0][0]
    table_pages = sql(db, "SELECT sum(pgsize) FROM dbstat WHERE name = 'default'")[0][0]
    assert runs["wide"]["row_bytes"] > spill_pages and runs["narrow"]["row_bytes"] < 0.1 * spill_pages
    table = next(t for t in du["tables"] if t["table"] == "default")
    assert table["row_bytes"] >= table_pages + spill_pages
    assert "xetrack_spill" not in {t["table"] for t in du["internal"]}  # counted once, in its table
    listed = sum(t["row_bytes"] for t in du["tables"]) + sum(t["bytes"] for t in du["internal"])
    assert listed <= du["bytes"]
    size = os.path.getsize(db)
    reader = Reader(db)
    assert reader.delete_run("wide") == 20
    reader.gc(vacuum=True)
    shrunk = size - os.path.getsize(db)
    assert abs(shrunk - runs["wide"]["bytes"]) <= 0.1 * runs["wide"]["bytes"], (shrunk, runs["wide"])


def test_xt_du_on_postgres(pg_url):
    failed_runs(pg_url, n=2, size=10_000)
    du = json.loads(ok("du", pg_url, "--json"))
    assert du["dialect"] == "postgres" and du["exact"]
    assert sum(t["row_bytes"] for t in du["tables"]) + sum(t["bytes"] for t in du["internal"]) <= du["bytes"]
    assert next(s for s in du["stored"] if s["kind"] == "artifacts")["bytes"] == 30_000
    assert {r["own_bytes"] for r in du["runs"]} == {10_000}
    dry = json.loads(ok("prune", pg_url, "--status", "failed", "--dry-run", "--json"))[0]
    assert sorted(dry["track_ids"]) == ["bad-0", "bad-1"] and dry["stored_bytes"] == 20_000
    assert sorted(Reader(pg_url).runs()["track_id"]) == ["bad-0", "bad-1", "good"]


def test_objects_under_spilled_keys_belong_to_their_runs(db):
    """An object logged under a key past the table's columns: du counts it as its run's own,
    gc keeps it, and the dry run of a prune of that run says it would be freed."""
    Tracker(db, track_id="wide").log({**{f"k{i}": i for i in range(2100)}, "late_model": Model(list(range(500)))})
    Tracker(db, track_id="other").log({"k0": 1})
    assert "late_model" in Reader(db).store.spilled("default")
    du = json.loads(ok("du", db, "--json"))
    runs = {r["track_id"]: r for r in du["runs"]}
    assert du["reclaimable"]["unreferenced_bytes"] == 0 and runs["wide"]["own_bytes"] > 1000
    assert Reader(db).gc(dry_run=True).bytes == 0
    dry = Reader(db).prune(keep_best=1, by="k0", mode="max", dry_run=True)
    assert dry.track_ids == ["wide"] and dry.stored_bytes == runs["wide"]["own_bytes"]


def test_rows_without_a_run_are_not_a_run_to_prune(db):
    failed_runs(db, n=1, size=10)
    sql(db, 'INSERT INTO "default" ("timestamp", "acc") VALUES (?, ?)', ("2020-01-01 00:00:00", 0.99))
    out = json.loads(ok("prune", db, "--keep-best", "1", "--by", "acc", "--max", "--dry-run", "--json"))[0]
    assert out["track_ids"] == ["bad-0"]  # the best run by acc is "good": the row without a run is none
    ok("prune", db, "--keep-best", "1", "--by", "acc", "--max", "--yes")
    assert sql(db, 'SELECT count(*) FROM "default" WHERE "track_id" IS NULL') == [(1,)]


def test_vacuum_comes_once_when_any_table_lost_runs(db):
    failed_runs(db, n=3, size=100_000)
    Tracker(db, table="other", track_id="fine").log({"acc": 1.0})
    size = os.path.getsize(db)
    out = ok("prune", db, "-t", "default", "-t", "other", "--status", "failed", "--vacuum", "--yes")
    assert os.path.getsize(db) < size - 250_000, out
    assert "smaller" in out


def test_a_table_named_in_another_case_loses_its_side_rows_too(db):
    with Tracker(db, table="Exp", track_id="r1") as t:
        t.log({"acc": 0.5})
        t.set_tags({"team": "a"})
    assert Reader(db, table="exp").delete_run("r1") == 1
    assert sql(db, 'SELECT count(*) FROM xetrack_runs WHERE "track_id" = ?', ("r1",)) == [(0,)]
    assert sql(db, 'SELECT count(*) FROM xetrack_tags WHERE "track_id" = ?', ("r1",)) == [(0,)]
