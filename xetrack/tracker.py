"""The write side: a Tracker is one run (one ``track_id``) in one table."""

from __future__ import annotations

import itertools
import operator
import os
import random
import time
from typing import Any, Hashable, Iterable, Iterator, Mapping

from coolname import generate_slug

from .frames import to_backend
from .assets import HASH_LENGTH, AssetStore, compress_asset, is_asset_hash, pickle_asset
from .schema import (
    INT64_MAX,
    INT64_MIN,
    TIMESTAMP,
    TRACK_ID,
    NotPlainValue,
    coerce,
    column_name,
    validate_table_name,
)
from .store.base import AssetWrites, StreamAborted
from .store import IN_MEMORY, SKIP_INSERT, open_engine, shown
from .view import TableView

_PLAIN = frozenset((str, int, float, bool, type(None)))
_time_ns = time.time_ns
_monotonic = time.monotonic
#: log_batch on an engine that ``streams`` (PostgreSQL): from this many rows the batch
#: goes in chunks of STREAM_CHUNK, each checked and built while the last one is stored.
STREAM_ABOVE = 20_000
STREAM_CHUNK = 10_000


def _slots(types: tuple[type, ...], kind: type) -> Any:
    """A getter of the values of type ``kind``, always as a tuple (None if there are none)."""
    found = [i for i, t in enumerate(types) if t is kind]
    if not found:
        return None
    return operator.itemgetter(*found) if len(found) > 1 else operator.itemgetter(found[0], found[0])


class _Shape:
    """What ``log()`` knows of the previous row, to store the next one of the same keys
    and value types (plain ones only) without a per-key loop: the columns in order, the
    params appended, and the engine's token for the INSERT it checked for that shape.

    Two values still need a look, done in C passes over a tuple: a NaN float (stored as
    None, which the checked INSERT was not checked for) and a str of an asset hash's
    length (a reference to count). Either sends the row down the full path.
    """

    __slots__ = ("keys", "types", "columns", "tail", "params", "named", "token", "floats", "strs")

    def __init__(self, keys: tuple[Any, ...], types: tuple[type, ...], columns: tuple[str, ...],
                 tail: tuple[Any, ...], token: Any) -> None:
        self.keys, self.types, self.columns, self.tail, self.token = keys, types, columns, tail, token
        self.params = dict(zip(columns[len(keys):-2], tail))  # the params the row does not override
        self.named = columns[: len(keys)] == keys  # keys are their own column names
        self.floats = _slots(types, float)
        self.strs = _slots(types, str)


