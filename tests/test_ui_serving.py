"""The dashboard as a server many requests use at once: Readers lent per request, the
per-process cache that a new Reader of an unchanged file finds, bounds on what one
request may cost, and a file deleted, replaced, cut short or damaged while served."""

import os
import random
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import warnings

import pytest

pytest.importorskip("starlette", reason="the ui extra: pip install 'xetrack[ui]'")
httpx = pytest.importorskip("httpx", reason="httpx: pip install 'xetrack[dev]'")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from xetrack import Reader, Tracker, summary  # noqa: E402
from xetrack.store.sqlite import run_sql  # noqa: E402
from xetrack.ui import serve_in_thread  # noqa: E402
from xetrack.ui.app import create_app  # noqa: E402
from xetrack.ui.source import MAX_READERS  # noqa: E402


def make_runs(db, runs=6, steps=5, model="rf"):
    ids = []
    for k in range(runs):
        with Tracker(db, params={"model": model, "seed": k}) as t:
            for s in range(steps):
                t.log({"step": s, "loss": 1.0 / (s + 1 + k)})
            ids.append(t.track_id)
    return ids


def tables_of(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')"))
    finally:
        conn.close()


def client_of(db, opened=None):
    def open_reader(table):
        if opened is not None:
            opened.append(table)
        return Reader(db, table=table, persist_summary=False)

    return TestClient(create_app(open_reader))


def served_whole(db, runs, steps):
    """A file of ``runs`` runs with its WAL moved into it (the file alone holds every
    page), served and answered once: (its client, its size)."""
    make_runs(db, runs=runs, steps=steps)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    c = client_of(db)
    assert c.get("/api/runs").status_code == 200
    return c, os.path.getsize(db)


# ------------------------------------------------------------ the cache a new Reader finds
def test_a_new_reader_of_an_unchanged_file_answers_from_the_cache(tmp_path, monkeypatch):
    db = str(tmp_path / "cache.db")
    make_runs(db)
    selects = []
    real = run_sql.runs_rows
    monkeypatch.setattr(run_sql, "runs_rows", lambda *a: selects.append(1) or real(*a))
    first = Reader(db, persist_summary=False).runs()
    assert len(selects) == 1
    for _ in range(3):  # a notebook cell or an `xt` call each: a new Reader, a new connection
        again = Reader(db, persist_summary=False).runs()
        assert again.equals(first)
    assert len(selects) == 1, "a new Reader of the unchanged file ran the runs query again"
    with Tracker(db, params={"model": "nn", "seed": 99}) as t:
        t.log({"step": 0, "loss": 0.5})
    fresh = Reader(db, persist_summary=False).runs()
    assert len(selects) == 2 and len(fresh) == len(first) + 1 and t.track_id in set(fresh["track_id"])


def test_search_of_a_new_reader_reads_the_copy_and_follows_a_change(tmp_path):
    db = str(tmp_path / "search.db")
    make_runs(db, runs=8)
    expected = Reader(db, persist_summary=False).search("params.seed >= 4", order_by="-loss")
    for _ in range(2):
        got = Reader(db, persist_summary=False).search("params.seed >= 4", order_by="-loss")
        assert got.equals(expected)
    Tracker(db, params={"model": "rf", "seed": 50}).log({"step": 0, "loss": 9.0})
    got = Reader(db, persist_summary=False).search("params.seed >= 4", order_by="-loss")
    assert len(got) == len(expected) + 1 and got["loss"].iloc[0] == 9.0


def test_a_cached_running_run_turns_dead_when_its_process_dies(tmp_path):
    """No write marks a killed run: the cache must still not hide its death."""
    db = str(tmp_path / "dead.db")
    make_runs(db, runs=2)
    script = textwrap.dedent(
        f"""
        import sys, time
        from xetrack import Tracker
        t = Tracker({db!r}, params={{"model": "live"}}, track_id="live-run").start()
        t.log({{"step": 0, "loss": 1.0}})
        print("ready", flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)  # a child that never starts fails, not hangs
        assert ready and proc.stdout.readline().strip() == "ready"
        status = lambda: Reader(db, persist_summary=False).runs().set_index("track_id").loc["live-run", "status"]  # noqa: E731
        assert status() == "running"
        assert status() == "running"  # from the cache now
        searched = Reader(db, persist_summary=False).search("params.model = 'live'")
        assert list(searched["status"]) == ["running"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert status() == "dead"
    assert list(Reader(db, persist_summary=False).search("params.model = 'live'")["status"]) == ["dead"]


def test_new_trackers_of_existing_runs_patch_the_summary_instead_of_rebuilding_it(tmp_path, monkeypatch):
    """10 Trackers reopen existing runs with their params and log a row each: the next
    runs() recomputes those runs only, and equals a recomputation from scratch."""
    from xetrack import run_queries

    db = str(tmp_path / "patch.db")
    ids = make_runs(db, runs=30)
    reader = Reader(db)
    reader.runs()  # a process's first call answers with the plain SQL
    with Tracker(db, params={"model": "nn", "seed": 0}) as t:
        t.log({"step": 0, "loss": 1.0})
    reader.runs()  # the second call, on a changed file, builds the file's summary
    patched = []
    real = run_queries.RunQueries._patched
    monkeypatch.setattr(
        run_queries.RunQueries, "_patched", lambda self, *a: patched.append(real(self, *a)) or patched[-1]
    )
    for k, track_id in enumerate(ids[:10]):  # each records its keys' roles again: no change
        t = Tracker(db, track_id=track_id, params={"model": "rf", "seed": k})
        t.log({"step": 99, "loss": 0.01})
        t.close()
    got = reader.runs()
    assert patched and patched[-1] is not None, "the whole summary was recomputed"
    summary._FRAMES.clear()
    monkeypatch.setattr(summary, "ENABLED", False)
    assert got.equals(Reader(db).runs())


@pytest.mark.parametrize("seed", range(4))
def test_cached_answers_equal_a_recomputation_under_random_changes(tmp_path, seed):
    """Seeded mixes of logs, new runs, set_value, delete_run, checkpoints and Readers
    opened and closed: after each step, what a new Reader answers from the cache equals
    what it answers with the cache emptied."""
    rnd = random.Random(seed)
    db = str(tmp_path / f"mix{seed}.db")
    ids = make_runs(db, runs=4, steps=3)
    for step in range(25):
        op = rnd.choice(["log", "new", "set", "delete", "checkpoint", "reader", "nothing"])
        if op == "log" and ids:
            with Tracker(db, track_id=rnd.choice(ids), params={"model": "rf"}) as t:
                t.log({"step": rnd.randint(0, 9), "loss": rnd.random()})
        elif op == "new":
            with Tracker(db, params={"model": rnd.choice(["rf", "nn"]), "seed": rnd.randint(0, 5)}) as t:
                t.log({"step": 0, "loss": rnd.random(), rnd.choice(["acc", "f1"]): rnd.random()})
                ids.append(t.track_id)
        elif op == "set" and ids:
            Reader(db).set_value("loss", rnd.random(), track_id=rnd.choice(ids))
        elif op == "delete" and len(ids) > 1:
            Reader(db).delete_run(ids.pop(rnd.randrange(len(ids))))
        elif op == "checkpoint":
            conn = sqlite3.connect(db)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        elif op == "reader":
            Reader(db, persist_summary=False).to_df()
        where = rnd.choice([None, "params.model = 'rf'", "metrics.loss < 0.5"])
        cached_runs = Reader(db, persist_summary=False).runs()
        cached_search = Reader(db, persist_summary=False).search(where, order_by="-loss")
        summary._FRAMES.clear()
        fresh_runs = Reader(db, persist_summary=False).runs()
        summary._FRAMES.clear()
        fresh_search = Reader(db, persist_summary=False).search(where, order_by="-loss")
        assert cached_runs.equals(fresh_runs), f"seed {seed}, step {step} ({op}): runs() differs from a recomputation"
        assert cached_search.equals(fresh_search), f"seed {seed}, step {step} ({op}): search() differs"


# ---------------------------------------------------------------------- concurrency
def test_parallel_requests_with_a_writer_all_answer_right_and_leave_the_file_alone(tmp_path):
    db = str(tmp_path / "busy.db")
    make_runs(db, runs=20)
    before = tables_of(db)
    opened = []

    def open_reader(table):
        opened.append(table)
        return Reader(db, table=table, persist_summary=False)

    dashboard = serve_in_thread(open_reader, port=0)
    base = dashboard.url.split("/runs")[0]
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from xetrack import Tracker
                for k in range(15):
                    with Tracker({db!r}, params={{"model": "writer", "seed": 100 + k}}) as t:
                        for s in range(5):
                            t.log({{"step": s, "loss": 0.1 * s}})
                """
            ),
        ]
    )
    answers, problems = [], []

    def ask(i):
        try:
            with httpx.Client(base_url=base, timeout=60) as c:
                path = ["/api/runs", "/api/columns", "/api/tables", "/api/models"][i % 4]
                params = {"filter": "params.model = 'rf'", "sort": "-loss"} if path == "/api/runs" else {}
                r = c.get(path, params=params)
                answers.append((path, r.status_code, r.json()))
        except Exception as exc:  # noqa: BLE001 - reported below
            problems.append(repr(exc))

    try:
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        writer.wait(timeout=120)
    finally:
        dashboard.stop()
    assert problems == [] and len(answers) == 48
    assert all(status == 200 for _, status, _ in answers), [a for a in answers if a[1] != 200][:3]
    for path, _, body in answers:
        if path == "/api/runs":  # the filtered runs are the 20 of the fixture, whatever the writer did
            assert body["total"] == 20
    assert writer.returncode == 0
    assert len(opened) <= MAX_READERS + 1, f"{len(opened)} Readers opened"
    assert tables_of(db) == before  # the dashboard wrote nothing: no summary, no trigger
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(DISTINCT track_id) FROM [default]").fetchone()[0] == 35
    conn.close()


