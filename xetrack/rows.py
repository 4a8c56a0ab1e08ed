"""``Tracker.log()``: one row built, stored and remembered, with its fast path.

A row as stored is the data, then the params it does not override, the machine's last
reading (with ``log_system_params``/``log_network_params``), ``timestamp`` and
``track_id``. After a row of plain values went the full way (:meth:`RowWriter._row`, the
engine's ``insert``), its shape (:class:`_Shape`) lets the next row of the same keys and
value types go straight to the engine's checked INSERT, without a per-key loop.

:class:`RowWriter` is a part of :class:`xetrack.tracker.Tracker`, which sets the
attributes it reads; ``log_batch`` (xetrack.batch) builds its rows with the same methods.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Hashable, Mapping
from typing import Any

from .assets import HASH_LENGTH, compress_asset, is_asset_hash, pickle_asset
from .schema import (
    INT64_MAX,
    INT64_MIN,
    TIMESTAMP,
    TRACK_ID,
    NotPlainValue,
    coerce,
    column_name,
)
from .store.base import AssetWrites, Engine

#: The types a row stores as they are (anything else is coerced or becomes an asset).
PLAIN_TYPES = frozenset((str, int, float, bool, type(None)))
_time_ns = time.time_ns
_monotonic = time.monotonic


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

    def __init__(
        self,
        keys: tuple[Any, ...],
        types: tuple[type, ...],
        columns: tuple[str, ...],
        tail: tuple[Any, ...],
        token: Any,
    ) -> None:
        self.keys, self.types, self.columns, self.tail, self.token = keys, types, columns, tail, token
        self.params = dict(zip(columns[len(keys) : -2], tail))  # the params the row does not override
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
        return self._prefix + "%06d" % fraction  # noqa: UP031 - %-format: half the cost of an f-string spec

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


class RowWriter:
    """The part of a Tracker that writes one row: ``log()``, and what it and ``log_batch``
    share: column names of keys, a row as stored, its assets, the roles of new columns
    and the machine's readings."""

    # Set by Tracker.__init__ (annotations only: the instances hold them).
    _engine: Engine
    table_name: str
    track_id: str
    _track_id: str
    _names: dict[Hashable, str]
    _params: dict[str, Any]
    _clock: _Clock
    _stored_assets: set[str]
    _kinds_noted: set[str]
    _last_logged: Any
    _log_events: bool
    logger: Any
    compress: bool
    # The previous row's shape, for log()'s fast path; None after anything that changes
    # what a row of the same keys would hold (set_params).
    _shape: _Shape | None = None
    # With log_system_params/log_network_params: the machine's readings, refreshed at most
    # every measurement_interval, and the last one, which every row carries after params.
    _readings: Any = None
    _system: dict[str, Any] = {}

    def _name(self, key: Hashable) -> str:
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = column_name(key)
        return name

    def _row(self, data: Mapping[Any, Any]) -> tuple[dict[str, Any], AssetWrites | None]:
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

    def log(self, data: Mapping[Any, Any]) -> dict[str, Any]:
        """Store one row: ``data`` plus params, ``timestamp`` and ``track_id``.

        A key seen for the first time adds its column. A value that is not a plain
        value (a model, an array) is stored once in the asset store and the row holds
        its hash. Returns the row as stored.

        >>> from xetrack import Tracker
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
                            self.logger.track(row)
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
            self.logger.track(row)
        return row

    def _take_reading(self) -> None:
        """A new reading of the machine for the rows to come (their params-like tail
        changes, so the fast path's shape is made again)."""
        self._system = self._readings.read()
        self._shape = None

    def _remember_shape(self, data: Mapping[Any, Any], row: dict[str, Any]) -> None:
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
        if not PLAIN_TYPES.issuperset(types) or stored[: len(types)] != types:
            return
        if columns[-2:] != (TIMESTAMP, TRACK_ID) or len(set(columns)) != len(columns):
            return  # a row that sets timestamp or track_id itself goes the full way
        token = self._engine.checked(self.table_name, columns, stored)
        if token is not None:
            tail = tuple(row.values())[len(types) : -2]  # the params the row does not override
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
