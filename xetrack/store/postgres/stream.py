"""A big ``log_batch`` on PostgreSQL as a stream: one transaction, one ``COPY``, fed
chunk by chunk while the Tracker prepares the next chunk.

The server takes about as long to store a chunk as the Tracker takes to check and
build the next one; streaming overlaps the two instead of doing them one after the
other. The stream is only an optimisation: anything it did not set up for (a chunk
with other keys, a value that would go to the JSONB overflow, keys past the table's
columns: :mod:`.spill`) aborts it with
:class:`~xetrack.store.base.StreamAborted` before anything is committed, and the caller
sends the batch whole. The values stored are exactly those of ``insert_many``: the same
placement (:func:`.pg_sql.place`, a NaN stored as NULL), the same logical types recorded
(:func:`.pg_sql.changes`, chunk by chunk, in order).

>>> engine.insert_stream("default", ("x", "timestamp", "track_id"), chunks, first)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..base import StreamAborted
from . import spill
from .sql import changes, check_names, copy_rows, place, planned, row_limit


class _Replay:
    """An iterable over ``chunks`` that can be iterated again from the start: the
    engine runs a write once more after a dropped connection."""

    def __init__(self, chunks: Iterable[Any]) -> None:
        self._source = iter(chunks)
        self._seen: list[Any] = []

    def __iter__(self) -> Iterator[Any]:
        yield from list(self._seen)
        for chunk in self._source:
            self._seen.append(chunk)
            yield chunk


class PostgresStreams:
    """:meth:`insert_stream` for :class:`~xetrack.store.postgres.engine.PostgresEngine`."""

    streams = True
    _tables: Any
    _load: Any
    _grow: Any
    _record: Any
    _transact: Any
    _run: Any
    _stored: Any
    record_roles: Any

    def insert_stream(
        self,
        table: str,
        keys: tuple[str, ...],
        chunks: Iterable[tuple[list[tuple[Any, ...]], Any]],
        first_value: Callable[[int], Any],
        roles: Any = None,
    ) -> None:
        check_names(keys)
        replay = _Replay(chunks)
        head, _ = next(iter(replay))  # kept: a retry starts from it again
        first = dict(zip(keys, head[0]))  # how a retry tells whether the batch was stored

        def attempt(conn: Any) -> None:
            known = self._tables.get(table) or self._load(conn, table)
            names, wanted = planned(known, keys, first_value)

            def body(conn: Any) -> None:
                grown = self._grow(conn, table, wanted, spill.preferred(roles)) if wanted else known
                final = tuple(map(grown.name, names))
                if grown.spilled and any(n.lower() in grown.spilled for n in final):
                    raise StreamAborted(f"keys of table {table!r} are past its columns (spilled)")
                found: dict[str, str] = {}

                def rows() -> Iterator[tuple[Any, ...]]:
                    for chunk, kinds in replay:
                        step = changes(grown, final, chunk, kinds)
                        grown.logical.update(step)  # the next chunk sees them (forgotten on rollback)
                        found.update(step)
                        stored, spill = place(grown, final, chunk, kinds)
                        if spill:
                            raise StreamAborted(f"a value of table {table!r} needs the overflow column")
                        yield from stored

                copy_rows(conn, table, grown, final, rows(), queued=True)
                self._record(conn, table, grown, found)

            self._transact(conn, table, body)

        with row_limit(table, len(keys)):
            self._run(attempt, lambda conn: self._stored(conn, table, first), "a batch of rows")
        if roles:
            self.record_roles(table, roles)


__all__ = ["PostgresStreams"]