# ------------------------------------------------------------------------- bounds
def test_what_one_request_may_cost_is_bounded(tmp_path):
    db = str(tmp_path / "bounds.db")
    ids = make_runs(db, runs=3)
    c = client_of(db)
    many = c.get("/api/curve.csv", params=[("metric", "loss")] + [("run", f"r{i}") for i in range(60)])
    assert many.status_code == 413 and "At most 50 runs" in many.json()["error"]
    same = c.get("/api/curve.csv", params=[("metric", "loss")] + [("run", ids[0])] * 4)
    lines = same.text.strip().splitlines()
    assert same.status_code == 200 and len(lines) == 1 + 5  # a run asked 4 times is written once
    compare = c.get("/api/compare", params=[("run", f"r{i}") for i in range(101)])
    assert compare.status_code == 413 and "At most 100 runs" in compare.json()["error"]


def test_a_csv_past_its_points_bound_is_refused_before_it_is_built(tmp_path, monkeypatch):
    from xetrack.ui import data

    db = str(tmp_path / "points.db")
    ids = make_runs(db, runs=3, steps=40)
    monkeypatch.setattr(data, "MAX_CSV_POINTS", 100)
    c = client_of(db)
    refused = c.get("/api/curve.csv", params=[("metric", "loss")] + [("run", i) for i in ids])
    assert refused.status_code == 413 and "120 points" in refused.json()["error"]
    fine = c.get("/api/curve.csv", params=[("metric", "loss"), ("run", ids[0]), ("run", ids[1])])
    assert fine.status_code == 200 and len(fine.text.strip().splitlines()) == 81


