"""Log sinks (a rotating folder, stdout, JSONL), tracker.logger, and reading them back."""

import json
import multiprocessing
import os
import sqlite3
import warnings
from datetime import datetime

import pandas as pd
import pytest
from loguru import logger as global_logger

import xetrack.logs as logs
from xetrack import Reader, Tracker


def lines_of(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read().splitlines()


def tracking_lines(folder):
    return [line for line in lines_of(os.path.join(folder, "xetrack.log")) if "| TRACKING |" in line]


# -- destinations -------------------------------------------------------------------
def test_logs_path_writes_one_tracking_line_per_event(tmp_path, engine):
    folder = tmp_path / "logs"
    tracker = Tracker(str(tmp_path / "exp.db"), engine=engine, logs_path=folder, params={"model": "rf"})
    row = tracker.log({"accuracy": 0.9, "epoch": 1})
    assert tracker.log_batch([{"step": i} for i in range(3)]) == 3
    lines = tracking_lines(folder)
    assert len(lines) == 4
    head, _, payload = lines[0].partition("!📁!")
    assert " | TRACKING | " in head and "test_logs:test_logs_path" in head
    assert json.loads(payload) == row
    df = Reader.read_logs(folder)
    assert list(df.columns[:5]) == ["accuracy", "epoch", "model", "timestamp", "track_id"]
    assert df["accuracy"].iloc[0] == 0.9 and df["step"].tolist()[1:] == [0, 1, 2]
    stored = tracker.to_df()
    assert df["timestamp"].tolist() == stored["timestamp"].tolist()  # the rows as stored
    tracker.close()


def test_logs_stdout_prints_the_same_line(tmp_path, capsys):
    tracker = Tracker(Tracker.IN_MEMORY, logs_path=tmp_path / "logs", logs_stdout=True)
    tracker.log({"accuracy": 0.9})
    printed = capsys.readouterr().out.splitlines()
    assert printed == tracking_lines(tmp_path / "logs")
    only_stdout = Tracker(Tracker.IN_MEMORY, logs_stdout=True)
    only_stdout.log({"a": 1})
    assert '"a": 1' in capsys.readouterr().out


def test_jsonl_lines_are_flat_with_level_iso_timestamp_and_track_id(tmp_path):
    path = tmp_path / "logs" / "data.jsonl"  # the folder is created
    tracker = Tracker(Tracker.IN_MEMORY, jsonl=path, params={"model": "test-model"})
    tracker.log({"subject": "taxes", "prompt": "Help me with my taxes"})
    tracker.logger.info("not an event")
    tracker.logger.warning("not an event either")
    tracker.log_batch([{"subject": "dance", "prompt": "Help me with my moves"}])
    events = [json.loads(line) for line in lines_of(path)]
    assert len(events) == 2  # only TRACKING events
    first = events[0]
    assert list(first) == ["timestamp", "level", "subject", "prompt", "model", "track_id"]
    assert first["level"] == "TRACKING" and first["track_id"] == tracker.track_id
    stamp = datetime.fromisoformat(first["timestamp"])
    assert stamp.tzinfo is not None
    stored = tracker[1]["timestamp"]
    assert stamp.astimezone().replace(tzinfo=None) == datetime.fromisoformat(stored)


def test_jsonl_round_trips_types_through_reader_and_pandas(tmp_path):
    path = str(tmp_path / "data.jsonl")
    tracker = Tracker(Tracker.IN_MEMORY, jsonl=path)
    tracker.log({"i": 1, "f": 0.5, "b": True, "s": "x", "n": None, "big": 2**62})
    tracker.log({"i": 2, "f": 1.5, "b": False, "s": "y\nz", "n": None, "big": -(2**62)})
    df = Reader.read_jsonl(path)
    assert str(df["i"].dtype) == "Int64" and df["i"].tolist() == [1, 2]
    assert df["f"].dtype == "float64" and df["b"].tolist() == [True, False]
    assert df["big"].tolist() == [2**62, -(2**62)] and df["s"].tolist() == ["x", "y\nz"]
    direct = pd.read_json(path, lines=True)
    assert direct["i"].tolist() == [1, 2] and direct["f"].tolist() == [0.5, 1.5]
    assert direct["level"].tolist() == ["TRACKING", "TRACKING"]


# -- the logger object ------------------------------------------------------------------
def test_logger_messages_go_to_the_file_but_are_not_events(tmp_path):
    folder = tmp_path / "logs"
    tracker = Tracker(Tracker.IN_MEMORY, logs_path=folder)
    for level in ("debug", "info", "warning", "error"):
        getattr(tracker.logger, level)(f"a {level} message\nsecond line")
    tracker.log({"x": 1})
    text = (folder / "xetrack.log").read_text()
    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        assert f"| {level: <8} | " in text and f"a {level.lower()} message" in text
    assert "\n    second line\n" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no line is taken for corrupt
        df = Reader.read_logs(folder)
    assert df["x"].tolist() == [1]


def test_monitor_writes_dicts_and_frames_with_one_schema(tmp_path, engine):
    db = str(tmp_path / "exp.db")
    tracker = Tracker(db, engine=engine, logs_path=tmp_path / "logs", params={"model": "v2"})
    assert tracker.logger.monitor({"latency": 0.1, "prediction": 1}) == 1
    frame = pd.DataFrame({"latency": [0.2, 0.3], "prediction": [0, 1]})
    assert tracker.logger.monitor(frame) == 2
    df = Reader.read_logs(tmp_path / "logs")
    assert list(df.columns) == ["latency", "prediction", "model", "timestamp", "track_id"]
    assert df["latency"].tolist() == [0.1, 0.2, 0.3] and df["prediction"].tolist() == [1, 0, 1]
    assert len(Reader(db, engine=engine)) == 3  # stored like log()
    with pytest.raises(TypeError, match="dict or a DataFrame"):
        tracker.logger.monitor("<dict or pandas DataFrame>")


def test_experiment_writes_a_readable_summary_and_an_event(tmp_path):
    folder = tmp_path / "logs"
    tracker = Tracker(Tracker.IN_MEMORY, logs_path=folder)
    row = tracker.logger.experiment({"model": "rf", "accuracy": 0.91})
    assert tracker.logger.experiemnt({"model": "lr", "accuracy": 0.85})["model"] == "lr"  # the README's spelling
    text = (folder / "xetrack.log").read_text()
    assert f"experiment {row['track_id']}\n    model     : rf\n    accuracy  : 0.91\n" in text
    df = Reader.read_logs(folder)
    assert df["model"].tolist() == ["rf", "lr"] and df["accuracy"].tolist() == [0.91, 0.85]


def test_a_logger_without_sinks_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracker = Tracker(Tracker.IN_MEMORY)
    tracker.logger.info("nowhere")
    assert tracker.logger.monitor({"a": 1}) == 1 and len(tracker) == 1
    assert os.listdir(tmp_path) == []


def test_our_events_stay_out_of_the_users_loguru_handlers(tmp_path):
    seen = []
    handler = global_logger.add(seen.append, level=0)
    try:
        tracker = Tracker(Tracker.IN_MEMORY, logs_path=tmp_path / "logs", logs_stdout=False)
        tracker.log({"a": 1})
        tracker.logger.info("ours")
        global_logger.info("theirs")
    finally:
        global_logger.remove(handler)
    assert len(seen) == 1 and "theirs" in seen[0]
    assert "theirs" not in (tmp_path / "logs" / "xetrack.log").read_text()


def test_close_removes_the_handlers_and_the_next_event_reopens(tmp_path):
    folder = tmp_path / "logs"
    tracker = Tracker(str(tmp_path / "exp.db"), logs_path=folder, jsonl=tmp_path / "d.jsonl")
    before = len(logs._LOGGER._core.handlers)
    tracker.log({"a": 1})
    tracker.close()
    assert len(logs._LOGGER._core.handlers) == before - 1
    tracker.log({"a": 2})
    assert len(tracking_lines(folder)) == 2 and len(lines_of(tmp_path / "d.jsonl")) == 2
    tracker.close()


# -- storage switches ------------------------------------------------------------------
def test_skip_insert_writes_logs_and_no_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracker = Tracker(db=Tracker.SKIP_INSERT, logs_path="logs", jsonl="logs/data.jsonl")
    assert tracker.log({"accuracy": 0.9})["accuracy"] == 0.9
    tracker.logger.monitor(pd.DataFrame({"latency": [0.1, 0.2]}))
    tracker.close()
    assert sorted(os.listdir(tmp_path)) == ["logs"]
    assert not [f for f in os.listdir("logs") if f.endswith((".db", "-wal", "-shm"))]
    assert len(Reader.read_logs("logs")) == 3 and len(Reader.read_jsonl("logs/data.jsonl")) == 3


def test_in_memory_keeps_nothing_on_disk_but_the_logs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # (engine='duckdb' needs a file, so IN_MEMORY is sqlite's)
    tracker = Tracker(Tracker.IN_MEMORY, logs_path="logs")
    tracker.log({"accuracy": 0.9})
    assert len(tracker) == 1  # stored, in memory
    tracker.close()
    assert os.listdir(tmp_path) == ["logs"]
    assert set(os.listdir("logs")) <= {"xetrack.log", ".xetrack.log.lock"}
    assert Reader.read_logs("logs")["accuracy"].tolist() == [0.9]


# -- warnings ---------------------------------------------------------------------------
def test_warnings_is_true_only_with_the_flag_and_a_sink(tmp_path):
    assert Tracker(Tracker.IN_MEMORY, logs_stdout=True).warnings is True
    assert Tracker(Tracker.IN_MEMORY, jsonl=tmp_path / "d.jsonl").warnings is True
    assert Tracker(Tracker.IN_MEMORY, logs_stdout=True, warnings=False).warnings is False
    plain = Tracker(Tracker.IN_MEMORY)
    assert plain.warnings is False and plain.warnings_enabled is True


def test_library_warnings_still_follow_the_flag_without_a_sink(tmp_path):
    def total(values):
        return sum(values)

    tracker = Tracker(Tracker.IN_MEMORY, cache=str(tmp_path / "c1"))
    assert tracker.warnings_enabled and not tracker.warnings
    with pytest.warns(UserWarning, match="not caching total"):
        tracker.track(total, args=[[1, 2]])
    quiet = Tracker(Tracker.IN_MEMORY, cache=str(tmp_path / "c2"), warnings=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.track(total, args=[[1, 2]])


# -- rotation ---------------------------------------------------------------------------
def test_read_logs_reads_every_rotated_file_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "ROTATION_BYTES", 2_000)
    folder = tmp_path / "logs"
    tracker = Tracker(Tracker.SKIP_INSERT, logs_path=folder)
    for i in range(100):
        tracker.log({"step": i, "pad": "x" * 50})
    names = sorted(os.listdir(folder))
    assert "xetrack.000001.log" in names and "xetrack.log" in names and len(names) > 5
    assert all(os.path.getsize(folder / n) < 2_000 + 300 for n in names)
    assert Reader.read_logs(folder)["step"].tolist() == list(range(100))
    assert len(Reader.read_logs(folder / "xetrack.000001.log")) > 0  # one file works too


# -- many writers -----------------------------------------------------------------------
def _writer(kind, path, idx, n, rotation):
    logs.ROTATION_BYTES = rotation
    kwargs = {"jsonl": path} if kind == "jsonl" else {"logs_path": path}
    tracker = Tracker(Tracker.SKIP_INSERT, **kwargs)
    for i in range(n):
        # every 50th line is long (100 KB), far past any pipe or buffer size
        tracker.log({"proc": idx, "i": i, "text": ("x" * 100_000) if i % 50 == 0 else "short"})
    tracker.close()


@pytest.mark.parametrize("kind", ["jsonl", "folder"])
def test_four_processes_write_2000_whole_lines(tmp_path, kind):
    path = str(tmp_path / ("data.jsonl" if kind == "jsonl" else "logs"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(kind, path, i, 500, 1_000_000)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn line would warn
        df = Reader.read_jsonl(path) if kind == "jsonl" else Reader.read_logs(path)
    assert len(df) == 2000
    assert sorted(zip(df["proc"], df["i"])) == [(p, i) for p in range(4) for i in range(500)]
    assert set(df["text"].str.len()) == {5, 100_000}
    if kind == "jsonl":
        assert len(lines_of(path)) == 2000
    else:
        assert len(os.listdir(path)) > 3  # rotated while four processes wrote


# -- bad input ----------------------------------------------------------------------------
def test_an_unwritable_path_fails_at_construction(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    db = tmp_path / "exp.db"
    with pytest.raises(NotADirectoryError, match="afile"):
        Tracker(str(db), logs_path=afile)
    with pytest.raises(OSError, match="Cannot write logs to .*afile"):
        Tracker(str(db), logs_path=afile / "logs")
    with pytest.raises(IsADirectoryError, match="Cannot write JSONL"):
        Tracker(str(db), jsonl=tmp_path)
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    target = readonly / "logs" if not os.access(readonly, os.W_OK) else "/proc/xetrack/logs"  # root writes anywhere
    with pytest.raises(OSError, match="Cannot write logs to"):
        Tracker(str(db), logs_path=target)
    assert not db.exists()  # failed before creating the database


def test_a_corrupt_line_is_skipped_with_a_warning_naming_file_and_line(tmp_path):
    folder = tmp_path / "logs"
    tracker = Tracker(Tracker.SKIP_INSERT, logs_path=folder, jsonl=tmp_path / "d.jsonl")
    for i in range(3):
        tracker.log({"i": i})
    tracker.close()
    log_file, jsonl = folder / "xetrack.log", tmp_path / "d.jsonl"
    for path in (log_file, jsonl):
        lines = lines_of(path)
        lines.insert(1, "garbage {not json")
        path.write_text("\n".join(lines) + "\n")
    broken = lines_of(log_file)
    broken[2] = broken[2].replace("!📁!{", "!📁!{oops")
    log_file.write_text("\n".join(broken) + "\n")
    with pytest.warns(UserWarning) as caught:
        assert Reader.read_logs(folder)["i"].tolist() == [0, 2]
    assert [str(w.message).split(":")[0] for w in caught] == [f"{log_file}, line 2", f"{log_file}, line 3"]
    with pytest.warns(UserWarning, match=f"{jsonl}, line 2: skipped a corrupt line"):
        assert Reader.read_jsonl(jsonl)["i"].tolist() == [0, 1, 2]


def test_a_truncated_last_line_is_tolerated(tmp_path):
    jsonl, folder = tmp_path / "d.jsonl", tmp_path / "logs"
    tracker = Tracker(Tracker.SKIP_INSERT, logs_path=folder, jsonl=jsonl)
    for i in range(3):
        tracker.log({"i": i, "text": "y" * 100})
    tracker.close()
    for path in (jsonl, folder / "xetrack.log"):
        data = path.read_bytes()
        path.write_bytes(data[:-40])  # a writer killed mid-line
    with pytest.warns(UserWarning, match="line 3: skipped a truncated last line"):
        assert Reader.read_jsonl(jsonl)["i"].tolist() == [0, 1]
    with pytest.warns(UserWarning, match="truncated last line"):
        assert Reader.read_logs(folder)["i"].tolist() == [0, 1]


def test_reading_missing_logs_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Reader.read_logs(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Reader.read_jsonl(tmp_path / "nowhere.jsonl")


def test_the_stored_database_is_untouched_by_logging(tmp_path, engine):
    db = str(tmp_path / "exp.db")
    tracker = Tracker(db, engine=engine, jsonl=tmp_path / "d.jsonl")
    tracker.log_batch([{"a": i, "obj": {i}} for i in range(3)])  # the general path, with assets
    tracker.close()
    conn = sqlite3.connect(db)
    assert conn.execute('SELECT count(*) FROM "default"').fetchone()[0] == 3
    conn.close()
    events = Reader.read_jsonl(tmp_path / "d.jsonl")
    assert events["a"].tolist() == [0, 1, 2] and events["obj"].str.len().tolist() == [16, 16, 16]


def test_library_warnings_also_go_to_the_logs_when_there_is_a_sink(tmp_path):
    folder = tmp_path / "logs"
    tracker = Tracker(Tracker.IN_MEMORY, cache=str(tmp_path / "cache"), logs_path=folder)

    def total(values):
        return sum(values)

    with pytest.warns(UserWarning, match="not caching total") as caught:
        assert tracker.track(total, args=[[1, 2]]) == 3
    assert caught[0].filename == __file__  # points at the user's line
    text = (folder / "xetrack.log").read_text()
    assert "| WARNING  | " in text and "not caching total()" in text
    quiet = Tracker(Tracker.IN_MEMORY, cache=str(tmp_path / "cache2"), logs_path=tmp_path / "q", warnings=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.track(total, args=[[1, 2]])
    assert "WARNING" not in (tmp_path / "q" / "xetrack.log").read_text()


def test_a_tracker_collected_while_loguru_holds_its_lock_does_not_hang(tmp_path):
    """The garbage collector may finalize a tracker in the middle of loguru's add() (its
    lock held): the finalizer must not wait on that lock. Its handlers go at the next open."""
    import gc
    import threading

    folder = tmp_path / "logs"
    tracker = Tracker(str(tmp_path / "exp.db"), logs_path=folder)
    tracker.log({"step": 1})
    tracker.self = tracker  # a cycle: only the garbage collector frees it
    handlers = list(tracker._logger._handler_ids)
    assert handlers
    del tracker
    done = threading.Event()

    def collect_under_the_lock():
        with logs._LOGGER._core.lock:  # as inside loguru's add()
            gc.collect()
        done.set()

    worker = threading.Thread(target=collect_under_the_lock, daemon=True)
    worker.start()
    assert done.wait(20), "the finalizer waited on loguru's lock"
    later = Tracker(str(tmp_path / "exp.db"), logs_path=folder)  # removes the collected one's handlers
    later.log({"step": 2})
    assert len(tracking_lines(folder)) == 2  # one line per event: no stale handler wrote twice
    assert not set(handlers) & set(logs._LOGGER._core.handlers)


def test_a_logger_whose_tracker_is_gone_says_to_keep_the_tracker():
    import gc

    logger = Tracker(Tracker.SKIP_INSERT).logger  # the Tracker is dropped at once
    gc.collect()
    with pytest.raises(ReferenceError, match=r"keep the Tracker in a variable \(tracker = Tracker"):
        logger.monitor({"latency": 0.1})
