"""What a process knows of a SQLite table (:class:`KnownTable`), shared by every engine
on the file (``FileGuard.tables``), and the checks a row's write makes against it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from ...schema import quote
from ..logical_types import kind_of, logical_types

#: Checked INSERTs kept per table, by keys and value types.
MAX_CHECKED = 4096


class KnownTable:
    """What this process knows of one table: its columns and the INSERTs it has checked.

    ``version`` is the file's ``PRAGMA schema_version`` the columns were read at: when
    it has not moved, the cached columns are still exact and need no rereading.

    ``logical`` holds the logical types (:mod:`.column_types`) this process knows. It
    only decides when to record one; it may lag behind another process's records,
    which costs an extra check under the write lock, never a wrong read (reads take
    the recorded types from the file). ``insert_sql`` is keyed by the row's keys and
    the types of its values: such an INSERT was checked to change no logical type. It is
    replaced, never cleared in place, when it goes stale, so a :meth:`SQLiteEngine.checked`
    token that holds the old dict is known to be stale by identity alone.
    """

    __slots__ = ("columns", "lower", "logical", "insert_sql", "version", "roles", "spilled", "spill_plans")

    def __init__(self) -> None:
        self.columns: dict[str, str] = {}  # name -> declared type, table order
        self.lower: dict[str, str] = {}
        self.logical: dict[str, str] = {}  # name -> logical type
        self.insert_sql: dict[tuple[tuple[str, ...], tuple[type, ...]], str] = {}
        self.version = -1
        # column -> 'param'/'metric' as recorded (xetrack_kinds), read when first needed,
        # then kept up to date with what this process records. Like ``logical`` it may lag
        # behind another process's records: that costs a write transaction that rereads
        # the columns in question, never a wrong record.
        self.roles: dict[str, str] | None = None
        # lower-cased key -> key, of the keys past the columns (store/sqlite/spill.py), as
        # read under the write lock last; None until then. Only ever grows, like the file's.
        self.spilled: dict[str, str] | None = None
        # (keys, value types) -> (INSERT of the column keys and the link, their positions,
        # position -> spilled key): rows checked like ``insert_sql``'s, some keys spilled
        self.spill_plans: dict[tuple[tuple[str, ...], tuple[type, ...]], tuple[str, list[int], dict[int, str]]] = {}

    def load(self, columns: dict[str, str], version: int, recorded: dict[str, str]) -> None:
        if not set(columns) >= set(self.columns):
            self.insert_sql = {}  # columns went away (a reset): checked INSERTs are stale
            self.roles = None  # and so are the roles read with them
            self.spilled = None  # and the spilled keys
            self.spill_plans = {}
        self.columns = columns
        self.lower = {name.lower(): name for name in columns}
        self.logical = logical_types(columns, recorded)
        self.version = version

    def add(self, name: str, decl: str) -> None:
        self.columns[name] = decl
        self.lower[name.lower()] = name
        self.logical.setdefault(name, decl)

    def changes(self, keys: Sequence[str], values: Sequence[Any]) -> dict[str, str]:
        """Column -> kind, for the values that would change a logical type this
        process knows (a first value in an untyped column, a float in an int one)."""
        out: dict[str, str] = {}
        for key, value in zip(keys, values):
            kind = kind_of(value)
            if kind is None:
                continue
            name = self.lower.get(key.lower(), key)
            current = self.logical.get(name, "")
            if current != kind and (not current or (current == "INTEGER" and kind == "REAL")):
                out[name] = kind
        return out


def stale_schema(exc: BaseException) -> bool:
    text = str(exc)
    return "no such table" in text or "has no column named" in text


def batch_changes(
    known: KnownTable, keys: Sequence[str], rows: list[tuple[Any, ...]], first_value: Callable[[int], Any]
) -> dict[str, str]:
    """Column -> kind, for the logical types a batch sets or widens.

    Only untyped and INTEGER columns can change; an INTEGER one is scanned in C for a
    float (a NaN is no value), the other columns are not looked at.
    """
    out: dict[str, str] = {}
    for i, key in enumerate(keys):
        name = known.lower.get(key.lower(), key)
        current = known.logical.get(name, "")
        if not current:
            kind = kind_of(first_value(i))
            if kind is None:
                continue  # empty in every row
            if kind != "INTEGER":
                out[name] = kind
                continue
            out[name] = "INTEGER"
        elif current != "INTEGER":
            continue
        pick = itemgetter(i)
        if float in set(map(type, map(pick, rows))) and any(type(v) is float and v == v for v in map(pick, rows)):
            out[name] = "REAL"
    return out


def check_distinct(keys: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for key in keys:
        other = seen.setdefault(key.lower(), key)
        if other != key:
            raise ValueError(f"Keys {other!r} and {key!r} name the same column: SQLite column names ignore case")


def insert_sql(table: str, keys: Sequence[str]) -> str:
    names = ", ".join(quote(k) for k in keys)
    marks = ", ".join("?" * len(keys))
    return f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})"
