"""The write side: a Tracker is one run (one ``track_id``) in one table.

:class:`Tracker` is the one class users see. Its parts live by what they do:

- ``xetrack.rows.RowWriter``: ``log()``, its fast path and the row as stored;
- ``xetrack.batch.BatchWriter``: ``log_batch()`` (a RowWriter that also writes batches);
- ``xetrack.run_outputs.RunOutputs``: assets, artifacts, models, predictions and tags;
- ``xetrack.view.TableView``: ``head``, ``tail``, ``len()`` and the other reads it shares
  with ``Reader``;
- here: construction, identity, the run's lifecycle, params and set values, reading this
  run, and tracked functions.
"""

from __future__ import annotations

import os
import random
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from coolname import generate_slug

from .batch import BatchWriter, _first_value_finder  # noqa: F401 (migrate/mlflow_import.py imports it from here)
from .frames import to_backend
from .rows import _Clock
from .run_outputs import RunOutputs
from .schema import TIMESTAMP, TRACK_ID, coerce, validate_table_name
from .store import IN_MEMORY, SKIP_INSERT, open_engine, shown
from .view import TableView

if TYPE_CHECKING:
    from .system_metrics import SystemSampler


class Tracker(BatchWriter, RunOutputs, TableView):  # BatchWriter is a rows.RowWriter: log()
    """One run of an experiment: every ``log`` is one row of ``table`` in ``db``.

    >>> tracker = Tracker(Tracker.IN_MEMORY, params={"model": "resnet18"})
    >>> row = tracker.log({"accuracy": 0.9, "loss": 0.1, "epoch": 1})
    >>> row["model"], row["epoch"]
    ('resnet18', 1)

    The arguments come in xetrack 0.7.0's order, so 0.7.0 code runs unchanged:
    ``Tracker('exp.db', {'model': 'rf'}, True)`` resets the table.

    Args:
        db: path of the SQLite file (created if missing, with its missing folders),
            a ``postgresql://`` URL, ``Tracker.IN_MEMORY`` (nothing on disk) or
            ``Tracker.SKIP_INSERT`` (nothing stored).
        params: values added to every row this run logs.
        reset: drop the table's existing rows first.
        log_system_params: every row also holds the machine's ``cpu_percent``,
            ``ram_percent``, ``p_memory_percent`` and ``disk_percent`` (read at most every
            ``measurement_interval``), and a tracked call's row its own use (see
            docs/functions.md).
        log_network_params: every row also holds ``bytes_sent`` and ``bytes_recv`` since
            the Tracker was made (a tracked call's row: during the call).
        raise_on_error: for tracked functions, re-raise their errors.
        measurement_interval: seconds between readings of the machine: at most one
            per interval for rows, and samples during a tracked call.
        track_id: continue a run by its id instead of starting a new one.
        logs_path: a folder (created if missing): every event is also written there as
            one structured line at level ``TRACKING``, to a file named by
            ``logs_file_format`` (by default one a day, ``2026-12-06.log``), rotated into
            ``2026-12-06.000001.log``, ... as it grows. See docs/logging.md.
        logs_file_format: the name of the log files in ``logs_path``, as in xetrack
            0.7.0: a loguru file-name pattern of text and ``{time}`` or ``{time:FORMAT}``
            fields, e.g. ``"{time:YYYY}_exp.log"``. None: ``"{time:YYYY-MM-DD}.log"``.
            Formatted in local time when the file is opened, at the first write after
            midnight and at each rotation. The lines are always xetrack's own, which
            ``Reader.read_logs`` parses.
        logs_stdout: print the same line to stdout.
        jsonl: a file: every event is also written there as one JSON object per line
            (a dataset: ``Reader.read_jsonl`` or ``pandas.read_json(lines=True)``).
        cache: a directory (or a ``diskcache.Cache``) for results of tracked calls.
        compress: store the pickled bytes of new assets zlib-compressed. Reads detect
            compressed bytes by their header, whatever this flag; the hash stays the
            hash of the pickle, so an object is stored once across settings.
        warnings: let xetrack warn about what it does behind the scenes.
        git_root: a folder in a git repository: every row gets ``git_commit_hash``.
        engine: ``'sqlite'`` (default, fastest writes) or ``'duckdb'`` (reads and
            ``tracker.conn`` through DuckDB).
        table: the experiment table; several tables in one file are independent.
        run_name: (keyword-only) a display name for this run, MLflow's ``run_name``,
            shown by ``runs()`` and searchable (``run_name = 'baseline'``).
        description: (keyword-only) kept as the table's description, shown by
            ``Reader.tables()`` and ``xt tables``.
        log_system_metrics: (keyword-only) a background thread appends a row of the
            machine's use (``system_cpu_utilization_percentage``, memory, disk, network;
            NVIDIA GPUs with ``xetrack[gpu]``) to this run every ``system_interval``
            seconds, from now until ``end()``/``close()`` (``start()`` starts it again).
        system_interval: (keyword-only) seconds between those rows (> 0, default 10).

    Made while an OpenTelemetry span is current (``xetrack[otel]``), the run records the
    span's ``trace_id`` and ``span_id`` as tags (see ``set_span_id``).
    """

    IN_MEMORY = IN_MEMORY
    SKIP_INSERT = SKIP_INSERT
    # What ``latest`` shows as None (see ``_own``): the keys of the last row this Tracker
    # logged, and the keys it set with set_value/set_where.
    _last_logged: Iterable[Hashable] = ()
    _set_keys: frozenset[str] = frozenset()
    _sampler: SystemSampler | None = None  # with log_system_metrics: the system metrics' thread

    def __init__(
        self,
        db: str | os.PathLike[str] = "track.db",
        params: Mapping[Any, Any] | None = None,
        reset: bool = False,
        log_system_params: bool = False,
        log_network_params: bool = False,
        raise_on_error: bool = True,
        measurement_interval: float = 1.0,
        track_id: str | None = None,
        logs_path: str | os.PathLike[str] | None = None,
        logs_file_format: str | None = None,
        logs_stdout: bool = False,
        jsonl: str | os.PathLike[str] | None = None,
        cache: str | os.PathLike[str] | Any | None = None,
        compress: bool = False,
        warnings: bool = True,
        git_root: str | os.PathLike[str] | None = None,
        engine: str = "sqlite",
        table: str = "default",
        # xetrack 0.7.0's arguments, in its order; any argument added later goes after
        # a bare ``*`` (keyword-only), so positional 0.7.0 calls keep their meaning.
        *,
        run_name: str | None = None,
        description: str | None = None,
        log_system_metrics: bool = False,
        system_interval: float = 10.0,
    ) -> None:
        self.table_name = validate_table_name(table)
        self.db = shown(os.fspath(db) if isinstance(db, os.PathLike) else db)  # a URL without its password
        self.engine = engine
        self.raise_on_error = raise_on_error
        self.compress = bool(compress)
        self.warnings_enabled = bool(warnings)  # the flag; ``warnings`` also needs a sink
        self._names: dict[Hashable, str] = {}
        self._stored_assets: set[str] = set()  # hashes this tracker knows are stored
        self._started_as: str | None = None  # the track_id start() marked running
        self._params: dict[str, Any] = {}
        self._clock = _Clock()
        self.track_id = track_id if track_id is not None else self.generate_track_id()
        if params is not None:
            self.set_params(params)
        from .system import check_interval

        self.log_system_params = bool(log_system_params)
        self.log_network_params = bool(log_network_params)
        self.measurement_interval = check_interval(measurement_interval)
        from .system_metrics import SystemSampler, check_system_interval

        self.log_system_metrics = bool(log_system_metrics)
        self.system_interval = check_system_interval(system_interval)
        self._sampler = SystemSampler(self.system_interval) if self.log_system_metrics else None
        if self.log_system_params or self.log_network_params:
            from .system import SystemReadings

            self._readings = SystemReadings(self.measurement_interval, self.log_system_params, self.log_network_params)
        from .tracker_logger import TrackerLogger

        # Before the database: an unwritable log path fails with nothing created.
        self._log_events = bool(logs_path or logs_stdout or jsonl)
        # Without a sink the logger is made when first asked for (``tracker.logger``).
        self._logger: TrackerLogger | None = None
        if self._log_events or logs_file_format is not None:
            self._logger = TrackerLogger(self, logs_path, logs_stdout, jsonl, logs_file_format)
        self._engine = open_engine(db, engine, create=True, make_folders=True)
        self._engine.ensure_table(self.table_name, reset=reset)
        self._kinds_noted: set[str] = set()  # columns whose role this tracker had recorded
        from . import meta

        if run_name is not None:
            meta.set_run_name(self._engine, self.table_name, self.track_id, run_name)
        if description is not None:
            meta.describe_table(self._engine, self.table_name, description)
        self._cache = None
        if cache is not None:
            from .cache import ResultCache

            self._cache = ResultCache(cache)
        if git_root is not None:
            from .git import GIT_COMMIT_HASH, commit_hash

            commit = commit_hash(git_root)
            if commit is not None:  # outside a repository: no column
                self._params.setdefault(GIT_COMMIT_HASH, commit)
        from .tracing import current_span

        span = current_span()  # {} unless an OpenTelemetry span is current
        if span:
            self.set_tags(span)
        if self._sampler is not None:
            self._sampler.start(self)

    # -- identity ---------------------------------------------------------------
    @staticmethod
    def generate_track_id() -> str:
        """A new readable run id such as ``fierce-pudu-1649``.

        Drawn from the system's entropy, not from the ``random`` module: a program that
        seeds ``random`` (Keras, Lightning and transformers do) still gets a new id at
        every run, and the same random numbers as without xetrack.
        """
        import coolname

        entropy = random.SystemRandom()
        coolname.replace_random(entropy)  # coolname's words too (its default generator)
        return f"{generate_slug(2)}-{entropy.randint(1000, 9999)}"

    @property
    def track_id(self) -> str:
        return self._track_id

    @track_id.setter
    def track_id(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise TypeError(f"track_id must be a non-empty str, got {value!r}")
        self._track_id = value

    @property
    def params(self) -> dict[str, Any]:
        """The values added to every future row (a copy)."""
        return dict(self._params)

    @property
    def warnings(self) -> bool:
        """True when warnings are enabled and a log sink (folder, stdout, JSONL) exists."""
        return self.warnings_enabled and self._log_events

    @property
    def logger(self) -> Any:
        """This run's logger: ``info``, ``warning``, ``error``, ``debug``,
        ``monitor(dict_or_frame)`` and ``experiment(dict)``, written to the log sinks.

        >>> tracker = Tracker(Tracker.SKIP_INSERT)
        >>> tracker.logger.monitor({"latency": 0.1})
        1
        """
        if self._logger is None:
            from .tracker_logger import TrackerLogger

            self._logger = TrackerLogger(self)
        return self._logger

    def close(self) -> None:
        """Close the connections and the log files (and stop the system metrics). Using the
        tracker again reopens them."""
        if self._sampler is not None:
            self._sampler.stop()
        if self._logger is not None:
            self._logger.close()
        super().close()

    # -- run lifecycle (the ``xetrack_runs`` side table; the wide table is untouched) --
    def start(self) -> Tracker:
        """Mark this run ``running`` now, recording this process id and host.

        >>> tracker = Tracker(Tracker.IN_MEMORY).start()
        >>> tracker.end()
        """
        from .runs import mark_started

        mark_started(self._engine, self.table_name, self.track_id)
        self._started_as = self.track_id
        if self._sampler is not None:  # stopped by end()/close(), or in a forked child
            self._sampler.start(self)
        return self

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Mark this run ``finished`` (or ``failed``/``killed``/``pruned``, with ``error`` text)."""
        from .runs import mark_ended

        if self._sampler is not None:  # its last row comes before the end
            self._sampler.stop()
        mark_ended(self._engine, self.table_name, self.track_id, status, error, self._started_as)
        self._started_as = None

    def __enter__(self) -> Tracker:
        """``with Tracker(db) as run:`` marks the run running, then finished or failed."""
        return self.start()

    def __exit__(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> None:
        # Never swallow the exception: this returns None.
        try:
            if exc_type is None:
                self.end("finished")
            else:
                status = "killed" if issubclass(exc_type, KeyboardInterrupt) else "failed"
                try:
                    self.end(status, f"{exc_type.__name__}: {exc}")
                except Exception as end_error:  # noqa: BLE001 - the run's own error matters more
                    import warnings as _warnings

                    _warnings.warn(f"Could not mark run {self.track_id!r} {status}: {end_error}", stacklevel=2)
        finally:
            self.close()

    def set_span_id(self, span_id: str | int) -> None:
        """Link this run to a tracing span: kept as the tag ``span_id`` (an int as 16 hex
        digits), read back with ``Reader.span_id(track_id)``, searchable as ``tags.span_id``.

        >>> t = Tracker(Tracker.IN_MEMORY); t.set_span_id(0x00F067AA0BA902B7); t.tags
        {'span_id': '00f067aa0ba902b7'}
        """
        from .tracing import SPAN_ID, span_text

        self.set_tags({SPAN_ID: span_text(span_id)})

    # -- params and values --------------------------------------------------------
    def set_params(self, params: Mapping[Any, Any]) -> None:
        """Add values to every future row of this run.

        >>> t = Tracker(Tracker.IN_MEMORY); t.set_params({"model": "resnet18"})
        >>> t.log({"acc": 1})["model"]
        'resnet18'
        """
        if not isinstance(params, Mapping):
            hint = f"; to choose the table, pass table={params!r}" if isinstance(params, str) else ""
            raise TypeError(f"params must be a dict, got {type(params).__name__}{hint}")
        coerced = {self._name(k): coerce(v, k) for k, v in params.items()}
        self._params.update(coerced)
        self._shape = None  # the next row holds other params

    def set_param(self, key: Hashable, value: Any) -> None:
        """Add one value to every future row of this run."""
        self.set_params({key: value})

    def set_value(self, key: Hashable, value: Any) -> int:
        """Set ``key`` to ``value`` on every row this run already logged ("back in time").

        Adds the column if needed; returns the number of rows changed.
        """
        name = self._name(key)
        self._set_keys = self._set_keys | {name.lower()}
        return self._engine.update(self.table_name, {name: coerce(value, key)}, self._where())

    def set_where(self, key: Hashable, value: Any, where_key: Hashable, where_value: Any) -> int:
        """Set ``key`` to ``value`` on this run's rows whose ``where_key`` equals ``where_value``."""
        where = {self._resolve_column(where_key): coerce(where_value, where_key), **self._where()}
        name = self._name(key)
        self._set_keys = self._set_keys | {name.lower()}
        return self._engine.update(self.table_name, {name: coerce(value, key)}, where)

    # -- reading this run -------------------------------------------------------
    def to_df(self, all: bool = False) -> Any:
        """This run's rows as a DataFrame, oldest first; ``all=True`` for every run.

        The run's frame leaves out columns only other runs filled.
        """
        if all:
            return to_backend(self._engine.read(self.table_name))
        return to_backend(self._frame())

    @property
    def latest(self) -> dict[str, Any] | None:
        """This run's last row as a dict, or None.

        An empty column is left out unless the last row this Tracker logged had that
        key, or it is a param or a key set with ``set_value``/``set_where``: a key logged
        as None is there with None, as ``log()`` returned it, while the columns only
        other runs filled are not.

        >>> t = Tracker(Tracker.IN_MEMORY)
        >>> _ = t.log({"acc": 1, "optimizer": None})
        >>> t.latest["optimizer"] is None
        True
        """
        row = self._engine.last_row(self.table_name, self._where(), drop_null=False)
        return self._own(row, self._latest_keys())

    def __getitem__(self, key: Any) -> Any:
        """``tracker['col']``: that column of this run; ``tracker[i]``: its i-th row (1-based),
        with None in the empty columns this Tracker logged in any row."""
        if isinstance(key, int) and not isinstance(key, bool):
            if key == 0:
                raise IndexError("Rows are numbered from 1: tracker[1] is the first row")
            row = self._own(
                self._engine.nth_row(self.table_name, self._where(), key - 1, drop_null=False)
                if key > 0
                else self._engine.last_row(self.table_name, self._where(), offset=-key - 1, drop_null=False)
            )
            if row is None:
                raise IndexError(f"Row {key} out of range: this run has {len(self)} rows")
            return row
        if isinstance(key, str):
            return self._column(key)
        raise TypeError(f"Use tracker['column'] or tracker[row_number], not {key!r}")

    def __repr__(self) -> str:
        header = f"Tracker(db={self.db!r}, table={self.table_name!r}, track_id={self.track_id!r})"
        return header + "\n" + self._preview_text()

    @property
    def conn(self) -> Any:
        """The engine's connection: ``sqlite3.Connection``, or DuckDB with the file as ``db``."""
        return self._engine.conn

    def _where(self) -> dict[str, Any]:
        return {TRACK_ID: self.track_id}

    def _frame(self, head: int | None = None, tail: int | None = None) -> Any:
        # A wide table holds every run's keys; this run's view leaves out the
        # columns it never filled, unless this Tracker logged them (as None, say).
        frame = super()._frame(head=head, tail=tail)
        logged = self._logged()
        empty = [
            c
            for c in frame.columns
            if c not in (TIMESTAMP, TRACK_ID) and c.lower() not in logged and frame[c].isna().all()
        ]
        return frame.drop(columns=empty) if len(frame) and empty else frame

    def _logged(self) -> set[str]:
        """The columns this Tracker wrote, lower-cased: keys it logged or set, and params.

        Known from this object alone, so reading them costs ``log()`` nothing.
        """
        return {name.lower() for name in (*self._names.values(), *self._params)}

    def _own(self, row: dict[str, Any] | None, logged: set[str] | None = None) -> dict[str, Any] | None:
        """A row read with its NULLs, keeping a NULL only in a column of ``logged``
        (lower-cased; by default every column this Tracker wrote)."""
        if row is None:
            return None
        if logged is None:
            logged = self._logged()
        return {k: v for k, v in row.items() if v is not None or k.lower() in logged}

    def _latest_keys(self) -> set[str]:
        """Lower-cased: the keys of the last row this Tracker logged, params, keys it set."""
        names = {self._name(k).lower() for k in self._last_logged}
        return names | self._set_keys | {name.lower() for name in self._params}

    # -- tracked functions ------------------------------------------------------
    def track(
        self,
        func: Any,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        params: Mapping[Any, Any] | None = None,
        cache_force: bool = False,
    ) -> Any:
        """Call ``func(*args, **kwargs)``, log one row about the call, return its result.

        The row has ``function_name``, ``args``, ``kwargs``, ``error`` and
        ``function_time``; a dict result becomes columns, any other result
        ``function_result``. ``params`` go into this row only. An error is logged, then
        raised again (or None is returned, with ``raise_on_error=False``). With
        ``cache=``, a call seen before returns its stored result; ``cache_force``
        computes it again. See docs/functions.md and docs/caching.md.

        >>> Tracker(Tracker.IN_MEMORY).track(pow, args=[2, 10])
        1024
        """
        from .functions import track_call

        return track_call(self, func, args, kwargs, params, cache_force)

    def wrap(self, params: Mapping[Any, Any] | None = None) -> Any:
        """A decorator: every call of the function is ``track``-ed (with ``params``).

        >>> tracker = Tracker(Tracker.IN_MEMORY)
        >>> @tracker.wrap(params={"name": "foofoo"})
        ... def foo(a: int, b: str):
        ...     return a + len(b)
        >>> foo(1, "hello"), tracker.latest["name"]
        (6, 'foofoo')
        """
        from .functions import wrap

        if callable(params) and not isinstance(params, Mapping):  # bare @tracker.wrap
            return wrap(self)(params)
        return wrap(self, params)

    def _generate_cache_key(self, func: Any, args: Any = None, kwargs: Any = None, params: Any = None) -> str | None:
        """The cache key of a call, as ``track`` builds it, or None when an argument is
        unhashable. ``params`` are the call's params; the tracker's params are part of
        the key too, the call's overriding them."""
        from .cache import Uncacheable, cache_key

        try:
            return cache_key(func, args or (), kwargs or {}, {**self.params, **(params or {})})
        except Uncacheable:
            return None
