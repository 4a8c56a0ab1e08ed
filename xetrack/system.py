"""The machine's use, read with psutil: on every row of a Tracker that asks for it
(:class:`SystemReadings`), and while a tracked call runs (:class:`SystemMonitor`).

Every row of ``Tracker(..., log_system_params=True)`` carries ``cpu_percent``,
``ram_percent``, ``p_memory_percent`` and ``disk_percent`` (the columns of xetrack 0.7.0),
and with ``log_network_params=True`` ``bytes_sent`` and ``bytes_recv``: see
:class:`SystemReadings`. A ``track()`` row also measures the call itself:

>>> with SystemMonitor(interval=0.01, network=True) as monitor:
...     total = sum(range(10**6))
>>> sorted(monitor.metrics)
['bytes_recv', 'bytes_sent', 'cpu', 'disk_percent', 'memory_percent', 'p_memory_percent']

Columns (all percentages are 0-100):

- ``cpu``: average system-wide CPU use over the whole call, from the CPU time
  counters at its start and its end (exact, not an average of samples).
- ``memory_percent``: peak system memory in use, over the samples.
- ``p_memory_percent``: peak resident memory of this process, as a percentage of the
  machine's memory, over the samples.
- ``disk_percent``: peak use of the disk that holds the current directory, over the
  samples.
- ``bytes_sent`` / ``bytes_recv`` (with ``network=True``): bytes the machine sent and
  received on every interface during the call (an int; not MB).

A sample is taken when the call starts, every ``interval`` seconds while it runs, and
when it ends, so even a call of a microsecond has two.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

# psutil is imported where it is used, so that making a Tracker does not import it.

SYSTEM_COLUMNS = ("cpu", "memory_percent", "p_memory_percent", "disk_percent")
NETWORK_COLUMNS = ("bytes_sent", "bytes_recv")
#: What every row of a Tracker with ``log_system_params=True`` carries.
READING_COLUMNS = ("cpu_percent", "ram_percent", "p_memory_percent", "disk_percent")


def check_interval(interval: Any) -> float:
    """``measurement_interval`` as a float, or a ValueError/TypeError that says why not."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise TypeError(f"measurement_interval must be a number of seconds, got {interval!r}")
    if not (math.isfinite(interval) and interval > 0):
        raise ValueError(f"measurement_interval must be > 0 seconds, got {interval!r}")
    return float(interval)


def _busy_and_total(times: Any) -> tuple[float, float]:
    # As psutil counts it: guest time is already inside user time on Linux, and
    # iowait is time the CPU was idle.
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _network() -> tuple[int, int]:
    import psutil

    counters = psutil.net_io_counters()
    return (counters.bytes_sent, counters.bytes_recv) if counters else (0, 0)


def _disk_path() -> str:
    try:
        return os.getcwd()
    except OSError:  # the current directory was deleted
        return os.path.abspath(os.sep)


