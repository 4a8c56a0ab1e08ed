"""A Tracker shared across fork() and across threads keeps every row."""

import multiprocessing
import sqlite3
import threading

from xetrack import Reader, Tracker


def _child_logs(tracker: Tracker, n: int) -> None:
    tracker.track_id = "child"
    for i in range(n):
        tracker.log({"i": i, "child_only": True})


def test_tracker_inherited_by_a_forked_child(tmp_path):
    db = str(tmp_path / "fork.db")
    tracker = Tracker(db)
    tracker.track_id = "parent"
    tracker.log({"i": -1})
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child_logs, args=(tracker, 200))
    child.start()
    for i in range(200):
        tracker.log({"i": i})
    child.join(60)
    assert child.exitcode == 0
    frame = Reader(db).to_df()
    assert (frame.track_id == "parent").sum() == 201
    assert (frame.track_id == "child").sum() == 200
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_threads_sharing_one_tracker(tmp_path):
    db = str(tmp_path / "threads.db")
    tracker = Tracker(db)
    errors = []

    def work(k: int) -> None:
        try:
            for i in range(300):
                tracker.log({"thread": k, "i": i, f"key_{k}": i})
        except Exception as exc:  # noqa: BLE001 # pragma: no cover - any error of a thread is reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    frame = Reader(db).to_df()
    assert len(frame) == 1200
    assert frame.groupby("thread").size().tolist() == [300] * 4
    for k in range(4):
        assert frame[f"key_{k}"].dropna().tolist() == list(range(300))
