"""A column's logical type: what its values are, as pandas would see them, whatever
type the column was declared with. It decides the read-back dtype on every engine; each
engine records it beside the table (SQLite: store/sqlite/column_types.py; PostgreSQL:
its own SQL in store/postgres/).

- a column added for a None (or NaN) has no declared type; its first value sets the
  logical type;
- an INTEGER column that receives a float widens to REAL, as pandas widens ints to float64.

Nothing else changes a logical type: a str in a numeric column is stored as given and the
column reads back as ``object``.
"""

from __future__ import annotations

from collections.abc import Mapping


def kind_of(value: object) -> str | None:
    """The logical type a stored (coerced) value brings; None for None and NaN."""
    kind = type(value)
    if kind is float:
        return "REAL" if value == value else None
    if kind is int:
        return "INTEGER"
    if kind is str:
        return "TEXT"
    if kind is bool:
        return "BOOLEAN"
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "BLOB"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "REAL" if value == value else None
    return "TEXT"


def widened(current: str, proposed: str | None) -> str | None:
    """The logical type after a value of kind ``proposed`` arrives in a column of logical
    type ``current``; None when it stays as it is.

    >>> widened("", "INTEGER"), widened("INTEGER", "REAL"), widened("REAL", "INTEGER")
    ('INTEGER', 'REAL', None)
    """
    if not proposed or proposed == current:
        return None
    if not current:
        return proposed
    if current == "INTEGER" and proposed == "REAL":
        return "REAL"
    return None


def logical_types(declared: Mapping[str, str], recorded: Mapping[str, str]) -> dict[str, str]:
    """Name -> logical type: the recorded one first, the declared type as fallback."""
    if not recorded:
        return dict(declared)
    return {name: recorded.get(name.lower()) or decl for name, decl in declared.items()}
