"""The machine's use while a run trains: ``Tracker(..., log_system_metrics=True)``.

A daemon thread (:class:`SystemSampler`, named ``xetrack-system-metrics``) appends one row
to the run every ``system_interval`` seconds, from the Tracker's creation (or ``start()``)
until ``end()``, ``close()``, the Tracker's garbage collection or the interpreter's exit.
A row holds the readings of :class:`MachineReadings` under MLflow's names for them, made
columns by the usual key rules (``system/cpu_utilization_percentage`` is the column
``system_cpu_utilization_percentage``), plus the run's params, ``timestamp`` and
``track_id``, like any row of the run.

The thread writes through a row writer of its own (its own fast-path state) on the
Tracker's own engine and clock: the engine serializes its statements under its lock (one
per file in a process, :mod:`xetrack.store.sqlite.guard`), so ``log()`` waits at most for
one INSERT, never for a reading (they are taken outside any lock), and an in-memory
database works too. The thread holds the Tracker only by a weak reference.

After ``os.fork()`` the child has no sampler thread; ``start()`` on a Tracker in the child
(or a new Tracker) starts its own.
"""

from __future__ import annotations

import atexit
import importlib
import math
import os
import threading
import warnings
import weakref
from typing import Any, Protocol

from .rows import RowWriter, _Clock
from .store.base import Engine
from .system import _busy_and_total, _disk_path, _network, _try

#: The name of the sampler threads.
THREAD_NAME = "xetrack-system-metrics"
#: Readings in megabytes are in units of 10**6 bytes.
MB = 1e6
#: The readings every sample has (when psutil can read them), by MLflow's names.
MACHINE_KEYS = (
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/disk_usage_percentage",
    "system/disk_usage_megabytes",
    "system/disk_available_megabytes",
    "system/network_receive_megabytes",
    "system/network_transmit_megabytes",
)
#: What each NVIDIA GPU adds, ``{}`` its index from 0: MLflow's names, and two of ours
#: (``memory_total_megabytes``, ``temperature_celsius``) where MLflow has none.
GPU_KEYS = (
    "system/gpu_{}_utilization_percentage",
    "system/gpu_{}_memory_usage_percentage",
    "system/gpu_{}_memory_usage_megabytes",
    "system/gpu_{}_memory_total_megabytes",
    "system/gpu_{}_temperature_celsius",
    "system/gpu_{}_power_usage_watts",
    "system/gpu_{}_power_usage_percentage",
)


def check_system_interval(interval: Any) -> float:
    """``system_interval`` as a float, or a TypeError/ValueError that says why not.

    >>> check_system_interval(10)
    10.0
    """
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise TypeError(f"system_interval must be a number of seconds, got {interval!r}")
    if not (math.isfinite(interval) and interval > 0):
        raise ValueError(f"system_interval must be a positive number of seconds, got {interval!r}")
    return float(interval)


