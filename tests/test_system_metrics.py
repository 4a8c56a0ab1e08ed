"""Tracker(..., log_system_metrics=True): a thread appends the machine's readings to the run
every system_interval seconds (xetrack/system_metrics.py), checked with a new Reader."""

import gc
import math
import os
import sys
import threading
import time
import warnings

import pytest

from xetrack import Reader, Tracker
from xetrack.integrations.common import TrainingRun
from xetrack.system_metrics import THREAD_NAME

# Said by every Tracker with system metrics on a machine without a GPU; checked below.
pytestmark = pytest.mark.filterwarnings("ignore:GPU metrics are off:UserWarning")

INTERVAL = 0.1
MACHINE = (
    "system_cpu_utilization_percentage",
    "system_system_memory_usage_megabytes",
    "system_system_memory_usage_percentage",
    "system_disk_usage_percentage",
    "system_disk_usage_megabytes",
    "system_disk_available_megabytes",
    "system_network_receive_megabytes",
    "system_network_transmit_megabytes",
)
PERCENTAGES = [c for c in MACHINE if c.endswith("_percentage")]
GPU_OFF = "GPU metrics are off"


def wait_for_rows(tracker, n, timeout=15.0):
    """Until the tracker's sampler wrote ``n`` rows."""
    deadline = time.monotonic() + timeout
    while tracker._sampler.rows < n:
        assert time.monotonic() < deadline, f"{tracker._sampler.rows} system rows after {timeout} s"
        time.sleep(INTERVAL / 4)


def sampler_threads():
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def system_rows(db, track_id, engine="sqlite"):
    with Reader(db, engine=engine) as reader:
        frame = reader.to_df(track_id=track_id)
    return frame, frame[frame["system_system_memory_usage_percentage"].notna()]


def gpu_present():
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:  # noqa: BLE001 - no nvidia-ml-py (ImportError) or no driver (NVMLError)
        return False


@pytest.mark.parametrize("store", ["sqlite", "duckdb", "postgres"])
def test_machine_rows_at_the_interval_with_the_runs_params(store, tmp_path, request):
    db = request.getfixturevalue("pg_url") if store == "postgres" else str(tmp_path / "exp.db")
    engine = "duckdb" if store == "duckdb" else "sqlite"
    tracker = Tracker(db, params={"lr": 0.1}, engine=engine, log_system_metrics=True, system_interval=INTERVAL).start()
    started = time.monotonic()
    for step in range(5):
        tracker.log({"step": step, "loss": 1.0 / (step + 1)})
    wait_for_rows(tracker, 3)
    tracker.end()
    elapsed = time.monotonic() - started
    written = tracker._sampler.rows
    tracker.close()

    frame, system = system_rows(db, tracker.track_id, engine)
    assert len(system) == written >= 3
    assert len(frame) == written + 5  # the training's rows, untouched
    trained = frame[frame["loss"].notna()]
    assert trained["step"].tolist() == [0, 1, 2, 3, 4] and trained["loss"].iloc[-1] == pytest.approx(0.2)
    assert system["step"].isna().all() and system["loss"].isna().all()
    assert (system["lr"] == 0.1).all()  # rows of the run: they carry its params
    for column in MACHINE:
        assert system[column].notna().all(), column
        assert (system[column] >= 0).all(), column
    for column in PERCENTAGES:
        assert (system[column] <= 100).all(), column
    assert (system["system_system_memory_usage_megabytes"] > 0).all()
    assert (system["system_disk_available_megabytes"] > 0).all()
    # One row per interval, not faster: a thread that wrote in a loop would have thousands.
    assert written <= elapsed / INTERVAL + 1
    with Reader(db, engine=engine) as reader:
        run = reader.runs().set_index("track_id").loc[tracker.track_id]
        assert run["status"] == "finished" and run["events"] == written + 5
        assert run["loss"] == pytest.approx(0.2) and run["lr"] == 0.1
        params, metrics, _ = reader.classify()
        assert "lr" in params and set(MACHINE) <= set(metrics)


def test_the_readings_follow_params_set_later_and_stop_with_end(db):
    tracker = Tracker(db, params={"model": "mlp"}, log_system_metrics=True, system_interval=INTERVAL)
    wait_for_rows(tracker, 1)
    tracker.set_params({"batch": 32})
    first = tracker._sampler.rows
    wait_for_rows(tracker, first + 1)
    tracker.end()
    assert not sampler_threads()
    written = tracker._sampler.rows
    time.sleep(3 * INTERVAL)
    _, system = system_rows(db, tracker.track_id)
    assert len(system) == written == tracker._sampler.rows  # nothing after end()
    assert (system["model"] == "mlp").all()
    assert system["batch"].iloc[-1] == 32 and system["batch"].isna().iloc[0]
    with Reader(db) as reader:
        status = reader.runs().set_index("track_id").loc[tracker.track_id, "status"]
        assert status == "finished"
        last_system = system["timestamp"].max()
        end = reader.runs().set_index("track_id").loc[tracker.track_id, "end"]
        assert str(last_system) <= str(end)  # the last sample before the end

    tracker.start()  # a run started again samples again
    wait_for_rows(tracker, written + 1)
    assert len(sampler_threads()) == 1
    tracker.close()
    assert not sampler_threads()


