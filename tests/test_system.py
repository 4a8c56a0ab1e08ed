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