class NvidiaGpus:
    """The NVIDIA GPUs of the machine, read through NVML (nvidia-ml-py's ``pynvml``)."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def open(cls) -> tuple[NvidiaGpus | None, str | None]:
        """(the GPUs, None), or (None, why GPU metrics are off)."""
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError:
            return None, "nvidia-ml-py is not installed (pip install 'xetrack[gpu]')"
        try:
            nvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - NVMLError and its many subclasses
            return None, f"NVML did not start, no NVIDIA driver? (pynvml.nvmlInit(): {exc})"
        try:
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except Exception as exc:  # noqa: BLE001
            _try(nvml.nvmlShutdown)
            return None, f"NVML could not list the GPUs ({exc})"
        if not handles:
            _try(nvml.nvmlShutdown)
            return None, "NVML found no NVIDIA GPU"
        return cls(nvml, handles), None

    def read(self) -> dict[str, float | None]:
        values: dict[str, float | None] = {}
        for index, handle in enumerate(self._handles):
            values.update(self._one(index, handle))
        return values

    def _one(self, index: int, handle: Any) -> dict[str, float | None]:
        nvml = self._nvml
        memory = _try(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        power = _try(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)  # mW
        limit = _try(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0)
        readings = (
            _try(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
            None if not memory or not memory.total else 100.0 * memory.used / memory.total,
            None if memory is None else memory.used / MB,
            None if memory is None else memory.total / MB,
            _try(lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
            power,
            None if power is None or not limit else 100.0 * power / limit,
        )
        return {key.format(index): value for key, value in zip(GPU_KEYS, readings)}

    def close(self) -> None:
        _try(self._nvml.nvmlShutdown)


class MachineReadings:
    """One sample of the machine, by MLflow's names (see :data:`MACHINE_KEYS`), with psutil:

    - CPU: system-wide use (0-100) since the previous sample (the first: since these
      readings were made), from the CPU time counters (``psutil.cpu_percent()``'s
      module-wide baseline is left alone);
    - memory: the machine's memory in use, in MB and %, as psutil reports it;
    - disk: the disk that holds the current folder: used MB and %, and MB available;
    - network: MB received and sent on every interface since these readings were made;
    - with ``gpus``, each GPU's readings (:class:`NvidiaGpus`).

    A value that cannot be read is left out of the sample; values are rounded to 3 decimals.

    >>> import time
    >>> readings = MachineReadings(); time.sleep(0.05)  # the CPU counters tick every 10 ms
    >>> sorted(readings.read()) == sorted(MACHINE_KEYS)
    True
    """

    def __init__(self, gpus: NvidiaGpus | None = None) -> None:
        import psutil

        self._cpu = _busy_and_total(psutil.cpu_times())
        self._network = _try(_network)
        self.gpus = gpus

    def read(self) -> dict[str, float]:
        import psutil

        memory = _try(psutil.virtual_memory)
        disk = _try(lambda: psutil.disk_usage(_disk_path()))
        network = _try(_network)
        start = self._network
        values: dict[str, float | None] = {
            MACHINE_KEYS[0]: _try(self._cpu_percent),
            MACHINE_KEYS[1]: None if memory is None else memory.used / MB,
            MACHINE_KEYS[2]: None if memory is None else memory.percent,
            MACHINE_KEYS[3]: None if disk is None else disk.percent,
            MACHINE_KEYS[4]: None if disk is None else disk.used / MB,
            MACHINE_KEYS[5]: None if disk is None else disk.free / MB,
            MACHINE_KEYS[6]: None if network is None or start is None else max(0, network[1] - start[1]) / MB,
            MACHINE_KEYS[7]: None if network is None or start is None else max(0, network[0] - start[0]) / MB,
        }
        if self.gpus is not None:
            values.update(self.gpus.read())
        return {key: round(float(value), 3) for key, value in values.items() if value is not None}

    def _cpu_percent(self) -> float | None:
        import psutil

        busy, total = _busy_and_total(psutil.cpu_times())
        d_busy, d_total = busy - self._cpu[0], total - self._cpu[1]
        if d_total <= 0:  # the counters (10 ms steps) have not ticked since
            return None
        self._cpu = (busy, total)
        return min(100.0, max(0.0, 100.0 * d_busy / d_total))

    def close(self) -> None:
        if self.gpus is not None:
            self.gpus.close()


class SampledRun(Protocol):
    """What a sampler uses of the Tracker whose run it samples."""

    table_name: str
    warnings_enabled: bool
    _engine: Engine
    _clock: _Clock

    @property
    def track_id(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def warnings(self) -> bool: ...
    @property
    def logger(self) -> Any: ...


def tell(run: SampledRun, message: str, stacklevel: int = 2) -> None:
    """Say something about what the run does behind the scenes, as xetrack does: a Python
    warning (unless ``Tracker(warnings=False)``) and, with a log sink, a WARNING line."""
    if run.warnings_enabled:
        warnings.warn(message, stacklevel=stacklevel + 1)
    if run.warnings:
        run.logger.warning(message)


class _Rows(RowWriter):
    """The sampler's rows: a row writer of its own on the run's engine and clock."""

    def __init__(self, run: SampledRun) -> None:
        self._engine = run._engine
        self.table_name = run.table_name
        self._clock = run._clock  # one clock per run: its stamps stay strictly increasing
        self.track_id = self._track_id = run.track_id
        self._names = {}
        self._params = {}
        self._stored_assets = set()
        self._kinds_noted = set()
        self._log_events = False
        self.compress = False

    def write(self, values: dict[str, float], params: dict[str, Any], track_id: str) -> None:
        if params != self._params or track_id != self._track_id:
            self._params = params
            self.track_id = self._track_id = track_id
            self._shape = None
        self.log(values)


class SystemSampler:
    """Appends the machine's readings to one run every ``interval`` seconds, in a thread.

    >>> import time
    >>> from xetrack import Tracker
    >>> tracker = Tracker(Tracker.IN_MEMORY, log_system_metrics=True, system_interval=0.01)
    >>> while tracker._sampler.rows < 2:
    ...     time.sleep(0.01)
    >>> tracker.end()  # the thread stops
    >>> bool(tracker["system_system_memory_usage_percentage"].notna().all())
    True
    """

    def __init__(self, interval: float) -> None:
        self.interval = check_system_interval(interval)
        #: Rows written so far, and the last error a write raised (the thread keeps going).
        self.rows = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._finalizer: weakref.finalize[..., Any] | None = None
        self._told_gpu = False
        self._told_error = False

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stop.is_set()

    def start(self, run: SampledRun) -> None:
        """Start sampling ``run`` (nothing if already sampling). The first time, when GPU
        metrics are off, says why (:func:`tell`)."""
        if self.running:
            return
        self.stop()
        gpus, off = NvidiaGpus.open()
        if off is not None and not self._told_gpu:
            self._told_gpu = True
            tell(run, f"GPU metrics are off for run {run.track_id!r}: {off}", stacklevel=4)
        stop = self._stop = threading.Event()
        readings = MachineReadings(gpus)
        self._thread = threading.Thread(
            target=self._loop, args=(weakref.ref(run), _Rows(run), readings, stop), name=THREAD_NAME, daemon=True
        )
        self._finalizer = weakref.finalize(run, stop.set)  # the Tracker collected: the thread ends
        _LIVE.add(self)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait for it (at most ``timeout`` seconds): a row being
        written is finished, none follows."""
        self._stop.set()
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread() and thread.is_alive():
            thread.join(timeout)
        _LIVE.discard(self)

    def _loop(self, ref: Any, rows: _Rows, readings: MachineReadings, stop: threading.Event) -> None:
        try:
            while not stop.wait(self.interval):
                run = ref()
                if run is None:
                    return
                params, track_id = run.params, run.track_id
                del run  # the thread keeps no Tracker alive
                values = readings.read()
                if stop.is_set():
                    return  # stopped while reading: no row after end()
                try:
                    rows.write(values, params, track_id)
                    self.rows += 1
                except Exception as exc:  # noqa: BLE001 - a failed sample never stops training
                    self._failed(exc, track_id)
        finally:
            readings.close()

    def _failed(self, exc: BaseException, track_id: str) -> None:
        self.error = exc
        if not self._told_error:
            self._told_error = True
            warnings.warn(
                f"System metrics of run {track_id!r} could not be written (sampling goes on): "
                f"{type(exc).__name__}: {exc}",
                stacklevel=3,
            )

    def _forget(self) -> None:
        """In a forked child: the parent's thread does not exist here."""
        self._thread = None
        self._stop = threading.Event()
        self._finalizer = None


#: The samplers whose thread runs, to stop them at exit and forget them in a forked child.
_LIVE: weakref.WeakSet[SystemSampler] = weakref.WeakSet()


def _stop_all() -> None:
    for sampler in list(_LIVE):
        sampler.stop(timeout=2.0)


def _after_fork_in_child() -> None:
    for sampler in list(_LIVE):
        sampler._forget()
    _LIVE.clear()


atexit.register(_stop_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
