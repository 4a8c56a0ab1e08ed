"""System and network metrics of tracked calls (psutil, sampled on a background thread)."""

import socket
import threading
import time

import pytest

from xetrack import Reader, Tracker
from xetrack.system import SystemMonitor

SYSTEM = ("cpu", "memory_percent", "p_memory_percent", "disk_percent")
NETWORK = ("bytes_sent", "bytes_recv")
INTERVAL = 0.005


def last_row(db, engine):
    """The last row as a dict, empty columns left out (Reader.latest() is a frame)."""
    with Reader(db, engine=engine) as reader:
        return reader._engine.last_row(reader.table_name)


def monitor_threads():
    return [t for t in threading.enumerate() if t.name == "xetrack-system-monitor"]


def test_system_metrics_are_logged_even_for_a_very_short_call(db, engine):
    tracker = Tracker(db, engine=engine, log_system_params=True, measurement_interval=INTERVAL)
    assert tracker.track(lambda: 1) == 1
    row = last_row(db, engine)
    for column in SYSTEM:
        assert isinstance(row[column], float) and 0 <= row[column] <= 100, (column, row[column])
    assert row["memory_percent"] > 0 and row["p_memory_percent"] > 0 and row["disk_percent"] > 0
    assert not set(NETWORK) & set(row)


def test_no_metrics_unless_asked(db):
    tracker = Tracker(db)
    tracker.track(lambda: 1)
    assert not (set(SYSTEM) | set(NETWORK)) & set(tracker.latest)


def test_peak_memory_is_sampled_while_the_call_runs(db):
    tracker = Tracker(db, log_system_params=True, measurement_interval=INTERVAL)
    size = 256 * 2**20

    def allocate():
        block = b"\x01" * size  # touched, so resident
        time.sleep(0.1)  # the thread samples meanwhile
        del block

    tracker.track(allocate)
    peak = tracker.latest["p_memory_percent"]
    tracker.track(lambda: time.sleep(0.05))
    idle = tracker.latest["p_memory_percent"]
    import psutil

    expected = 100 * size / psutil.virtual_memory().total
    assert peak - idle > expected / 2, (peak, idle, expected)


def test_cpu_is_the_average_over_the_call(db):
    tracker = Tracker(db, log_system_params=True, measurement_interval=INTERVAL)

    def spin():
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass

    tracker.track(spin)
    assert tracker.latest["cpu"] > 0


def test_network_bytes_are_counted_over_the_call(db, engine):
    tracker = Tracker(db, engine=engine, log_network_params=True, measurement_interval=INTERVAL)
    payload = b"x" * 2_000_000

    def send_over_loopback():
        with socket.create_server(("127.0.0.1", 0)) as server:
            client = socket.create_connection(server.getsockname())
            peer, _ = server.accept()
            with client, peer:
                client.sendall(payload)
                client.shutdown(socket.SHUT_WR)
                got = 0
                while chunk := peer.recv(1 << 16):
                    got += len(chunk)
        return got

    assert tracker.track(send_over_loopback) == len(payload)
    row = last_row(db, engine)
    assert row["bytes_sent"] >= len(payload) and row["bytes_recv"] >= len(payload)
    assert isinstance(row["bytes_sent"], int)
    assert not set(SYSTEM) & set(row)  # network alone needs no sampling thread


def test_the_thread_stops_also_when_the_call_raises(db):
    tracker = Tracker(db, log_system_params=True, log_network_params=True, measurement_interval=INTERVAL)

    def fail():
        assert monitor_threads(), "the monitor samples while the call runs"
        raise OSError("disk on fire")

    with pytest.raises(OSError):
        tracker.track(fail)
    assert monitor_threads() == []
    row = tracker.latest
    assert row["error"] == "disk on fire"
    assert set(SYSTEM) | set(NETWORK) <= set(row)  # a failed call has its metrics too


