"""A sweep's next Tracker takes the connection the last one let go (store/sqlite/idle.py), and a
new key's role is recorded in the transaction that adds its column (issue 20)."""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from xetrack import Reader, Tracker
from xetrack.store.sqlite import idle
from xetrack.store.sqlite.guard import guard_for


@pytest.fixture(autouse=True)
def no_idle_before_or_after():
    idle.close_all()
    yield
    idle.close_all()


def rows_of(path: str) -> int:
    """Rows of the default table, read from the file alone (a copy without -wal and -shm)."""
    copy = path + ".alone"
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute('SELECT count(*) FROM "default"').fetchone()[0]
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(copy + suffix):
                os.remove(copy + suffix)


def main_connection(tracker: Tracker) -> sqlite3.Connection:
    with tracker._engine.reading() as conn:
        return conn


@pytest.mark.parametrize("let_go", ["close", "del"])
def test_the_next_tracker_takes_the_connection_the_last_one_let_go(db, let_go):
    guard = guard_for(db)
    seen = set()
    for run in range(5):
        tracker = Tracker(db, params={"run": run})
        tracker.log({"x": run})
        seen.add(id(main_connection(tracker)))
        assert guard.idle_count() == 0  # in use
        if let_go == "close":
            tracker.close()
        else:
            del tracker
        assert guard.open_count() == 0 and guard.idle_count() == 1
    assert len(seen) == 1  # one connection served the five runs
    assert len(Reader(db)) == 5


def test_the_file_alone_holds_every_row_once_the_last_tracker_let_go(db):
    tracker = Tracker(db)
    tracker.log_batch([{"x": i} for i in range(50)])
    tracker.close()
    assert os.path.exists(db + "-wal")  # kept, with the connection, for the next Tracker
    assert rows_of(db) == 50  # but checkpointed: `cp exp.db` copies every row


def test_the_reaper_closes_a_connection_nobody_took(db, monkeypatch):
    monkeypatch.setattr(idle, "IDLE_SECONDS", 0.05)
    Tracker(db).log({"x": 1})  # dropped at once
    assert guard_for(db).idle_count() == 1
    deadline = time.monotonic() + 5
    while guard_for(db).idle_count() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert guard_for(db).idle_count() == 0
    assert not os.path.exists(db + "-wal") and not os.path.exists(db + "-shm")


def test_at_most_idle_max_connections_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(idle, "IDLE_MAX", 2)
    paths = [str(tmp_path / f"f{i}.db") for i in range(5)]
    for path in paths:
        Tracker(path).log({"x": 1})
    assert sum(guard_for(p).idle_count() for p in paths) == 2
    assert [guard_for(p).idle_count() for p in paths[-2:]] == [1, 1]  # the newest stay
    for path in paths[:3]:
        assert not os.path.exists(path + "-wal")  # the oldest were closed for real


def test_removing_the_file_after_close_starts_afresh(db):
    # `rm exp.db` leaves exp.db-wal and -shm, which hold the old pages: a new file under
    # the name must not read them back.
    tracker = Tracker(db)
    tracker.log_batch([{"old": i} for i in range(10)])
    tracker.close()
    os.remove(db)
    fresh = Tracker(db)
    fresh.log({"new": 1})
    frame = Reader(db).to_df()
    assert len(frame) == 1 and "old" not in frame.columns


def test_moving_the_file_after_close_keeps_every_row_and_leaves_no_pages_behind(tmp_path):
    db = str(tmp_path / "exp.db")
    tracker = Tracker(db)
    tracker.log_batch([{"old": i} for i in range(10)])
    tracker.close()
    os.makedirs(tmp_path / "archive")
    moved = str(tmp_path / "archive" / "exp.db")
    shutil.move(db, moved)
    assert len(Reader(moved)) == 10
    idle.close_all()  # the idle connection of the old name goes (at exit, or by the reaper)
    assert not os.path.exists(db + "-wal") and not os.path.exists(db + "-shm")
    Tracker(db).log({"new": 1})
    assert Reader(db).to_df().columns.tolist() == ["timestamp", "track_id", "new"]


def test_a_replaced_file_is_opened_anew(tmp_path):
    db, other = str(tmp_path / "exp.db"), str(tmp_path / "other.db")
    Tracker(db).log({"a": 1})
    Tracker(other).log_batch([{"b": i} for i in range(3)])
    idle.close_all()
    Tracker(db).log({"a": 2})  # idle again, on the first file
    os.replace(other, db)
    tracker = Tracker(db)
    tracker.log({"b": 9})
    assert sorted(Reader(db).to_df()["b"].tolist()) == [0, 1, 2, 9]


@pytest.mark.parametrize("how", ["rename", "copy in place"])
def test_a_file_replaced_while_its_connection_waits_is_read_as_it_is_now(tmp_path, how):
    db, other = str(tmp_path / "exp.db"), str(tmp_path / "other.db")
    Tracker(other).log_batch([{"b": i} for i in range(3)])
    idle.close_all()
    Tracker(db).log_batch([{"a": i} for i in range(50)])  # its connection waits, -wal and all
    if how == "rename":
        os.replace(other, db)
    else:
        shutil.copyfile(other, db)  # the same inode, new bytes
    # Another process first (it shares the waiting connection's -shm), then this one.
    script = f"from xetrack import Reader; print(sorted(Reader({db!r}).to_df()['b'].tolist()))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[0, 1, 2]", out.stderr
    Tracker(db).log({"b": 9})
    assert sorted(Reader(db).to_df()["b"].tolist()) == [0, 1, 2, 9]
    idle.close_all()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_duckdb_closes_idle_connections_before_it_opens_the_file(db):
    Tracker(db).log({"x": 1})
    assert guard_for(db).idle_count() == 1
    assert Reader(db, engine="duckdb").to_df()["x"].tolist() == [1]
    assert guard_for(db).idle_count() <= 1  # the Reader's own, parked after DuckDB's turn
    with guard_for(db).duckdb():
        assert guard_for(db).idle_count() == 0 and guard_for(db).open_count() == 0


