"""Several processes on one file, and writers killed mid-stream.

Every worker runs in a fresh interpreter (multiprocessing 'spawn', or a subprocess
started with ``sys.executable``), so nothing is shared with the parent but the file.
Workers report back through a queue or their stdout; an exception inside a worker
is sent back as its traceback and fails the test with it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback

import pandas as pd
import pytest

import xetrack
from xetrack import Reader, Tracker

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
SPAWN = mp.get_context("spawn")
N_PROCS = 4
WAIT = 60  # seconds: generous limits, only reached when something hangs

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and /proc")


@pytest.fixture(autouse=True)
def _pandas_frames():
    """These tests read pandas frames, whatever backend an earlier test left set."""
    previous = xetrack.get_backend()
    xetrack.set_backend("pandas")
    yield
    xetrack.set_backend(previous)


# -- helpers -----------------------------------------------------------------------
def _integrity(db: str) -> list:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=WAIT)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


def _read(db: str, engine: str = "sqlite") -> pd.DataFrame:
    reader = Reader(db, engine=engine)
    try:
        return reader.to_df()
    finally:
        reader.close()


def _run_workers(target, args_list, timeout: float = WAIT) -> dict:
    """Start one spawned process per args tuple (each gets a result queue last);
    return ``{k: payload}``; fail with the traceback of any worker that raised."""
    results_q = SPAWN.Queue()
    procs = [SPAWN.Process(target=target, args=(*args, results_q), daemon=True) for args in args_list]
    for p in procs:
        p.start()
    results: dict = {}
    deadline = time.monotonic() + timeout
    try:
        while len(results) < len(procs) and time.monotonic() < deadline:
            try:
                k, status, payload = results_q.get(timeout=0.5)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    try:  # a last result may still be in the pipe
                        k, status, payload = results_q.get(timeout=1)
                    except queue.Empty:
                        break
                else:
                    continue
            results[k] = (status, payload)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
    errors = {k: payload for k, (status, payload) in results.items() if status != "ok"}
    assert not errors, "worker(s) raised:\n" + "\n".join(f"--- worker {k}\n{tb}" for k, tb in errors.items())
    assert len(results) == len(procs), (
        f"only {len(results)} of {len(procs)} workers reported; exit codes {[p.exitcode for p in procs]}"
    )
    return {k: payload for k, (_, payload) in results.items()}


def _report(results_q, k, fn):
    try:
        results_q.put((k, "ok", fn()))
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        results_q.put((k, "error", traceback.format_exc()))


def _deleted_fds(db: str) -> list[str]:
    """Open file descriptors of this process on ``db`` or its -wal/-shm that were unlinked."""
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        return []
    real = os.path.realpath(db)
    bad = []
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith(real) and target.endswith("(deleted)"):
            bad.append(target)
    return bad


# -- 1. many processes logging rows with their own new keys ------------------------
def _metric(k: int, i: int) -> float:
    return k * 1000 + i + 0.25


def _log_worker(db, k, engine, n_rows, barrier, results_q):
    def work():
        barrier.wait(timeout=WAIT)  # all open the fresh file at the same moment
        tracker = Tracker(db, params={"proc": k}, engine=engine)
        barrier.wait(timeout=WAIT)  # and all start logging together
        for i in range(n_rows):
            tracker.log(
                {
                    f"metric_{k}_{i % 5}": _metric(k, i),  # this process's own keys
                    f"late_{k}_{i // 100}": i,  # a new column of its own every 100 rows
                    f"common_{i // 125}": k,  # every process adds this one at about the same time
                    "shared": i,
                }
            )
            if engine == "duckdb" and i % 100 == 99:
                seen = len(tracker.to_df())  # a DuckDB read between the writes
                assert seen == i + 1, f"process {k} logged {i + 1} rows but reads {seen}"
        tracker.close()
        return tracker.track_id

    _report(results_q, k, work)


def _check_rows(df: pd.DataFrame, track_ids: dict, n_rows: int, value_columns) -> None:
    """Every run has exactly rows 0..n_rows-1 in order, each value in its own column."""
    counts = df.groupby("track_id").size().to_dict()
    assert counts == dict.fromkeys(track_ids.values(), n_rows), f"rows per run: {counts}"
    all_cols = {c for k in track_ids for c in value_columns(k, n_rows)}
    missing = sorted(all_cols - set(df.columns))
    assert not missing, f"columns missing: {missing}"
    for k, tid in track_ids.items():
        run = df[df["track_id"] == tid]
        assert run["shared"].tolist() == list(range(n_rows)), f"process {k}: rows missing or out of order"
        assert (run["proc"] == k).all(), f"process {k}: wrong proc param"
        assert run["timestamp"].is_monotonic_increasing and run["timestamp"].is_unique
        for col, expected in value_columns(k, n_rows).items():
            got = run[col]
            want_set = expected.notna().to_numpy()
            assert got[want_set].tolist() == expected[want_set].tolist(), f"process {k}: bad values in {col}"
            assert got[~want_set].isna().all(), f"process {k}: {col} filled where it was not logged"
        own = set(value_columns(k, n_rows))
        others = sorted(all_cols - own)
        assert run[others].isna().all().all(), f"process {k} has values in other processes' columns"


def _log_columns(k: int, n_rows: int) -> dict:
    i = pd.Series(range(n_rows))
    cols = {}
    for r in range(5):
        cols[f"metric_{k}_{r}"] = (k * 1000 + i + 0.25).where(i % 5 == r)
    for r in range((n_rows - 1) // 100 + 1):
        cols[f"late_{k}_{r}"] = i.astype("float").where(i // 100 == r)
    for r in range((n_rows - 1) // 125 + 1):
        cols[f"common_{r}"] = pd.Series([float(k)] * n_rows).where(i // 125 == r)
    return cols


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_parallel_log_adds_columns_without_losing_rows(tmp_path, engine):
    """N processes open one fresh file and log at once, each adding its own columns
    (and some every process adds at the same moment): every row, column and value
    arrives, and no worker sees 'database is locked' or 'duplicate column name'."""
    db = str(tmp_path / "parallel.db")
    n_rows = 500
    barrier = SPAWN.Barrier(N_PROCS)
    track_ids = _run_workers(_log_worker, [(db, k, engine, n_rows, barrier) for k in range(N_PROCS)])
    assert len(set(track_ids.values())) == N_PROCS
    assert _integrity(db) == [("ok",)]
    df = _read(db)
    assert len(df) == N_PROCS * n_rows
    _check_rows(df, track_ids, n_rows, _log_columns)


# -- 2. many processes with log_batch ----------------------------------------------
BATCH = 50
N_BATCHES = 11


def _batch_rows(k: int, b: int) -> list[dict]:
    first = b * BATCH
    if b % 2 == 0:  # same keys in every row: the fast path
        return [{f"bm_{k}_{b % 3}": _metric(k, i), f"cb_{b // 4}": k, "shared": i} for i in range(first, first + BATCH)]
    # rows with different keys, one of them new to this process in each batch
    return [
        {"shared": i, f"odd_{k}_{i % 3}": i, **({f"nb_{k}_{b}": _metric(k, i)} if i % 2 else {})}
        for i in range(first, first + BATCH)
    ]


def _batch_worker(db, k, engine, barrier, results_q):
    def work():
        barrier.wait(timeout=WAIT)
        tracker = Tracker(db, params={"proc": k}, engine=engine)
        barrier.wait(timeout=WAIT)
        for b in range(N_BATCHES):
            rows = _batch_rows(k, b)
            written = tracker.log_batch(rows)
            assert written == len(rows), f"log_batch returned {written} for {len(rows)} rows"
        tracker.close()
        return tracker.track_id

    _report(results_q, k, work)


def _batch_columns(k: int, n_rows: int) -> dict:
    # Build the expected wide frame row by row from the same generator the workers use.
    frame = pd.DataFrame([row for b in range(N_BATCHES) for row in _batch_rows(k, b)])
    return {c: frame[c].astype("float") for c in frame.columns if c != "shared"}


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_parallel_log_batch_adds_columns_without_losing_rows(tmp_path, engine):
    """log_batch from N processes at once, batches with shared keys and with mixed keys,
    each adding new columns: every batch arrives whole with the right values."""
    db = str(tmp_path / "batches.db")
    barrier = SPAWN.Barrier(N_PROCS)
    track_ids = _run_workers(_batch_worker, [(db, k, engine, barrier) for k in range(N_PROCS)])
    assert _integrity(db) == [("ok",)]
    df = _read(db)
    n_rows = N_BATCHES * BATCH
    assert n_rows >= 500
    assert len(df) == N_PROCS * n_rows
    _check_rows(df, track_ids, n_rows, _batch_columns)


# -- 3. a writer killed with SIGKILL ----------------------------------------------
KILL_BATCH = 300  # rows of ~8 KB: a batch outgrows SQLite's page cache and spills to the WAL


def _kill_writer_main(db: str, mode: str, track_id: str, hold_after: int) -> None:
    """Run in a subprocess. Prints ``ack <seq>`` after each log/log_batch returns.

    mode 'plain': known keys, killed at any moment. mode 'grow': every row adds a new
    column; mode 'batch': every batch adds a new column. In 'grow' and 'batch' the
    writer, once ``hold_after`` acks are out, prints ``hold <seq>`` from inside the
    open write transaction (after the ALTER TABLE, before COMMIT) and waits there to
    be killed. The hook is a trace callback installed on every sqlite3 connection the
    process opens; xetrack itself is not touched.
    """
    state = {"armed": False, "altered": False, "inserts": 0, "seq": None}

    def trace(statement: str) -> None:
        statement = statement.lstrip().upper()
        if statement.startswith("BEGIN"):
            state["altered"], state["inserts"] = False, 0
        elif statement.startswith("ALTER TABLE"):
            state["altered"] = True
        elif statement.startswith("INSERT") and state["armed"] and state["altered"]:
            state["inserts"] += 1
            # a single row: hold before it runs; a batch: after most rows are in
            if mode == "grow" or state["inserts"] == KILL_BATCH - 20:
                print(f"hold {state['seq']}", flush=True)
                time.sleep(WAIT)

    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(trace)
        return conn

    sqlite3.connect = connect
    tracker = Tracker(db, track_id=track_id)
    print("ready", flush=True)
    seq = 0
    while True:
        state["seq"] = seq
        state["armed"] = mode != "plain" and seq >= hold_after
        if state["armed"] and seq > hold_after + 2:
            raise SystemExit("the trace hook never caught a write transaction adding a column")
        if mode == "plain":
            tracker.log({"seq": seq, "value": seq * 0.5, "round": track_id})
        elif mode == "grow":
            tracker.log({"seq": seq, f"{track_id}_c{seq}": seq})
        else:
            blob = f"{seq:08d}" * 1000
            tracker.log_batch([{"seq": seq, "j": j, "blob": blob, f"{track_id}_b{seq}": j} for j in range(KILL_BATCH)])
        print(f"ack {seq}", flush=True)
        seq += 1


def _start_kill_writer(db: str, mode: str, track_id: str, hold_after: int):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_concurrency as t; "
        "t._kill_writer_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, TESTS_DIR, db, mode, track_id, str(hold_after)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def _kill_round(db: str, mode: str, track_id: str, min_acks: int) -> tuple[set, int | None]:
    """Run one writer, SIGKILL it, return (acknowledged seqs, seq held in its transaction)."""
    proc, lines = _start_kill_writer(db, mode, track_id, hold_after=min_acks)
    acked: set[int] = set()
    held = None
    deadline = time.monotonic() + WAIT
    try:
        while True:
            assert time.monotonic() < deadline, "writer did not reach the kill point in time"
            line = lines.get(timeout=WAIT)
            if line is None:
                proc.wait()
                pytest.fail(f"writer exited on its own ({proc.returncode}): {proc.stderr.read()}")
            word, _, arg = line.strip().partition(" ")
            if word == "ack":
                acked.add(int(arg))
            elif word == "hold":
                held = int(arg)
                break
            if mode == "plain" and len(acked) >= min_acks:
                time.sleep(random.uniform(0, 0.02))  # land anywhere in the loop
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=WAIT)
        assert proc.returncode == -signal.SIGKILL
        while (line := lines.get(timeout=WAIT)) is not None:  # acks still in the pipe
            word, _, arg = line.strip().partition(" ")
            if word == "ack":
                acked.add(int(arg))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return acked, held


def test_sigkill_mid_stream_loses_no_acknowledged_row(tmp_path):
    """Kill a writer 3 times (plain logging, in a transaction adding a column, in a
    spilled log_batch adding a column): the file stays intact, every acknowledged
    row is there, the in-flight row or batch is whole or absent, and a new Tracker
    keeps writing, new columns included."""
    db = str(tmp_path / "killed.db")
    Tracker(db).close()
    expected_after: dict[str, int] = {}
    rounds = [("plain", 200), ("grow", 120), ("batch", 3)]
    for r, (mode, min_acks) in enumerate(rounds):
        track_id = f"kill{r}_{mode}"
        acked, held = _kill_round(db, mode, track_id, min_acks)
        assert acked == set(range(len(acked))), "acks are not 0..n-1"
        assert len(acked) >= min_acks
        assert _integrity(db) == [("ok",)], f"after kill {r} ({mode})"

        df = _read(db)
        run = df[df["track_id"] == track_id]
        seqs = run["seq"].tolist()
        n_acked = len(acked)
        if mode == "plain":
            # every acknowledged row, plus at most the one in flight
            assert seqs in (list(range(n_acked)), list(range(n_acked + 1))), (
                f"{n_acked} rows acknowledged, table has seqs {seqs[:3]}...{seqs[-3:]} ({len(seqs)})"
            )
            assert run["value"].tolist() == [s * 0.5 for s in seqs]
        elif mode == "grow":
            assert held == n_acked, "the held row is the one after the last ack"
            assert seqs == list(range(n_acked)), "the uncommitted row must not be stored"
            for s in range(n_acked):
                assert run[f"{track_id}_c{s}"].notna().sum() == 1
            assert f"{track_id}_c{held}" not in df.columns, "a column of the killed transaction survived"
        else:
            assert held == n_acked
            per_batch = run.groupby("seq").size().to_dict()
            assert per_batch == dict.fromkeys(range(n_acked), KILL_BATCH), (
                f"acked {n_acked} batches of {KILL_BATCH}; stored {per_batch}"
            )
            assert (run["blob"] == run["seq"].map(lambda s: f"{s:08d}" * 1000)).all()
            assert f"{track_id}_b{held}" not in df.columns, "a column of the killed batch survived"

        # the file keeps taking writes, new columns included
        after = Tracker(db, track_id=f"after{r}")
        for i in range(20):
            after.log({"seq": i, f"after{r}_new_{i % 4}": i})
        after.log_batch([{"seq": 20 + i, f"after{r}_batch": i} for i in range(30)])
        after.close()
        expected_after[f"after{r}"] = 50
        assert _integrity(db) == [("ok",)]

    counts = _read(db).groupby("track_id").size().to_dict()
    for tid, n in expected_after.items():
        assert counts.get(tid) == n, f"rows of {tid}: {counts.get(tid)}"


# -- 4. a reader sees whole batches only ------------------------------------------
READ_BATCH = 100


def _batch_writer(db, started, stop, max_batches, results_q):
    def work():
        tracker = Tracker(db)
        written = 0
        for b in range(max_batches):
            if stop.is_set():
                break
            rows = [
                {"batch": b, "n": READ_BATCH, "i": j, f"extra_{b // 4}": b}  # a new column every 4 batches
                for j in range(READ_BATCH)
            ]
            tracker.log_batch(rows)
            written += 1
            started.set()
            time.sleep(0.01)
        tracker.close()
        return written

    _report(results_q, 0, work)


@pytest.mark.parametrize("reader_engine", ["sqlite", "duckdb"])
def test_reader_sees_whole_batches_while_another_process_writes(tmp_path, reader_engine):
    """A Reader keeps reading while another process writes batches of 100 rows (new
    columns now and then): each read is a snapshot holding whole batches 0..m-1 only,
    with every column of a batch filled, and no read raises."""
    db = str(tmp_path / "snapshots.db")
    Tracker(db).log_batch([{"batch": -1, "n": 1, "i": 0}])  # the table exists before reads begin
    started, stop = SPAWN.Event(), SPAWN.Event()
    results_q = SPAWN.Queue()
    writer = SPAWN.Process(target=_batch_writer, args=(db, started, stop, 200, results_q), daemon=True)
    writer.start()
    totals = []
    long_lived = Reader(db, engine=reader_engine)
    try:
        assert started.wait(WAIT), "writer never wrote"
        deadline = time.monotonic() + 20
        while writer.is_alive() and len(totals) < 50 and time.monotonic() < deadline:
            if reader_engine == "sqlite" or len(totals) % 20 == 0:
                reader = Reader(db, engine=reader_engine)  # a new Reader opened mid-write
                df = reader.to_df()
                reader.close()
            else:
                df = long_lived.to_df()
            df = df[df["batch"] >= 0]
            sizes = df.groupby("batch").size()
            m = len(sizes)
            assert sizes.index.tolist() == list(range(m)), f"batches seen: {sizes.index.tolist()}"
            partial = sizes[sizes != READ_BATCH]
            assert partial.empty, f"read {len(totals)} saw partial batches: {partial.to_dict()}"
            assert (df["n"] == READ_BATCH).all()
            for group, rows in df.groupby(df["batch"] // 4):
                extra = rows[f"extra_{group}"]
                assert (extra == rows["batch"]).all(), f"column extra_{group} not filled in every row"
            assert not totals or m >= totals[-1], "a later read saw fewer batches"
            totals.append(m)
    finally:
        stop.set()
        long_lived.close()
        try:
            _, status, payload = results_q.get(timeout=WAIT)
        finally:
            writer.join(timeout=10)
            if writer.is_alive():
                writer.kill()
    assert status == "ok", payload
    assert len(set(totals)) >= 3, f"reads did not overlap the writes: batch counts seen {totals}"
    final = _read(db)
    assert (final["batch"] >= 0).sum() == payload * READ_BATCH
    assert _integrity(db) == [("ok",)]


# -- 5. DuckDB reader and sqlite tracker taking turns in one process ----------------
def _steady_writer(db, started, stop, results_q):
    def work():
        tracker = Tracker(db, params={"who": "other"})
        n = 0
        while not stop.is_set() and n < 5000:
            tracker.log({"other": n, f"other_col_{n // 50}": n})
            n += 1
            started.set()
            time.sleep(0.001)
        tracker.close()
        return tracker.track_id, n

    _report(results_q, 0, work)


def _final_counts(db, results_q):
    def work():
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=WAIT)
        try:
            counts = dict(conn.execute('SELECT track_id, count(*) FROM "default" GROUP BY track_id'))
            mine = [v for (v,) in conn.execute('SELECT mine FROM "default" WHERE mine IS NOT NULL ORDER BY rowid')]
            integrity = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
        return counts, mine, integrity

    _report(results_q, 0, work)


def test_duckdb_reader_and_sqlite_tracker_take_turns_in_one_process(tmp_path):
    """log (sqlite), read (DuckDB), log, read, ... in this process while another
    process writes, then on after it stops: each read sees every row this process
    logged, no open file of ours is unlinked under us, and a fresh process finds
    every row of both writers."""
    db = str(tmp_path / "turns.db")
    mine = Tracker(db, engine="sqlite", params={"who": "me"})
    mine.log({"mine": 0})
    logged = 1
    reader = Reader(db, engine="duckdb")
    started, stop = SPAWN.Event(), SPAWN.Event()
    results_q = SPAWN.Queue()
    other = SPAWN.Process(target=_steady_writer, args=(db, started, stop, results_q), daemon=True)
    other.start()

    def turn() -> pd.DataFrame:
        nonlocal logged
        mine.log({"mine": logged, f"mine_col_{logged // 25}": logged})
        logged += 1
        assert not _deleted_fds(db), f"unlinked files still open: {_deleted_fds(db)}"
        df = reader.to_df()
        seen = df.loc[df["track_id"] == mine.track_id, "mine"].tolist()
        assert seen == list(range(logged)), f"after {logged} logs the DuckDB reader sees {len(seen)}"
        return df

    other_seen = []
    try:
        assert started.wait(WAIT), "the other writer never wrote"
        for _ in range(100):
            df = turn()
            other_seen.append(int((df["who"] == "other").sum()))
        stop.set()
        _, status, payload = results_q.get(timeout=WAIT)
        other.join(timeout=WAIT)
    finally:
        stop.set()
        if other.is_alive():
            other.kill()
    assert status == "ok", payload
    other_id, other_n = payload
    assert other_seen == sorted(other_seen), "the other process's rows went missing between reads"
    assert len(set(other_seen)) >= 3, f"reads did not overlap the other writer: {other_seen[:10]}..."

    # Now this process is the file's only user: the hazard of a closing SQLite copy
    # checkpointing and deleting the WAL under another copy's open connection.
    for i in range(40):
        df = turn()
        if i % 10 == 0:
            Reader.read_db(db, engine="duckdb")  # a short-lived DuckDB reader too
    assert int((df["who"] == "other").sum()) == other_n

    # A fresh process, while this one still holds its connection, sees it all.
    assert not _deleted_fds(db)
    result = _run_workers(_final_counts, [(db,)])
    counts, stored_mine, integrity = result[0]
    assert integrity == [("ok",)]
    assert counts == {mine.track_id: logged, other_id: other_n}
    assert stored_mine == list(range(logged))
    reader.close()
    mine.close()


# -- the sqlite tracker's own ATTACH must not lock it out of its own writes --------
def _conn_then_write(db, results_q):
    def work():
        Tracker(db).log({"a": 1})  # an existing file, as for any later run
        tracker = Tracker(db)
        tracker.conn.execute('SELECT count(*) FROM db."default"').fetchall()  # as documented
        t0 = time.monotonic()
        tracker.log({"new_key": 1})
        tracker.log_batch([{"a": 2}, {"a": 3}])
        return time.monotonic() - t0

    _report(results_q, 0, work)


def test_using_tracker_conn_does_not_lock_out_its_own_writes(tmp_path):
    """After ``tracker.conn`` (sqlite engine) is used, the tracker can still add a
    column and log a batch, at once. Run in a child with a time limit, because the
    failure mode is a wait for the 60 s busy timeout followed by 'database is locked'."""
    db = str(tmp_path / "conn.db")
    results_q = SPAWN.Queue()
    child = SPAWN.Process(target=_conn_then_write, args=(db, results_q), daemon=True)
    child.start()
    try:
        _, status, payload = results_q.get(timeout=8)
    except queue.Empty:
        pytest.fail("log() of a new key after tracker.conn was used still blocked after 8 s")
    finally:
        if child.is_alive():
            child.kill()
        child.join()
    assert status == "ok", payload
    assert payload < 5