def test_samples_are_taken_every_interval():
    with SystemMonitor(interval=0.01) as monitor:
        time.sleep(0.2)
    assert 5 <= monitor.samples <= 25
    with SystemMonitor(interval=10) as monitor:
        pass
    assert monitor.samples == 2  # one at each end, even for no time at all
    assert set(monitor.metrics) == set(SYSTEM)


def test_measurement_interval_is_checked():
    with pytest.raises(ValueError, match="> 0"):
        Tracker(Tracker.IN_MEMORY, log_system_params=True, measurement_interval=0)
    with pytest.raises(TypeError, match="number of seconds"):
        Tracker(Tracker.IN_MEMORY, measurement_interval="1")


# -- every row carries the machine's readings (xetrack 0.7.0's log_system_params) ----------
READINGS = ["cpu_percent", "ram_percent", "p_memory_percent", "disk_percent"]


def test_log_rows_carry_the_system_and_network_readings(db, engine):
    tracker = Tracker(
        db,
        params={"model": "m"},
        log_system_params=True,
        log_network_params=True,
        measurement_interval=0.05,
        engine=engine,
    )
    sum(range(10**6))
    first = tracker.log({"accuracy": 0.9})
    for name in READINGS:
        assert 0 <= first[name] <= 100, name
    assert first["ram_percent"] > 0 and first["disk_percent"] > 0 and first["p_memory_percent"] > 0
    assert isinstance(first["bytes_sent"], int) and first["bytes_sent"] >= 0 and first["bytes_recv"] >= 0
    tracker.log_batch([{"accuracy": 0.8}, {"accuracy": 0.7}])
    frame = Reader(db, engine=engine).to_df()
    assert len(frame) == 3
    assert frame[READINGS + ["bytes_sent", "bytes_recv"]].notna().sum().min() >= 2
    assert (frame["model"] == "m").all()
    # The readings are metrics, not params: runs() keeps only the param in its params.
    assert "cpu_percent" not in tracker.params


def test_only_the_network_columns_with_only_log_network_params(db):
    row = Tracker(db, log_network_params=True).log({"x": 1})
    assert "bytes_sent" in row and "bytes_recv" in row
    assert not set(READINGS) & set(row)


def test_no_readings_unless_asked(db):
    row = Tracker(db).log({"x": 1})
    assert set(row) == {"x", "timestamp", "track_id"}


def test_a_reading_is_reused_until_the_interval_passes(db, monkeypatch):
    from xetrack.system import SystemReadings

    taken = []
    real = SystemReadings.read

    def counting(self):
        taken.append(1)
        return real(self)

    monkeypatch.setattr(SystemReadings, "read", counting)
    tracker = Tracker(db, log_system_params=True, measurement_interval=3600)
    rows = [tracker.log({"step": i}) for i in range(50)]
    assert len(taken) == 1  # one psutil reading for 50 rows
    assert len({row["ram_percent"] for row in rows}) == 1
    tracker._readings.due = 0  # the interval passed
    tracker.log({"step": 50})
    assert len(taken) == 2


def test_a_key_of_the_row_wins_over_a_reading(db):
    tracker = Tracker(db, log_system_params=True, log_network_params=True)
    assert tracker.log({"bytes_sent": -1, "cpu_percent": 7})["bytes_sent"] == -1
    # track() rows keep their per-call columns beside the readings.
    tracker.track(sum, args=[range(1000)])
    row = tracker.latest
    assert {"cpu", "memory_percent", "p_memory_percent", "disk_percent", "cpu_percent", "ram_percent"} <= set(row)
    assert row["bytes_sent"] >= 0


def test_readings_ride_the_fast_path_and_refresh(db):
    tracker = Tracker(db, log_system_params=True, measurement_interval=0.02)
    for i in range(30):
        tracker.log({"step": i})
        time.sleep(0.002)
    frame = Reader(db).to_df()
    assert frame["step"].tolist() == list(range(30))
    assert frame["ram_percent"].notna().all()