class _Clock:
    """Local timestamps ``YYYY-MM-DD HH:MM:SS.ffffff``, strictly increasing per run.

    Strictly increasing keeps ``(track_id, timestamp)`` unique within a run, even for
    rows logged in the same microsecond or in one batch.
    """

    def __init__(self) -> None:
        self._last = 0
        self._second = -1
        self._start = 0  # the first microsecond of that second
        self._prefix = ""

    def _prefix_of(self, second: int) -> str:
        if second != self._second:
            self._second = second
            self._start = second * 1_000_000
            self._prefix = time.strftime("%Y-%m-%d %H:%M:%S.", time.localtime(second))
        return self._prefix

    def now(self) -> str:
        # strftime runs once a second; a call within the second formats only the microseconds.
        micros = _time_ns() // 1000
        if micros <= self._last:
            micros = self._last + 1
        self._last = micros
        fraction = micros - self._start
        if not 0 <= fraction < 1_000_000:
            self._prefix_of(micros // 1_000_000)
            fraction = micros - self._start
        return self._prefix + "%06d" % fraction  # %-format: half the cost of an f-string spec

    def many(self, n: int) -> list[str]:
        start = max(time.time_ns() // 1000, self._last + 1)
        self._last = start + n - 1
        out: list[str] = []
        micros = start
        while micros <= self._last:
            second, fraction = divmod(micros, 1_000_000)
            stop = min(1_000_000, fraction + self._last - micros + 1)
            prefix = self._prefix_of(second)
            out.extend(map((prefix + "%06d").__mod__, range(fraction, stop)))
            micros += stop - fraction
        return out


class Tracker(TableView):
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
    """

    IN_MEMORY = IN_MEMORY
    SKIP_INSERT = SKIP_INSERT
    # What ``latest`` shows as None (see ``_own``): the keys of the last row this Tracker
    # logged, and the keys it set with set_value/set_where.
    _last_logged: Iterable[Hashable] = ()
    _set_keys: frozenset[str] = frozenset()
    # The previous row's shape, for log()'s fast path; None after anything that changes
    # what a row of the same keys would hold (set_params).
    _shape: _Shape | None = None
    # With log_system_params/log_network_params: the machine's readings, refreshed at most
    # every measurement_interval, and the last one, which every row carries after params.
    _readings: Any = None
    _system: dict[str, Any] = {}

    def __init__(
        self,
        db: str | os.PathLike[str] = "track.db",
        params: Mapping[Hashable, Any] | None = None,
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
        if self.log_system_params or self.log_network_params:
            from .system import SystemReadings

            self._readings = SystemReadings(self.measurement_interval, self.log_system_params, self.log_network_params)
        from .logs import TrackerLogger

        # Before the database: an unwritable log path fails with nothing created.
        self._logger = TrackerLogger(self, logs_path, logs_stdout, jsonl, logs_file_format)
        self._log_events = self._logger.has_sinks
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

    # -- identity ---------------------------------------------------------------
    @staticmethod
    def generate_track_id() -> str:
        """A new readable run id such as ``fierce-pudu-1649``."""
        return f"{generate_slug(2)}-{random.randint(1000, 9999)}"

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
        return self._logger

    def close(self) -> None:
        """Close the connections and the log files. Using the tracker again reopens them."""
        self._logger.close()
        super().close()

    # -- run lifecycle (the ``xetrack_runs`` side table; the wide table is untouched) --
    def start(self) -> "Tracker":
        """Mark this run ``running`` now, recording this process id and host.

        >>> tracker = Tracker(Tracker.IN_MEMORY).start()
        >>> tracker.end()
        """
        from .runs import mark_started

        mark_started(self._engine, self.table_name, self.track_id)
        self._started_as = self.track_id
        return self

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Mark this run ``finished`` (or ``failed``/``killed``, with ``error`` text)."""
        from .runs import mark_ended

        mark_ended(self._engine, self.table_name, self.track_id, status, error, self._started_as)
        self._started_as = None

    def __enter__(self) -> "Tracker":
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
                except Exception as end_error:  # the run's own error matters more
                    import warnings as _warnings

                    _warnings.warn(f"Could not mark run {self.track_id!r} {status}: {end_error}", stacklevel=2)
        finally:
            self.close()

    def log_predictions(
        self,
        predictions: Any,
        actuals: Any,
        metrics: Iterable[str] = ("rmse", "mae", "r2"),
        name: str | None = None,
    ) -> dict[str, Any]:
        """Score ``predictions`` against ``actuals``, log the scores as one row of this
        run (``{name}_{metric}`` when ``name`` is given) and keep the pairs, read back
        with ``Reader.predictions(track_id)``. Metrics: mse, rmse, mae, r2, mape,
        max_error, accuracy. Bad input raises before anything is written.

        >>> Tracker(Tracker.IN_MEMORY).log_predictions([1, 2], [1, 4], ["mae"])["mae"]
        1.0
        """
        from .runs import prediction_metrics, store_predictions

        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty str or None, got {name!r}")
        scores, p, a = prediction_metrics(predictions, actuals, metrics)
        row = self.log({(f"{name}_{k}" if name else k): v for k, v in scores.items()})
        store_predictions(self._engine, self.table_name, self.track_id, name or "", p, a)
        return row

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
            c for c in frame.columns
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

    # -- writing ----------------------------------------------------------------
    def _name(self, key: Hashable) -> str:
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = column_name(key)
        return name

    def _row(self, data: Mapping[Hashable, Any]) -> tuple[dict[str, Any], AssetWrites | None]:
        """The row as stored, and the assets it brings (None when it brings none)."""
        if type(data) is not dict and not isinstance(data, Mapping):  # ABC checks cost 1 us
            raise TypeError(f"log() takes a dict, got {type(data).__name__}: {data!r:.80}")
        row: dict[str, Any] = {}
        names = self._names
        writes: AssetWrites | None = None
        for key, value in data.items():
            name = names.get(key) or self._name(key)
            if name in row:
                raise ValueError(f"Keys in one row name the same column {name!r}: {list(data)}")
            kind = type(value)
            if kind is float:
                if value != value:
                    value = None
            elif kind is str:
                if len(value) == HASH_LENGTH and is_asset_hash(value):
                    writes = writes or AssetWrites()
                    writes.refs[value] = 1  # logging a hash points at the stored object
            elif not (value is None or kind is bool or (kind is int and INT64_MIN <= value <= INT64_MAX)):
                try:
                    value = coerce(value, key)
                except NotPlainValue:
                    writes = writes or AssetWrites()
                    value = self._asset(value, key, writes)
            row[name] = value
        for name, value in self._params.items():
            if name not in row:
                row[name] = value
        for name, value in self._system.items():
            if name not in row:
                row[name] = value
        row[TIMESTAMP] = self._clock.now()
        row[TRACK_ID] = self.track_id
        return row, writes

    def _asset(self, value: Any, key: Hashable, writes: AssetWrites) -> str:
        """Pickle an object for the asset store; its bytes travel only if not stored yet."""
        digest, data = pickle_asset(value, key)
        known = digest in writes.blobs or digest in self._stored_assets
        if not known and not self._engine.has_asset(digest):
            writes.blobs[digest] = compress_asset(data) if self.compress else data
        writes.refs[digest] = 1
        return digest

    def log(self, data: Mapping[Hashable, Any]) -> dict[str, Any]:
        """Store one row: ``data`` plus params, ``timestamp`` and ``track_id``.

        A key seen for the first time adds its column. A value that is not a plain
        value (a model, an array) is stored once in the asset store and the row holds
        its hash. Returns the row as stored.

        >>> Tracker(Tracker.IN_MEMORY).log({"accuracy": 0.9})["accuracy"]
        0.9
        """
        if self._readings is not None and _monotonic() >= self._readings.due:
            self._take_reading()
        shape = self._shape
        if shape is not None and type(data) is dict and tuple(data) == shape.keys:
            # The previous row's keys: if the value types match too, the engine's checked
            # INSERT takes the values as they are, params and stamps appended.
            values = tuple(data.values())
            if tuple(map(type, values)) == shape.types:
                floats, strs = shape.floats, shape.strs
                total = 0.0 if floats is None else sum(floats(values))  # a NaN makes it NaN
                if total == total and (strs is None or HASH_LENGTH not in map(len, strs(values))):
                    stamp, track_id = self._clock.now(), self._track_id
                    values += shape.tail + (stamp, track_id)
                    try:
                        done = self._engine.insert_checked(self.table_name, shape.token, values)
                    except OverflowError:  # an int beyond 64 bits: the full path says so
                        done = False
                    if done:
                        if shape.named:  # the row as stored is data, params, stamp and id
                            row = data.copy()
                            if shape.params:
                                row.update(shape.params)
                            row[TIMESTAMP] = stamp
                            row[TRACK_ID] = track_id
                        else:
                            row = dict(zip(shape.columns, values))
                        self._last_logged = row
                        if self._log_events:
                            self._logger.track(row)
                        return row
                    self._shape = None
        row, writes = self._row(data)
        roles = self._roles(row)
        self._engine.insert(self.table_name, row, writes, roles)
        if roles is not None:
            self._kinds_noted.update(row)
        self._last_logged = row
        if writes:
            self._stored_assets.update(writes.blobs)
        else:
            self._remember_shape(data, row)
        if self._log_events:
            self._logger.track(row)
        return row

    def _take_reading(self) -> None:
        """A new reading of the machine for the rows to come (their params-like tail
        changes, so the fast path's shape is made again)."""
        self._system = self._readings.read()
        self._shape = None

    def _remember_shape(self, data: Mapping[Hashable, Any], row: dict[str, Any]) -> None:
        """After a row went the full way: keep its shape for the fast path of ``log()``
        if its values were plain and stored as given, and the engine checked its INSERT."""
        self._shape = None
        if type(data) is not dict:
            return
        keys = tuple(data)
        types = tuple(map(type, data.values()))
        columns = tuple(row)
        stored = tuple(map(type, row.values()))
        # A NaN stored as None, or a coerced value, shows as a different type in the row.
        if not _PLAIN.issuperset(types) or stored[: len(types)] != types:
            return
        if columns[-2:] != (TIMESTAMP, TRACK_ID) or len(set(columns)) != len(columns):
            return  # a row that sets timestamp or track_id itself goes the full way
        token = self._engine.checked(self.table_name, columns, stored)
        if token is not None:
            tail = tuple(row.values())[len(types):-2]  # the params the row does not override
            self._shape = _Shape(keys, types, columns, tail, token)

    def _roles(self, row: Mapping[str, Any]) -> dict[str, str] | None:
        """The roles of the row's columns this Tracker has not seen recorded, for the
        engine to record with the row: a param (it came through ``params=``/``set_params``
        and the row did not override it) or a metric (a number logged). Other values are
        left to the guess of ``runs()``. None when every column was seen."""
        noted = self._kinds_noted
        new = [k for k in row if k not in noted]
        if not new:
            return None
        params = self._params
        roles: dict[str, str] = {}
        for k in new:
            value = row[k]
            if k in params and value == params[k]:
                roles[k] = "param"
            elif type(value) in (int, float) and k not in (TIMESTAMP, TRACK_ID):
                roles[k] = "metric"
        return roles

    # -- run metadata: tags (see xetrack.meta) -------------------------------------
    def set_tag(self, key: str, value: Any) -> None:
        """Label this run; tags can change after the run and show in ``runs()`` as ``tags.<key>``.

        >>> t = Tracker(Tracker.IN_MEMORY); t.set_tag("team", "vision")
        >>> t.tags
        {'team': 'vision'}
        """
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags of this run at once (values are kept as text)."""
        from . import meta

        meta.set_tags(self._engine, self.table_name, self.track_id, tags)

    @property
    def tags(self) -> dict[str, str]:
        """This run's tags."""
        from . import meta

        return meta.get_tags(self._engine, self.table_name, self.track_id)

    def log_batch(self, data: Iterable[Mapping[Hashable, Any]]) -> int:
        """Store many rows in one transaction; returns how many were written.

        Each row gets params, ``track_id`` and its own increasing ``timestamp``.

        >>> Tracker(Tracker.IN_MEMORY).log_batch([{"x": i} for i in range(3)])
        3
        """
        rows = data if isinstance(data, list) else list(data)
        if not rows:
            return 0
        if self._readings is not None and _monotonic() >= self._readings.due:
            self._take_reading()
        if self._engine.streams and len(rows) >= STREAM_ABOVE and not self._log_events:
            streamed = self._stream(rows)
            if streamed:
                return streamed
        keys, values, kinds = self._batch_fast(rows)
        writes = None
        if keys is None:
            keys, values, writes = self._batch_general(rows)
        try:
            roles = self._roles(dict(zip(keys, values[0])))
            self._engine.insert_many(self.table_name, keys, values, _first_value_finder(values), writes, kinds,
                                     roles)
            self._batch_stored(rows, keys)
        except OverflowError:  # an int beyond 64 bits slipped through the fast path
            self._batch_general(rows)  # raises the clear error
            raise
        if writes:
            self._stored_assets.update(writes.blobs)
        if self._log_events:
            self._logger.track_many(keys, values)
        return len(values)

    def _batch_fast(self, rows: list[Any]) -> tuple[Any, Any, Any]:
        """Rows that share the first row's keys and hold only plain values, unchanged,
        with each column's value types (the engine needs them; found here once)."""
        first = rows[0]
        if not isinstance(first, Mapping):
            return None, None, None
        order = tuple(first)
        names = tuple(self._name(k) for k in order)
        if len(set(names)) != len(names) or TIMESTAMP in names or TRACK_ID in names:
            return None, None, None
        width = len(order)
        # C-level passes, no Python loop per row: every row a dict with the first row's
        # keys (same count, and each key found), its values picked in that key order.
        if not width or set(map(type, rows)) != {dict} or set(map(len, rows)) != {width}:
            return None, None, None
        pick = operator.itemgetter(*order)
        try:
            picked = list(map(pick, rows))
        except KeyError:
            return None, None, None
        data = picked if width > 1 else [(value,) for value in picked]
        kinds = None
        if self._engine.wants_kinds:  # each column's types: one pass per column
            kinds = [set(map(type, map(operator.itemgetter(j), data))) for j in range(width)]
            found = set().union(*kinds)
        else:  # only whether all are plain: one pass over every value
            found = set(map(type, itertools.chain.from_iterable(data)))
        if not found <= _PLAIN:
            return None, None, None
        # SQLite itself stores a NaN float as NULL.
        extra = {n: v for n, v in self._params.items() if n not in names}
        extra.update((n, v) for n, v in self._system.items() if n not in names and n not in extra)
        keys = names + tuple(extra) + (TIMESTAMP, TRACK_ID)
        tail = tuple(extra.values())
        # C-level passes: (stamp, track_id) per row, params before them, the row before all.
        ends: Iterable[tuple[Any, ...]] = zip(self._clock.many(len(data)), itertools.repeat(self.track_id))
        if tail:
            ends = map(tuple.__add__, itertools.repeat(tail), ends)
        if kinds is not None:
            kinds += [{type(v)} for v in tail] + [{str}, {str}]
        return keys, list(map(tuple.__add__, data, ends)), kinds

    def _stream(self, rows: list[Any]) -> int:
        """A big batch sent in chunks (an engine with ``streams``: PostgreSQL's COPY), so
        that checking and building the next chunk overlaps with storing the last one.
        0 when it must go whole: rows :meth:`_batch_fast` does not take, a column empty in
        the first chunk (the whole batch decides its type), or anything the engine
        aborts the stream for (nothing of it is written then)."""
        size = STREAM_CHUNK
        keys, values, kinds = self._batch_fast(rows[:size])
        if keys is None:
            return 0
        first_value = _first_value_finder(values)
        if any(first_value(i) is None for i in range(len(keys))):
            return 0

        def chunks() -> Iterator[tuple[list[tuple[Any, ...]], Any]]:
            yield values, kinds
            for start in range(size, len(rows), size):
                more_keys, more, more_kinds = self._batch_fast(rows[start:start + size])
                if more_keys != keys:
                    raise StreamAborted(f"rows {start:,} on hold other keys or values than plain ones")
                yield more, more_kinds

        try:
            roles = self._roles(dict(zip(keys, values[0])))
            self._engine.insert_stream(self.table_name, keys, chunks(), first_value, roles)
        except (StreamAborted, OverflowError):  # the whole batch's path says what was wrong
            return 0
        self._batch_stored(rows, keys)
        return len(rows)

    def _batch_stored(self, rows: list[Any], keys: tuple[str, ...]) -> None:
        """After a batch is stored (the roles of its new keys with it): remember its last row."""
        self._last_logged = rows[-1]
        self._kinds_noted.update(keys)

    def _batch_general(
        self, rows: list[Any]
    ) -> tuple[tuple[str, ...], list[tuple[Any, ...]], AssetWrites | None]:
        built, writes = [], None
        for data in rows:
            row, row_writes = self._row(data)
            built.append(row)
            if row_writes:
                writes = writes or AssetWrites()
                writes.blobs.update(row_writes.blobs)
                writes.refs.update(row_writes.refs)
        keys: dict[str, None] = {}
        for row in built:
            keys.update(dict.fromkeys(row))
        order = tuple(keys)
        return order, [tuple(row.get(k) for k in order) for row in built], writes

    def set_params(self, params: Mapping[Hashable, Any]) -> None:
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

    # -- assets -----------------------------------------------------------------
    @property
    def assets(self) -> AssetStore:
        """Every object stored in this file, by hash (a mapping with ``len()``)."""
        return AssetStore(self._engine)

    def get(self, hash: str) -> Any:
        """The object stored under ``hash`` (as logged), or None when there is none.

        >>> t = Tracker(Tracker.IN_MEMORY)
        >>> t.get(t.log({"obj": {1, 2}})["obj"])
        {1, 2}
        """
        return self.assets.get(hash)

    def remove_asset(self, hash: str, column: Hashable) -> int:
        """Delete the object stored under ``hash`` and set ``column`` to NULL in the rows
        of this table that held it (every run). Returns the number of rows changed."""
        from .assets import refuse_model_asset

        name = self._resolve_column(column)
        refuse_model_asset(self._engine, hash)
        existed = self._engine.has_asset(hash)
        changed = self._engine.asset_delete(hash, self.table_name, name)
        self._stored_assets.discard(hash)
        if not existed and not changed:
            raise KeyError(f"No asset {hash!r} in {self.db!r}, and no row of {name!r} holds it")
        return changed

    # -- artifacts and models (docs/artifacts.md, docs/models.md) --------------------
    def log_artifact(self, path_or_bytes: Any, name: str | None = None, type: str | None = None) -> str:
        """Keep a file (a path), bytes, a matplotlib figure (as PNG) or a DataFrame (as
        Parquet) with this run; returns its content hash.

        The bytes go into the database file once, however many runs or names share them;
        ``name`` defaults to the file's name (for bytes, the hash). Logging a name again
        in this run replaces the entry.

        >>> Tracker(Tracker.IN_MEMORY).log_artifact(b"a,b\\n1,2\\n", name="data.csv")
        'c4c9955cf157700b'
        """
        from .artifacts import record, source_of

        return record(self._engine, self.table_name, self.track_id, source_of(path_or_bytes), name, type)

    def log_artifacts(self, folder: str | os.PathLike[str], prefix: str | None = None) -> dict[str, str]:
        """Keep every file under ``folder`` with this run, named by its path relative to
        the folder (under ``prefix/`` when given); returns ``{name: hash}``.

        >>> tracker.log_artifacts("outputs", prefix="epoch-3")  # doctest: +SKIP
        {'epoch-3/model.pt': '53425a65a40a49f4', 'epoch-3/plots/loss.png': '9c1d0e3b77a2f415'}
        """
        from .artifacts import check_name, folder_files

        base = None if prefix is None else check_name(prefix)
        return {
            name: self.log_artifact(path, name=name)
            for name, path in ((f"{base}/{rel}" if base else rel, path) for rel, path in folder_files(folder))
        }

    def register_model(
        self, name: str, model_or_hash: Any, alias: str | None = None, description: str | None = None
    ) -> int:
        """Record the next version of model ``name`` from this run and return its number.

        ``model_or_hash`` is the model (pickled into the asset store, once) or the hash of
        something stored already (by ``log()`` or ``log_artifact()``). ``alias`` (e.g.
        ``'production'``) is moved to the new version.

        >>> Tracker(Tracker.IN_MEMORY).register_model("iris", {"weights": [0.1, 0.2]})
        1
        """
        from .models import register

        return register(
            self._engine, self.table_name, self.track_id, name, model_or_hash, alias, description, self.compress
        )

    def set_model_alias(self, name: str, version: int, alias: str) -> None:
        """Point ``alias`` of model ``name`` at ``version`` (an alias names one version)."""
        from .models import set_alias

        set_alias(self._engine, name, version, alias)

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

    # -- tracked functions ------------------------------------------------------
    def track(
        self,
        func: Any,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        params: Mapping[Hashable, Any] | None = None,
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

    def wrap(self, params: Mapping[Hashable, Any] | None = None) -> Any:
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

    def _generate_cache_key(
        self, func: Any, args: Any = None, kwargs: Any = None, params: Any = None
    ) -> str | None:
        """The cache key of a call, as ``track`` builds it, or None when an argument is
        unhashable. ``params`` are the call's params; the tracker's params are part of
        the key too, the call's overriding them."""
        from .cache import Uncacheable, cache_key

        try:
            return cache_key(func, args or (), kwargs or {}, {**self.params, **(params or {})})
        except Uncacheable:
            return None


def _first_value_finder(values: list[tuple[Any, ...]]):
    def first_value(i: int) -> Any:
        for row in values:
            if row[i] is not None and row[i] == row[i]:  # NaN counts as empty
                return row[i]
        return None

    return first_value
