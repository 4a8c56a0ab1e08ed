"""Log sinks (a rotating folder, stdout, JSONL), tracker.logger, and reading them back."""

import json
import multiprocessing
import os
import re
import sqlite3
import time
import warnings
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from loguru import logger as global_logger

import xetrack.log_sinks as log_sinks
import xetrack.logs as logs
import xetrack.tracker_logger as tracker_logger
from xetrack import Reader, Tracker


def lines_of(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read().splitlines()


def the_log(folder):
    """The one log file of a folder (today's ``YYYY-MM-DD.log``, by default)."""
    (name,) = [n for n in os.listdir(folder) if not n.startswith(".")]
    return Path(folder) / name


def tracking_lines(folder):
    return [line for line in lines_of(the_log(folder)) if "| TRACKING |" in line]


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
    text = the_log(folder).read_text()
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
    text = the_log(folder).read_text()
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
    assert "theirs" not in the_log(tmp_path / "logs").read_text()


def test_close_removes_the_handlers_and_the_next_event_reopens(tmp_path):
    folder = tmp_path / "logs"
    tracker = Tracker(str(tmp_path / "exp.db"), logs_path=folder, jsonl=tmp_path / "d.jsonl")
    before = len(tracker_logger._LOGGER._core.handlers)
    tracker.log({"a": 1})
    tracker.close()
    assert len(tracker_logger._LOGGER._core.handlers) == before - 1
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
    assert [n for n in os.listdir("logs") if n != ".xetrack.log.lock"] == [the_log("logs").name]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d\.log", the_log("logs").name)
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
    monkeypatch.setattr(log_sinks, "ROTATION_BYTES", 2_000)
    folder = tmp_path / "logs"
    tracker = Tracker(Tracker.SKIP_INSERT, logs_path=folder)
    for i in range(100):
        tracker.log({"step": i, "pad": "x" * 50})
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    today = tracker.logger._targets[0].path  # the file being written
    stem = os.path.basename(today)[: -len(".log")]
    assert f"{stem}.000001.log" in names and f"{stem}.log" in names and len(names) > 5
    assert all(os.path.getsize(folder / n) < 2_000 + 300 for n in names)
    assert Reader.read_logs(folder)["step"].tolist() == list(range(100))
    assert len(Reader.read_logs(folder / f"{stem}.000001.log")) > 0  # one file works too


def test_a_constant_set_on_xetrack_logs_names_the_module_that_reads_it(monkeypatch):
    """xetrack.logs re-exports the constants of the modules that read them: setting one
    there would change nothing, so it raises (a stale patch fails instead of passing)."""
    with pytest.raises(AttributeError, match=r"set xetrack\.log_sinks\.ROTATION_BYTES"):
        monkeypatch.setattr(logs, "ROTATION_BYTES", 1_000)
    with pytest.raises(AttributeError, match=r"xetrack\.log_lines\.TRACKING"):
        logs.TRACKING = "OTHER"
    with pytest.raises(AttributeError):  # private names live where they are used
        monkeypatch.setattr(logs, "_clock", lambda: 0.0)
    assert logs.ROTATION_BYTES == log_sinks.ROTATION_BYTES == 50 * 1024 * 1024


# -- many writers -----------------------------------------------------------------------
def _writer(kind, path, idx, n, rotation):
    log_sinks.ROTATION_BYTES = rotation
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


# -- the file names: logs_file_format ---------------------------------------------------
def test_the_default_file_name_is_todays_date(tmp_path):
    before = date.today()
    tracker = Tracker(Tracker.SKIP_INSERT, logs_path=tmp_path / "logs")
    tracker.log({"a": 1})
    after = date.today()
    names = os.listdir(tmp_path / "logs")
    assert len(names) == 1 and names[0] in {f"{before:%Y-%m-%d}.log", f"{after:%Y-%m-%d}.log"}
    assert tracker.logger.logs_file_format == logs.DEFAULT_FILE_FORMAT == "{time:YYYY-MM-DD}.log"


def test_file_names_follow_loguru_time_tokens_in_local_time():
    stamp = datetime(2026, 3, 7, 14, 5, 9, 12345).timestamp()  # naive: local time

    def name(pattern):
        return log_sinks._file_name(pattern, log_sinks.compile_file_name(pattern), stamp)

    assert name(None) == "2026-03-07.log"
    assert name("{time}.log") == "2026-03-07_14-05-09_012345.log"  # loguru's {time} in a file name
    assert name("{time:YYYY}_exp.log") == "2026_exp.log"
    assert name("run-{time:YYYYMMDD-HHmmss}.{time:SSSSSS}.txt") == "run-20260307-140509.012345.txt"
    assert name("{time:YY M D H m s SSS}") == "26 3 7 14 5 9 012"
    assert name("{{literal}}-{time:[HH]-HH}") == "{literal}-HH-14"  # [...] escapes a token, as in loguru
    assert name("plain.log") == "plain.log"


def test_next_midnight_is_the_next_local_midnight():
    def after(*local):
        return log_sinks._next_midnight(datetime(*local).timestamp())

    assert after(2026, 12, 6, 23, 59, 59, 999999) == datetime(2026, 12, 7).timestamp()
    assert after(2026, 12, 7) == datetime(2026, 12, 8).timestamp()  # midnight itself: the next one
    assert after(2026, 12, 31, 12) == datetime(2027, 1, 1).timestamp()


def test_a_long_process_switches_to_the_new_days_file_after_midnight(tmp_path, monkeypatch):
    now = [datetime(2026, 12, 6, 23, 59, 58).timestamp()]
    monkeypatch.setattr(log_sinks, "_clock", lambda: now[0])
    folder = tmp_path / "logs"
    tracker = Tracker(Tracker.SKIP_INSERT, logs_path=folder)
    tracker.log({"step": 1})
    tracker.logger.info("still the 6th")
    now[0] += 1.5  # 23:59:59.5
    tracker.log({"step": 2})
    assert os.listdir(folder) == ["2026-12-06.log"]
    now[0] += 1.0  # 00:00:00.5 on the 7th: the first write after midnight opens the new file
    tracker.log({"step": 3})
    tracker.logger.info("the 7th")
    now[0] += 3600
    tracker.log({"step": 4})
    assert sorted(os.listdir(folder)) == ["2026-12-06.log", "2026-12-07.log"]
    assert [len(tracking_lines_of(folder / n)) for n in ("2026-12-06.log", "2026-12-07.log")] == [2, 2]
    assert "still the 6th" in (folder / "2026-12-06.log").read_text()
    assert "the 7th" in (folder / "2026-12-07.log").read_text()
    assert Reader.read_logs(folder)["step"].tolist() == [1, 2, 3, 4]  # the 6th, then the 7th
    assert Reader.read_logs(folder / "2026-12-07.log")["step"].tolist() == [3, 4]


def tracking_lines_of(path):
    return [line for line in lines_of(path) if "| TRACKING |" in line]


def test_a_rotated_file_keeps_the_names_stem_with_a_number(tmp_path, monkeypatch):
    monkeypatch.setattr(log_sinks, "ROTATION_BYTES", 1_000)
    folder = tmp_path / "logs"
    tracker = Tracker(Tracker.SKIP_INSERT, logs_path=folder, logs_file_format="{time:YYYY}_exp.log")
    for i in range(30):
        tracker.log({"step": i, "pad": "x" * 50})
    year = os.path.basename(tracker.logger._targets[0].path)[:4]
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    rotated = [n for n in names if n != f"{year}_exp.log"]
    assert rotated and rotated == [f"{year}_exp.{k:06d}.log" for k in range(1, len(rotated) + 1)]
    assert Reader.read_logs(folder)["step"].tolist() == list(range(30))


def test_read_logs_reads_every_file_of_the_folder_oldest_first(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()

    def write(name, step, mtime):
        line = f'2026-01-01 00:00:00.000 | TRACKING | m:f:1!📁!{{"step": {step}}}\n'
        (folder / name).write_text(line)
        os.utime(folder / name, (mtime, mtime))

    t = time.time() - 1000
    write("xetrack.000001.log", 0, t)  # written by earlier versions
    write("xetrack.log", 1, t + 1)
    write("2026-12-06.000002.log", 3, t + 2)
    write("2026-12-06.000001.log", 2, t + 2)  # the same tick: by number
    write("2026-12-06.log", 4, t + 2)  # ... then the file being written
    write("2026-12-07.log", 5, t + 3)
    write(".hidden.log", 99, t + 4)  # hidden: passed over, like the lock file
    (folder / "data.jsonl").write_text('{"step": 98}\n')  # a JSONL dataset beside the logs
    (folder / "sub").mkdir()  # not a file
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Reader.read_logs(folder)["step"].tolist() == [0, 1, 2, 3, 4, 5]
    assert [os.path.basename(f) for f in logs.log_files(folder)] == [
        "xetrack.000001.log", "xetrack.log", "2026-12-06.000001.log", "2026-12-06.000002.log",
        "2026-12-06.log", "2026-12-07.log",
    ]  # fmt: skip


def test_rotation_keeps_every_line_of_three_processes(tmp_path):
    path = str(tmp_path / "logs")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_small_writer, args=(path, i, 400, 4_000)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a torn line would warn
        df = Reader.read_logs(path)
    assert len(df) == 1200  # every event, exactly once
    assert sorted(zip(df["proc"], df["i"])) == [(p, i) for p in range(3) for i in range(400)]
    names = [n for n in os.listdir(path) if not n.startswith(".")]
    rotated = [n for n in names if re.fullmatch(r"\d{4}-\d\d-\d\d\.\d{6}\.log", n)]
    assert len(rotated) > 20 and len(names) - len(rotated) <= 2  # (2: the test ran past midnight)
    numbers = sorted(int(n.split(".")[1]) for n in rotated)
    assert len(set(numbers)) == len(numbers)  # no rotation overwrote another


def _small_writer(path, idx, n, rotation):
    log_sinks.ROTATION_BYTES = rotation  # where RotatingLogFile reads it
    tracker = Tracker(Tracker.SKIP_INSERT, logs_path=path)
    for i in range(n):
        tracker.log({"proc": idx, "i": i, "text": "y" * (i % 7) * 20})
    tracker.close()


# -- bad input ----------------------------------------------------------------------------
def test_an_unwritable_path_fails_at_construction(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    db = tmp_path / "exp.db"
    with pytest.raises(NotADirectoryError, match="afile"):
        Tracker(str(db), logs_path=afile)
    with pytest.raises(OSError, match=r"Cannot write logs to .*afile"):
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
    log_file, jsonl = the_log(folder), tmp_path / "d.jsonl"
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
    for path in (jsonl, the_log(folder)):
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
    text = the_log(folder).read_text()
    assert "| WARNING  | " in text and "not caching total()" in text
    quiet = Tracker(Tracker.IN_MEMORY, cache=str(tmp_path / "cache2"), logs_path=tmp_path / "q", warnings=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.track(total, args=[[1, 2]])
    assert "WARNING" not in the_log(tmp_path / "q").read_text()


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
        with tracker_logger._LOGGER._core.lock:  # as inside loguru's add()
            gc.collect()
        done.set()

    worker = threading.Thread(target=collect_under_the_lock, daemon=True)
    worker.start()
    assert done.wait(20), "the finalizer waited on loguru's lock"
    later = Tracker(str(tmp_path / "exp.db"), logs_path=folder)  # removes the collected one's handlers
    later.log({"step": 2})
    assert len(tracking_lines(folder)) == 2  # one line per event: no stale handler wrote twice
    assert not set(handlers) & set(tracker_logger._LOGGER._core.handlers)


def test_a_logger_whose_tracker_is_gone_says_to_keep_the_tracker():
    import gc

    logger = Tracker(Tracker.SKIP_INSERT).logger  # the Tracker is dropped at once
    gc.collect()
    with pytest.raises(ReferenceError, match=r"keep the Tracker in a variable \(tracker = Tracker"):
        logger.monitor({"latency": 0.1})