def test_a_failing_training_leaves_a_failed_run_and_no_thread(db):
    with pytest.raises(FloatingPointError):
        with Tracker(db, log_system_metrics=True, system_interval=INTERVAL) as tracker:
            tracker.log({"loss": 1.0})
            wait_for_rows(tracker, 1)
            raise FloatingPointError("loss exploded")
    assert not sampler_threads()
    with Reader(db) as reader:
        run = reader.runs().set_index("track_id").loc[tracker.track_id]
    assert run["status"] == "failed" and run["events"] >= 2
    _, system = system_rows(db, tracker.track_id)
    assert len(system) == tracker._sampler.rows >= 1


def test_the_thread_stops_when_the_tracker_is_collected(db):
    tracker = Tracker(db, log_system_metrics=True, system_interval=INTERVAL)
    wait_for_rows(tracker, 1)
    (thread,) = sampler_threads()
    del tracker
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_forked_child_has_no_sampler_until_it_starts_one(db):
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    tracker = Tracker(db, log_system_metrics=True, system_interval=INTERVAL)
    wait_for_rows(tracker, 1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            os.close(read)
            inherited = len(sampler_threads())
            running = tracker._sampler.running
            tracker.track_id = "child-run"
            tracker.start()  # asked: the child starts its own
            wait_for_rows(tracker, tracker._sampler.rows + 2)
            tracker.end()
            os.write(write, f"{inherited} {running} {len(sampler_threads())}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer == "0 False 0"  # no thread inherited; one started, then stopped
    parent_rows = tracker._sampler.rows
    wait_for_rows(tracker, parent_rows + 1)  # the parent's thread kept going
    tracker.end()
    _, child = system_rows(db, "child-run")
    assert len(child) >= 2


def test_no_gpu_is_said_once_as_a_warning_and_in_the_log(db, tmp_path):
    if gpu_present():
        pytest.skip("this machine has an NVIDIA GPU")
    logs = tmp_path / "logs"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracker = Tracker(db, log_system_metrics=True, system_interval=INTERVAL, logs_path=str(logs))
        tracker.end()
        tracker.start()  # started again: not said again
        tracker.end()
        tracker.close()
    said = [str(w.message) for w in caught if GPU_OFF in str(w.message)]
    assert len(said) == 1, said
    assert tracker.track_id in said[0]
    assert any(why in said[0] for why in ("nvidia-ml-py is not installed", "NVML did not start", "no NVIDIA GPU"))
    lines = [line for path in logs.iterdir() for line in path.read_text().splitlines() if GPU_OFF in line]
    assert len(lines) == 1 and "WARNING" in lines[0]

    with warnings.catch_warnings(record=True) as quiet:
        warnings.simplefilter("always")
        Tracker(db, log_system_metrics=True, system_interval=INTERVAL, warnings=False).close()
    assert not [w for w in quiet if GPU_OFF in str(w.message)]


def test_without_nvidia_ml_py_the_message_names_the_extra(db, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    with pytest.warns(UserWarning, match=r"nvidia-ml-py is not installed \(pip install 'xetrack\[gpu\]'\)"):
        tracker = Tracker(db, log_system_metrics=True, system_interval=INTERVAL)
    wait_for_rows(tracker, 1)  # the other readings go on
    tracker.close()


def test_gpu_readings(db):
    pynvml = pytest.importorskip("pynvml", reason="GPU metrics need nvidia-ml-py (pip install 'xetrack[gpu]')")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no NVIDIA driver here: pynvml.nvmlInit() failed ({exc})")
    count = pynvml.nvmlDeviceGetCount()
    pynvml.nvmlShutdown()
    if not count:
        pytest.skip("NVML found no NVIDIA GPU")
    tracker = Tracker(db, log_system_metrics=True, system_interval=INTERVAL)
    wait_for_rows(tracker, 2)
    tracker.end()
    _, system = system_rows(db, tracker.track_id)
    for index in range(count):
        for name in ("utilization_percentage", "memory_usage_percentage", "memory_usage_megabytes"):
            column = f"system_gpu_{index}_{name}"
            assert system[column].notna().all() and (system[column] >= 0).all(), column
        total = system[f"system_gpu_{index}_memory_total_megabytes"]
        assert (system[f"system_gpu_{index}_memory_usage_megabytes"] <= total).all()


@pytest.mark.parametrize(
    ("interval", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("10", TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_a_bad_interval_is_refused_before_anything_is_made(db, interval, error):
    with pytest.raises(error, match="system_interval must be a"):
        Tracker(db, log_system_metrics=True, system_interval=interval)
    with pytest.raises(error, match="system_interval"):
        Tracker(db, system_interval=interval)
    assert not os.path.exists(db)
    assert not sampler_threads()


def test_no_thread_and_no_columns_unless_asked(db):
    tracker = Tracker(db)
    tracker.log({"loss": 1.0})
    assert tracker._sampler is None and not sampler_threads()
    assert not any(c.startswith("system_") for c in Reader(db).to_df().columns)


def test_training_run_hands_them_to_its_tracker(db):
    run = TrainingRun(db, params={"optimizer": {"lr": 0.01}}, log_system_metrics=True, system_interval=INTERVAL)
    assert not sampler_threads()  # nothing opened before the first record
    run.log({"loss": 0.5}, step=1)
    tracker = run.tracker
    wait_for_rows(tracker, 2)
    run.end()
    assert not sampler_threads()
    frame, system = system_rows(db, run.track_id)
    assert len(system) == tracker._sampler.rows >= 2 and len(frame) == len(system) + 1
    assert (system["optimizer_lr"] == 0.01).all()
    with Reader(db) as reader:
        assert reader.runs().set_index("track_id").loc[run.track_id, "status"] == "finished"
