"""Writing rows on SQLite: ``log()``'s checked INSERT, a new key's column, a batch, and
``set_value``/``delete_run``'s UPDATE and DELETE (a mixin of
:class:`~xetrack.store.sqlite.engine.SQLiteEngine`).

- ``log()`` with known keys is one cached INSERT in autocommit mode: one implicit
  transaction, nothing else.
- A new key takes the write lock (``BEGIN IMMEDIATE``), rereads the schema under it,
  adds what is still missing, inserts and records the new column's role, all in one
  transaction, so another process adding the same column at the same moment is
  harmless and a failed insert leaves no half-added columns behind.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ...errors import ColumnLimitError
from ...schema import quote, sql_type
from ..base import ROWID_ALIASES, AssetWrites, Roles, Where, pending_roles, rowid_alias, where_clause
from . import spill
from .assets import write_assets
from .busy import immediate, retry_busy
from .column_types import read_types, record_types
from .faults import raise_fault, surfaces_faults
from .guard import FileGuard, Slot
from .known_tables import MAX_CHECKED, KnownTable, batch_changes, check_distinct, insert_sql, stale_schema
from .limits import sqlite_limit
from .roles import read_roles, write_roles


class SQLiteWrites:
    """The writes of :class:`~xetrack.store.sqlite.engine.SQLiteEngine`."""

    path: str | None
    timeout: float
    _guard: FileGuard
    _main: Slot
    _tables: dict[str, KnownTable]
    _live: Callable[[], sqlite3.Connection]
    _table: Callable[..., KnownTable]
    _checked: Callable[..., KnownTable]
    _read_columns: Callable[[sqlite3.Connection, str], dict[str, str]]

    def _add_columns(
        self,
        conn: sqlite3.Connection,
        table: str,
        wanted: dict[str, str | None],
        known: KnownTable | None = None,
        preferred: frozenset[str] = frozenset(),
    ) -> tuple[KnownTable, list[str]]:
        """Inside a write transaction: add the wanted columns that are still missing
        (``known``: the schema, when the caller has just refreshed it under the lock);
        returns the schema and the wanted keys that did not fit, now spilled (recorded in
        :mod:`.spill`, in the order wanted), with the keys spilled before left out.

        A key takes a column while the table has fewer than SQLite's limit less one (the
        link) less :data:`.spill.RESERVE`; past that, only ``preferred`` keys (lower-cased:
        params, steps) take the reserve, so that a param or a step that comes after a
        thousand per-class metrics is still a column.

        A column wanted for None (type None) is added with no declared type: SQLite then
        stores every value exactly as given, and the first one sets its logical type.
        """
        if known is None:
            known = self._table(conn, table, refresh=True)
        before = {k.lower() for k in spill.spilled_keys(conn, table)}
        missing = {n: t or "" for n, t in wanted.items() if n.lower() not in known.lower and n.lower() not in before}
        if not missing:
            return known, []
        rest: list[str] = []
        limit = sqlite_limit(conn, "SQLITE_LIMIT_COLUMN", 2000)  # 2000: SQLite's default
        linked = spill.LINK.lower() in known.lower
        free = limit - len(known.columns) - (0 if linked else 1)  # the link takes a column
        if len(missing) > free - spill.RESERVE:
            if free < 0 and not linked:
                raise ColumnLimitError(
                    f"Table {table!r} has {len(known.columns)} columns, SQLite's limit of {limit}, and no room "
                    f"left for the link that keys past it need ({', '.join(list(missing)[:5])}"
                    f"{', ...' if len(missing) > 5 else ''}). Nothing was written. Log these keys into another table."
                )
            fit, rest = spill.split(limit, len(known.columns), linked, list(missing), preferred)
            missing = {n: missing[n] for n in fit}
            if rest and not linked:
                spill.add_link(conn, table)
                known.add(spill.LINK, "INTEGER")
            if rest:
                spill.register(conn, table, rest)
        if any(name.lower() in ROWID_ALIASES for name in missing):
            rowid_alias([*known.columns, *missing])  # refuse to shadow every rowid name
        raced = False
        for name, decl in missing.items():
            try:
                conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {decl}".rstrip())
            except sqlite3.OperationalError as exc:
                if "duplicate column name" not in str(exc):
                    raise
                raced = True  # someone else's column, maybe of another declared type
            known.add(name, decl)
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        if raced:  # we hold the write lock: reading the schema now gives it exactly
            known.load(self._read_columns(conn, table), version, read_types(conn, table))
        else:  # only our ALTERs moved the version
            known.version = version
        return known, rest

    # -- writes -----------------------------------------------------------------
    def insert(
        self, table: str, row: dict[str, Any], assets: AssetWrites | None = None, roles: Roles | None = None
    ) -> None:
        keys = tuple(row)
        values = tuple(row.values())
        # The same keys with values of the same types: an INSERT checked before.
        signature = (keys, tuple(map(type, values)))
        try:  # inline, not @surfaces_faults: no extra call per log()
            with self._guard.lock:
                main = self._main
                conn = main.conn if main.conn is not None and main.pid == os.getpid() else self._live()
                known = self._tables.get(table) or self._table(conn, table)
                sql = None if assets else known.insert_sql.get(signature)
                plan = None if assets or sql is not None else known.spill_plans.get(signature)
                if plan is not None and (not roles or self._roles_recorded(conn, table, known, roles)):
                    # keys checked before, some past the columns: the row and its spill rows
                    if self._spill_write(conn, table, plan, values):
                        return
                    known = self._table(conn, table)
                if sql is not None and (not roles or self._roles_recorded(conn, table, known, roles)):
                    try:
                        conn.execute(sql, values)
                        return
                    except sqlite3.OperationalError as exc:
                        if not stale_schema(exc):
                            raise
                        self._tables.pop(table, None)  # another connection reset the table
                        known = self._table(conn, table)
                check_distinct(keys)
                if (
                    not assets
                    and all(k.lower() in known.lower for k in keys)
                    and not known.changes(keys, values)
                    and (not roles or self._roles_recorded(conn, table, known, roles))
                ):
                    sql = insert_sql(table, keys)
                    conn.execute(sql, values)
                    if len(known.insert_sql) >= MAX_CHECKED:  # rows of ever-changing shapes
                        known.insert_sql = {}
                    known.insert_sql[signature] = sql
                    return

                if (
                    not assets
                    and known.spilled
                    and all(k.lower() in known.lower or k.lower() in known.spilled for k in keys)
                    and not known.changes(keys, values)
                    and (not roles or self._roles_recorded(conn, table, known, roles))
                ):  # known keys, some past the columns: the row and its spill rows, nothing else
                    spilled = known.spilled
                    at = {i: spilled[k.lower()] for i, k in enumerate(keys) if k.lower() not in known.lower}
                    wide = [i for i in range(len(keys)) if i not in at]
                    made = (insert_sql(table, [*(keys[i] for i in wide), spill.LINK]), wide, at)
                    if len(known.spill_plans) >= MAX_CHECKED:
                        known.spill_plans = {}
                    known.spill_plans[signature] = made
                    if self._spill_write(conn, table, made, values):
                        return
                    known = self._table(conn, table)

                # New columns, or a logical type or role to record: the path of every batch.
                retry_busy(
                    lambda: self._grow_and_write(conn, table, keys, [values], values.__getitem__, assets, roles),
                    self.timeout,
                    self.path,
                )
        except sqlite3.Error as exc:
            raise_fault(self, exc)
            raise

    def checked(self, table: str, keys: tuple[str, ...], types: tuple[type, ...]) -> Any:
        """A token for :meth:`insert_checked`: the INSERT this engine checked for rows of
        these keys and value types (None when it has checked none)."""
        known = self._tables.get(table)
        if known is None:
            return None
        sql = known.insert_sql.get((keys, types))
        return None if sql is None else (known, known.insert_sql, sql)

    def insert_checked(self, table: str, token: Any, values: tuple[Any, ...]) -> bool:
        """Insert a row of the keys and value types ``token`` was made for, with no check
        of its own. False (nothing written) when the token went stale: the caller takes
        the full :meth:`insert` instead."""
        known: KnownTable  # what checked() gave
        known, checked, sql = token
        try:  # inline, as in insert(): the fast path of log()
            with self._guard.lock:
                main = self._main
                conn = main.conn
                # A forked child finds a file's slots emptied (guard.py); only a private
                # in-memory guard needs the pid compared.
                if conn is None or (self.path is None and main.pid != os.getpid()):
                    conn = self._live()
                if self._tables.get(table) is not known or known.insert_sql is not checked:
                    return False
                try:
                    conn.execute(sql, values)
                except sqlite3.OperationalError as exc:
                    if not stale_schema(exc):
                        raise
                    self._tables.pop(table, None)  # another connection reset the table
                    return False
                return True
        except sqlite3.Error as exc:
            raise_fault(self, exc)
            raise

    def _spill_write(
        self, conn: sqlite3.Connection, table: str, plan: tuple[str, list[int], dict[int, str]], values: tuple[Any, ...]
    ) -> bool:
        """One row of keys checked before, some spilled: its row (``plan``'s INSERT of the
        column keys and the link) and its spill rows, in one write transaction (retried
        while the file is busy). False, with nothing written and the table's cached schema
        forgotten, when another connection reset the table meanwhile."""
        sql, wide, at = plan

        def write() -> None:
            with self._writing(conn, table):
                spill.insert_rows(conn, table, sql, [values], wide, at)

        try:
            retry_busy(write, self.timeout, self.path)
        except sqlite3.OperationalError as exc:
            if not stale_schema(exc):
                raise
            self._tables.pop(table, None)  # another connection reset the table
            return False
        return True

    def _roles_recorded(self, conn: sqlite3.Connection, table: str, known: KnownTable, roles: Roles) -> bool:
        """Whether the file records ``roles`` already, as this process knows it (the
        recorded roles are read once per schema version)."""
        if known.roles is None:
            known.roles = read_roles(conn, table)
        return not pending_roles(known.roles, roles)

    def _record(self, conn: sqlite3.Connection, table: str, known: KnownTable, proposed: dict[str, str]) -> None:
        """Inside a write transaction: record the logical types the values now written bring."""
        if proposed:
            known.logical.update(record_types(conn, table, proposed, known.columns))

    @contextmanager
    def _writing(self, conn: sqlite3.Connection, table: str) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``. On any error it rolls back and forgets the
        cached schema of ``table``, since columns added inside are gone again."""
        try:
            with immediate(conn):
                yield
        except BaseException:
            self._tables.pop(table, None)
            raise

    @surfaces_faults
    def insert_many(
        self,
        table: str,
        keys: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        first_value: Callable[[int], Any],
        assets: AssetWrites | None = None,
        kinds: Sequence[set[type]] | None = None,  # SQLite stores any value: not needed
        roles: Roles | None = None,
    ) -> None:
        check_distinct(keys)
        with self._guard.lock:
            conn = self._live()
            self._tables.get(table) or self._table(conn, table)  # a missing table: a clear error now
            retry_busy(
                lambda: self._grow_and_write(conn, table, keys, rows, first_value, assets, roles),
                self.timeout,
                self.path,
            )

    def _grow_and_write(
        self,
        conn: sqlite3.Connection,
        table: str,
        keys: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        first_value: Callable[[int], Any],
        assets: AssetWrites | None,
        roles: Roles | None = None,
    ) -> None:
        """The one schema-growth path (a log() with a new key, every log_batch): under the
        write lock, add the missing columns (another process may have added them: the
        schema is reread), record the logical types these values set and the roles not
        recorded yet, store the assets and insert ``rows``, all in one transaction."""
        with self._writing(conn, table):
            # The schema as the file has it now (reread only when its version moved).
            grown = self._table(conn, table, refresh=True)
            missing = {k: sql_type(first_value(i)) for i, k in enumerate(keys) if k.lower() not in grown.lower}
            if missing:
                preferred = frozenset({*spill.FIRST, *(k.lower() for k, r in (roles or {}).items() if r == "param")})
                grown, _ = self._add_columns(conn, table, missing, grown, preferred)
            self._record(conn, table, grown, batch_changes(grown, keys, rows, first_value))
            if assets:
                write_assets(conn, assets)
            spilled = {k.lower(): k for k in spill.spilled_keys(conn, table)} if missing else {}
            if spilled:
                grown.spilled = spilled  # read under the write lock: exact
            at = {i: spilled[k.lower()] for i, k in enumerate(keys) if k.lower() in spilled}
            if at:  # keys past the table's columns: the row, then its spill rows under its link
                wide = [i for i in range(len(keys)) if i not in at]
                sql = insert_sql(table, [*(keys[i] for i in wide), spill.LINK])
                spill.insert_rows(conn, table, sql, rows, wide, at)
            else:
                conn.executemany(insert_sql(table, keys), rows)
            if roles and not self._roles_recorded(conn, table, grown, roles):
                recorded = write_roles(conn, table, roles)
                if grown.roles is not None:
                    grown.roles.update(recorded)

    @surfaces_faults
    def update(self, table: str, values: dict[str, Any], where: Where | None) -> int:
        with self._guard.lock:
            conn = self._live()
            self._checked(conn, table, where)

            def write() -> int:
                with self._writing(conn, table):
                    grown, _ = self._add_columns(conn, table, {k: sql_type(v) for k, v in values.items()})
                    if not values:
                        return 0
                    spilled = {k.lower(): k for k in spill.spilled_keys(conn, table)}
                    wide = {k: v for k, v in values.items() if k.lower() not in spilled}
                    clause, params = where_clause(where)
                    if wide:
                        sets = ", ".join(f"{quote(k)} = ?" for k in wide)
                        cur = conn.execute(f"UPDATE {quote(table)} SET {sets}{clause}", [*wide.values(), *params])
                        count = cur.rowcount
                    else:
                        count = conn.execute(f"SELECT count(*) FROM {quote(table)}{clause}", params).fetchone()[0]
                    narrow = {spilled[k.lower()]: v for k, v in values.items() if k.lower() in spilled}
                    if narrow and count:
                        spill.set_values(conn, table, narrow, clause, params)
                    if count:  # a value stored: it may set or widen a logical type
                        self._record(conn, table, grown, grown.changes(tuple(values), tuple(values.values())))
                    return int(count)

            return retry_busy(write, self.timeout, self.path)

    @surfaces_faults
    def delete(self, table: str, where: Where | None) -> int:
        with self._guard.lock:
            conn = self._live()
            self._checked(conn, table, where)
            clause, params = where_clause(where)

            def write() -> int:
                with self._writing(conn, table):
                    spill.delete_rows(conn, table, clause, params)  # the rows' spill rows go with them
                    return conn.execute(f"DELETE FROM {quote(table)}{clause}", params).rowcount

            return retry_busy(write, self.timeout, self.path)
