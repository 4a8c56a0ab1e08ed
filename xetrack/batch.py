"""``Tracker.log_batch()``: many rows in one transaction.

Rows that share the first row's keys and hold only plain values go as they are, checked
by C-level passes (:meth:`BatchWriter._batch_fast`); any other batch is built row by row
as ``log()`` builds one. On an engine that ``streams`` (PostgreSQL's COPY), a big batch
goes in chunks, each checked and built while the last one is stored.

:class:`BatchWriter` is a part of :class:`xetrack.tracker.Tracker`: a
:class:`xetrack.rows.RowWriter` that also writes batches.
"""

from __future__ import annotations

import itertools
import operator
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .rows import PLAIN_TYPES, RowWriter
from .schema import TIMESTAMP, TRACK_ID
from .store.base import AssetWrites, StreamAborted

_monotonic = time.monotonic
#: log_batch on an engine that ``streams`` (PostgreSQL): from this many rows the batch
#: goes in chunks of STREAM_CHUNK, each checked and built while the last one is stored.
STREAM_ABOVE = 20_000
STREAM_CHUNK = 10_000


class BatchWriter(RowWriter):
    """The part of a Tracker that writes many rows at once: ``log_batch()``, with the
    row building of :class:`RowWriter` (``_row``, ``_name``, ``_roles``, readings)."""

    def log_batch(self, data: Iterable[Mapping[Any, Any]]) -> int:
        """Store many rows in one transaction; returns how many were written.

        Each row gets params, ``track_id`` and its own increasing ``timestamp``.

        >>> from xetrack import Tracker
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
            self._engine.insert_many(self.table_name, keys, values, _first_value_finder(values), writes, kinds, roles)
            self._batch_stored(rows, keys)
        except OverflowError:  # an int beyond 64 bits slipped through the fast path
            self._batch_general(rows)  # raises the clear error
            raise
        if writes:
            self._stored_assets.update(writes.blobs)
        if self._log_events:
            self.logger.track_many(keys, values)
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
        if not found <= PLAIN_TYPES:
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
                more_keys, more, more_kinds = self._batch_fast(rows[start : start + size])
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

    def _batch_general(self, rows: list[Any]) -> tuple[tuple[str, ...], list[tuple[Any, ...]], AssetWrites | None]:
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


def _first_value_finder(values: list[tuple[Any, ...]]):
    """``first_value(i)``: the first value of column ``i`` that is not None or NaN (None
    when there is none): an engine declares a new column by its type."""

    def first_value(i: int) -> Any:
        for row in values:
            if row[i] is not None and row[i] == row[i]:  # NaN counts as empty
                return row[i]
        return None

    return first_value