class SystemReadings:
    """The machine's state as every row of a Tracker carries it, read with psutil at most
    once per ``interval`` seconds (a reading costs about 0.1 ms; a row between readings
    reuses the last one, so ``log()`` pays one clock read).

    - ``cpu_percent``: system-wide CPU use (0-100) since the previous reading (for the
      first, since the Tracker was made), from the CPU time counters. psutil's own
      ``cpu_percent()`` keeps one module-wide baseline, which would move the user's.
      When the counters have not ticked since (they count in 10 ms steps), the previous
      reading stands; for a first reading, the average since boot.
    - ``ram_percent``: the machine's memory in use; ``p_memory_percent``: this process's
      resident memory, as a share of the machine's; ``disk_percent``: use of the disk
      that holds the current folder.
    - ``bytes_sent`` / ``bytes_recv`` (with ``network``): bytes the machine sent and
      received on every interface since the Tracker was made (an int).

    >>> readings = SystemReadings(interval=1.0, system=True, network=True)
    >>> sorted(readings.read())
    ['bytes_recv', 'bytes_sent', 'cpu_percent', 'disk_percent', 'p_memory_percent', 'ram_percent']
    """

    def __init__(self, interval: float = 1.0, system: bool = True, network: bool = False) -> None:
        import psutil

        self.interval = check_interval(interval)
        self.system = system
        self.network = network
        self.due = 0.0  # time.monotonic() from which the next row takes a new reading
        self.values: dict[str, Any] = {}
        if system:
            self._process = psutil.Process()
            self._cpu = _busy_and_total(psutil.cpu_times())
        if network:
            self._net_start = _network()

    def read(self) -> dict[str, Any]:
        """A new reading (also kept as ``values``); never raises: a value psutil can't
        read is None."""
        import psutil

        values: dict[str, Any] = {}
        if self.system:
            values["cpu_percent"] = _try(self._cpu_percent)
            values["ram_percent"] = _try(lambda: psutil.virtual_memory().percent)
            values["p_memory_percent"] = _try(self._process.memory_percent)
            values["disk_percent"] = _try(lambda: psutil.disk_usage(_disk_path()).percent)
        if self.network:
            now = _try(_network)
            values["bytes_sent"] = None if now is None else max(0, now[0] - self._net_start[0])
            values["bytes_recv"] = None if now is None else max(0, now[1] - self._net_start[1])
        self.values = values
        self.due = time.monotonic() + self.interval
        return values

    def _cpu_percent(self) -> float:
        import psutil

        busy, total = _busy_and_total(psutil.cpu_times())
        d_busy, d_total = busy - self._cpu[0], total - self._cpu[1]
        if d_total <= 0:  # no tick of the counters since the last reading
            last = self.values.get("cpu_percent")
            if last is not None:
                return last
            d_busy, d_total = busy, total  # the first reading, at once: the average since boot
        else:
            self._cpu = (busy, total)
        return round(min(100.0, max(0.0, 100.0 * d_busy / d_total)), 2)


def _try(read: Any) -> Any:
    try:
        return read()
    except Exception:  # noqa: BLE001 - a reading psutil cannot make here is missing, never an error
        return None


class SystemMonitor:
    """A context manager: samples the machine while its block runs; read ``metrics`` after.

    The thread always stops when the block ends, also when it raises.

    Args:
        interval: seconds between samples.
        system: sample ``cpu``, ``memory_percent``, ``p_memory_percent``, ``disk_percent``.
        network: count ``bytes_sent`` and ``bytes_recv``.
    """

    def __init__(self, interval: float = 1.0, system: bool = True, network: bool = False) -> None:
        self.interval = check_interval(interval)
        self.system = system
        self.network = network
        self.metrics: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: How many samples were taken (the thread's, plus one at each end).
        self.samples = 0
        self._peaks = {"memory_percent": 0.0, "p_memory_percent": 0.0, "disk_percent": 0.0}

    def _sample(self) -> None:
        import psutil

        peaks = self._peaks
        memory = psutil.virtual_memory().percent
        process = self._process.memory_percent()
        disk = psutil.disk_usage(self._disk).percent
        peaks["memory_percent"] = max(peaks["memory_percent"], memory)
        peaks["p_memory_percent"] = max(peaks["p_memory_percent"], process)
        peaks["disk_percent"] = max(peaks["disk_percent"], disk)
        self.samples += 1

    def _try_sample(self) -> None:
        try:
            self._sample()
        except Exception:  # noqa: BLE001 - monitoring must never break the call it watches
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._try_sample()

    def __enter__(self) -> SystemMonitor:
        import psutil

        if self.network:
            self._net_start = _network()
        if self.system:
            self._process = psutil.Process()
            self._disk = _disk_path()
            self._cpu_start = _busy_and_total(psutil.cpu_times())
            self._try_sample()
            self._thread = threading.Thread(target=self._run, name="xetrack-system-monitor", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import psutil

        metrics: dict[str, Any] = {}
        if self.system:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self._try_sample()
            busy, total = _busy_and_total(psutil.cpu_times())
            d_busy, d_total = busy - self._cpu_start[0], total - self._cpu_start[1]
            metrics["cpu"] = round(100.0 * d_busy / d_total, 2) if d_total > 0 else 0.0
            metrics.update(self._peaks)
        if self.network:
            sent, recv = _network()
            metrics["bytes_sent"] = max(0, sent - self._net_start[0])
            metrics["bytes_recv"] = max(0, recv - self._net_start[1])
        self.metrics = metrics