def test_a_forked_child_never_uses_its_parents_idle_connection(db):
    import multiprocessing

    Tracker(db).log({"who": "parent"})
    assert guard_for(db).idle_count() == 1

    def child() -> None:
        assert guard_for(db).idle_count() == 0
        Tracker(db).log({"who": "child"})
        os._exit(0)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
    Tracker(db).log({"who": "parent again"})
    assert sorted(Reader(db).to_df()["who"]) == ["child", "parent", "parent again"]


def test_at_exit_the_file_is_closed_for_real(tmp_path):
    db = str(tmp_path / "exp.db")
    script = textwrap.dedent(f"""
        from xetrack import Tracker
        for run in range(3):
            tracker = Tracker({db!r})
            tracker.log({{"run": run}})
            tracker.close()
        kept = Tracker({db!r})  # dropped only at exit
        kept.log({{"run": 3}})
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert not os.path.exists(db + "-wal") and not os.path.exists(db + "-shm")
    assert rows_of(db) == 4


def test_a_read_only_reader_and_a_tracker_do_not_share_a_connection(db):
    Tracker(db).log({"x": 1})
    reader = Reader(db)
    assert len(reader) == 1
    reader.close()
    assert guard_for(db).idle_count() == 2  # the Tracker's and the Reader's, kept apart
    Tracker(db).log({"x": 2})
    assert len(Reader(db)) == 2


# -- a new key's role goes with its column --------------------------------------------------
def transactions_of(tracker: Tracker, action) -> list[list[str]]:
    """The statements ``action`` ran on the tracker's connection, one list per transaction."""
    statements: list[str] = []
    conn = main_connection(tracker)
    conn.set_trace_callback(statements.append)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    groups, current, open_ = [], [], False
    for sql in statements:
        text = sql.strip().upper()
        if text.startswith("BEGIN"):
            open_, current = True, [sql]
        elif text.startswith("COMMIT"):
            groups.append(current + [sql])
            open_, current = False, []
        elif open_:
            current.append(sql)
        elif text.startswith(("INSERT", "UPDATE", "DELETE", "ALTER")):
            groups.append([sql])  # autocommit: a transaction of its own
    return groups


def test_a_new_keys_role_is_recorded_with_its_column(db):
    tracker = Tracker(db, params={"model": "rf"})
    tracker.log({"acc": 0.5})
    groups = transactions_of(tracker, lambda: tracker.log({"acc": 0.6, "loss": 0.4}))
    assert len(groups) == 1, groups  # one write: the ALTER, the row and the role
    assert any("ALTER TABLE" in s for s in groups[0]) and any("xetrack_kinds" in s for s in groups[0])
    from xetrack import meta

    assert meta.kinds(tracker._engine, "default") == {"model": "param", "acc": "metric", "loss": "metric"}


def test_a_new_tracker_of_known_keys_writes_only_its_rows(db):
    def log_three(tracker: Tracker) -> None:
        for i in range(3):
            tracker.log({"acc": i / 10})

    for run in range(2):
        tracker = Tracker(db, params={"model": "rf", "seed": run})
        groups = transactions_of(tracker, functools.partial(log_three, tracker))
        if run:  # the columns and their roles exist: three plain INSERTs
            assert len(groups) == 3 and all(g[0].upper().startswith("INSERT") for g in groups), groups
        tracker.close()
    assert Reader(db).runs()["model"].tolist() == ["rf", "rf"]


def test_a_role_recorded_by_another_process_is_not_written_again(db):
    Tracker(db, params={"lr": 0.1}).log({"acc": 1})
    script = f"from xetrack import Tracker; Tracker({db!r}, params={{'lr': 0.2}}).log({{'acc': 2, 'f1': 3}})"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    tracker = Tracker(db, params={"lr": 0.3})
    tracker.log({"acc": 3, "f1": 4})
    from xetrack import meta

    assert meta.kinds(tracker._engine, "default") == {"lr": "param", "acc": "metric", "f1": "metric"}
    assert Reader(db).runs()["lr"].tolist() == [0.1, 0.2, 0.3]


def test_a_metric_logged_as_a_param_later_becomes_a_param(db):
    Tracker(db).log({"lr": 0.1})
    tracker = Tracker(db, params={"lr": 0.2})
    tracker.log({"acc": 1})
    from xetrack import meta

    assert meta.kinds(tracker._engine, "default")["lr"] == "param"


def test_a_batch_records_its_roles_in_its_own_transaction(db):
    tracker = Tracker(db, params={"model": "rf"})
    groups = transactions_of(tracker, lambda: tracker.log_batch([{"step": i, "loss": 1 / (i + 1)} for i in range(5)]))
    assert len(groups) == 1 and any("xetrack_kinds" in s for s in groups[0])