# -------------------------------------------------------------- the file under it
def test_a_deleted_file_is_noticed_and_named(tmp_path):
    db = str(tmp_path / "gone.db")
    make_runs(db, runs=2)
    c = client_of(db)
    assert c.get("/api/runs").status_code == 200
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    r = c.get("/api/runs")
    assert r.status_code == 410 and "gone.db" in r.json()["error"] and "deleted or moved" in r.json()["error"]


def test_a_replaced_file_is_served_as_it_is_now(tmp_path):
    db, other = str(tmp_path / "exp.db"), str(tmp_path / "new.db")
    make_runs(db, runs=2, model="old")
    c = client_of(db)
    assert c.get("/api/runs").json()["total"] == 2
    make_runs(other, runs=5, model="new")
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("", "-wal", "-shm"):  # a script that deletes exp.db and makes it anew
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    os.replace(other, db)
    body = c.get("/api/runs", params={"filter": "params.model = 'new'"}).json()
    assert body["total"] == 5


def test_a_truncated_file_is_named_and_left_as_it_is(tmp_path):
    db = str(tmp_path / "cut.db")
    c, size = served_whole(db, runs=40, steps=20)
    with open(db, "r+b") as handle:
        handle.truncate(size // 2)
    r = c.get("/api/runs")
    assert r.status_code == 500 and "cut.db" in r.json()["error"] and "truncated" in r.json()["error"]
    assert os.path.getsize(db) == size // 2


def test_a_damaged_page_is_answered_with_a_message_that_names_the_file(tmp_path):
    db = str(tmp_path / "damaged.db")
    make_runs(db, runs=60, steps=30)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    shutil.copy(db, db + ".orig")
    with open(db, "r+b") as handle:  # garbage over every page but the first: its header stays
        handle.seek(page)
        handle.write(b"\xa5" * page * (pages - 1))
    summary._FRAMES.clear()
    client = client_of(db)  # opening reads the schema only, in the first page
    r = client.get("/api/runs")
    assert r.status_code == 500, r.text
    message = r.json()["error"]
    assert "damaged.db" in message and "damaged" in message


def test_the_server_gets_faster_requests_than_a_lock_allowed(tmp_path):
    """Requests of several threads overlap: a slow one does not hold the others."""
    db = str(tmp_path / "overlap.db")
    make_runs(db, runs=4)
    dashboard = serve_in_thread(lambda table: Reader(db, table=table, persist_summary=False), port=0)
    base = dashboard.url.split("/runs")[0]
    started = threading.Event()
    gate = threading.Event()
    from xetrack import reader as reader_module

    real = reader_module.Reader.models

    def slow_models(self):
        started.set()
        gate.wait(20)
        return real(self)

    reader_module.Reader.models = slow_models
    try:
        slow = threading.Thread(target=lambda: httpx.get(base + "/api/models", timeout=60))
        slow.start()
        assert started.wait(20)
        t0 = time.perf_counter()
        assert httpx.get(base + "/api/runs", timeout=60).status_code == 200  # answered while /api/models waits
        took = time.perf_counter() - t0
        gate.set()
        slow.join(30)
    finally:
        reader_module.Reader.models = real
        gate.set()
        dashboard.stop()
    assert took < 15, took


def test_a_file_seen_while_it_grows_is_not_called_truncated(tmp_path):
    """SQLite grows a file by writing page 1 (which holds the new size) first: a request
    that looks in between sees a file shorter than its header says, for a moment."""
    db = str(tmp_path / "growing.db")
    c, size = served_whole(db, runs=5, steps=5)
    with open(db, "r+b") as handle:  # the header now claims two more pages than the file holds
        head = bytearray(handle.read(100))
        page = int.from_bytes(head[16:18], "big")
        pages = int.from_bytes(head[28:32], "big") + 2
        head[28:32] = pages.to_bytes(4, "big")
        handle.seek(0)
        handle.write(head)

    def grow():
        time.sleep(0.03)
        with open(db, "r+b") as handle:
            handle.truncate(page * pages)  # the writer's next pages land

    writer = threading.Thread(target=grow)
    writer.start()
    answer = c.get("/api/runs")
    writer.join()
    assert answer.status_code == 200, answer.text
    assert os.path.getsize(db) == size + 2 * page


def test_a_zoom_past_the_numbers_bound_is_a_400(tmp_path):
    db = str(tmp_path / "zoom.db")
    ids = make_runs(db, runs=1, steps=5)
    zoom = {"run": ids[0], "metric": "loss", "xmin": "-1e306", "xmax": "1e306"}
    answer = client_of(db).get("/api/curve", params=zoom)
    assert answer.status_code == 400 and answer.json()["error"].startswith("xmin")


def test_a_stopped_dashboard_leaves_no_thread_and_shows_as_a_link(tmp_path):
    db = str(tmp_path / "stop.db")
    make_runs(db, runs=2, steps=2)
    before = set(threading.enumerate())
    dashboard = serve_in_thread(lambda table: Reader(db, table=table, persist_summary=False), port=0)
    html = dashboard._repr_html_()
    assert "<a href=" in html and "iframe" not in html  # the dashboard refuses to be framed
    with urllib.request.urlopen(dashboard.url.replace("/runs?", "/api/runs?"), timeout=30) as answer:
        assert answer.status == 200
    mine = [t for t in threading.enumerate() if t not in before]
    assert {t.name for t in mine} >= {"xetrack-ui", "xetrack-ui-warm"}
    dashboard.stop()
    for thread in mine:
        thread.join(timeout=10)
    assert not [t.name for t in mine if t.is_alive() and t.name.startswith("xetrack-ui")]
