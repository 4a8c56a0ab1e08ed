"""How values sit in PostgreSQL's strictly typed columns, and how they come back.

A new column takes the PostgreSQL type of its first value (``BIGINT``, ``DOUBLE
PRECISION``, ``TEXT``, ``BOOLEAN``, ``BYTEA``); a column first logged as None is
``JSONB``, which holds any later value as it is. A value that does not fit its
column's type (a str in a BIGINT column, a float in a BIGINT one) is stored as given
in the row's JSONB overflow column ``xetrack$overflow`` under the column's name, and
the column itself holds NULL in that row. Reads merge the overflow back, so the frame
shows every value where it was logged. See docs/postgres.md.

JSON has no bytes and no infinity, JSONB prints ``1e300`` as digits (which would read
back as an int) and has no -0: those are kept as a one-key object (``{"$bytes": base64}``,
``{"$float": "inf"}``, ``{"$float": "1e+300"}``, ``{"$float": "-0.0"}``). Logged dicts and
lists are JSON *text* already (:func:`xetrack.schema.coerce`), so a JSON object in a cell
is always one of these.

>>> fits("INTEGER", 3), fits("INTEGER", "three"), fits("", "three")
(True, False, True)
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ...frames import convert_column, empty_frame

try:  # pandas' own C routine, as in frames.py
    from pandas._libs.lib import to_object_array_tuples as _object_table  # type: ignore[attr-defined]  # private: pandas-stubs leave it out
except ImportError:  # pragma: no cover
    _object_table = None

ROW = "xetrack$row"  # row order: an identity column, as SQLite's rowid
OVERFLOW = "xetrack$overflow"  # values that do not fit their column's type, by column
HIDDEN = (ROW, OVERFLOW)
#: The longest identifier PostgreSQL keeps (NAMEDATALEN - 1 bytes); longer ones it cuts.
MAX_NAME_BYTES = 63
MAX_COLUMNS = 1600

#: Logical type (as the SQLite engine names it) -> the PostgreSQL type of a new column.
PG_TYPE = {
    "INTEGER": "BIGINT",
    "REAL": "DOUBLE PRECISION",
    "TEXT": "TEXT",
    "BOOLEAN": "BOOLEAN",
    "BLOB": "BYTEA",
    "": "JSONB",
}
#: ``format_type`` of a column -> its logical type.
LOGICAL = {
    "bigint": "INTEGER",
    "integer": "INTEGER",
    "smallint": "INTEGER",
    "double precision": "REAL",
    "real": "REAL",
    "text": "TEXT",
    "boolean": "BOOLEAN",
    "bytea": "BLOB",
    "jsonb": "",
}
#: Value types that always fit a column of that logical type (so a row of those types
#: needs no look at its values: the INSERT can be cached by type).
ALWAYS_FITS: dict[str, frozenset[type]] = {
    "INTEGER": frozenset((int, type(None))),
    "REAL": frozenset((float, type(None))),
    "TEXT": frozenset((str, type(None))),
    "BOOLEAN": frozenset((bool, type(None))),
    "BLOB": frozenset((bytes, type(None))),
    "": frozenset((type(None),)),
}
_EXACT_FLOAT = 2**53


def always_fits(decl: str) -> frozenset[type]:
    """The value types that always fit a column of logical type ``decl``; for a column of
    a type xetrack does not make (a TIMESTAMP made by hand), only None: every value is
    looked at, and one that does not fit goes to the overflow."""
    return ALWAYS_FITS.get(decl, _ONLY_NULL)


_ONLY_NULL: frozenset[type] = frozenset((type(None),))


def logical_of(pg_type: str) -> str:
    """The logical type of a column declared ``pg_type`` (others: upper-cased as is)."""
    return LOGICAL.get(pg_type.lower(), pg_type.upper())


def fits(decl: str, value: Any) -> bool:
    """Whether ``value`` is stored in a column of logical type ``decl`` as given."""
    kind = type(value)
    if value is None or decl == "":
        return True  # JSONB holds anything (encoded by to_json)
    if kind is int:
        return decl == "INTEGER" or (decl == "REAL" and -_EXACT_FLOAT <= value <= _EXACT_FLOAT)
    if kind is float:
        return decl == "REAL"
    if kind is str:
        return decl == "TEXT"
    if kind is bool:
        return decl == "BOOLEAN"
    if kind is bytes:
        return decl == "BLOB"
    return False


def to_json(value: Any) -> Any:
    """A stored value as a JSON value (bytes and non-finite floats tagged)."""
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            return {"$float": "nan" if value != value else ("inf" if value > 0 else "-inf")}
        text = repr(value)
        if "e" in text or "." not in text or text == "-0.0":  # JSONB prints 1e300 as digits (an int
            return {"$float": text}  # when read back), and its numbers have no -0
        return value
    if kind in (bytes, bytearray, memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def from_json(value: Any) -> Any:
    """The inverse of :func:`to_json`."""
    if type(value) is dict:
        if "$float" in value:
            return float(value["$float"])
        if "$bytes" in value:
            return base64.b64decode(value["$bytes"])
    return value


def merge_rows(
    rows: list[tuple[Any, ...]], names: Sequence[str], types: Sequence[str], untyped: Sequence[int]
) -> np.ndarray:
    """Fetched rows (the overflow last) as an object table of ``len(names)`` columns,
    each overflow value put back in its column and JSONB cells decoded.

    A bool in a numeric column (kept in the overflow, or in an untyped one) reads as 0 or 1, as SQLite (which
    stores bools as integers) reads it."""
    width = len(names)
    table: np.ndarray
    if _object_table is not None and rows:
        table = _object_table(rows)
    else:
        table = np.empty((len(rows), width + 1), dtype=object)
        for k, row in enumerate(rows):
            table[k, :] = row
    overflow = table[:, width]
    where = {name: j for j, name in enumerate(names)}
    for i in np.flatnonzero(overflow != None):  # noqa: E711 - elementwise
        for name, value in overflow[i].items():
            j = where.get(name)
            if j is not None:
                if type(value) is bool and types[j] in ("INTEGER", "REAL"):
                    value = int(value)
                table[i, j] = from_json(value)
    for j in untyped:
        column = table[:, j]
        numeric = types[j] in ("INTEGER", "REAL")
        for i in np.flatnonzero([type(v) is dict or (numeric and type(v) is bool) for v in column]):
            value = column[i]
            column[i] = int(value) if type(value) is bool else from_json(value)
    return table[:, :width]


def _boolean(column: np.ndarray) -> Any:
    """PostgreSQL gives Python bools (SQLite gives 0/1): the same ``boolean`` array."""
    mask = column == None  # noqa: E711
    values = column[~mask]
    if len(values) and all(type(v) is bool for v in values):
        out = np.zeros(len(column), dtype=bool)
        out[~mask] = values.astype(bool)
        return pd.arrays.BooleanArray(out, mask)
    ints = np.array([int(v) if type(v) is bool else v for v in column], dtype=object)
    return convert_column("BOOLEAN", ints)


def frame_of(names: Sequence[str], types: Sequence[str], table: np.ndarray) -> pd.DataFrame:
    """The frame the SQLite engine would build from the same values and logical types."""
    if not len(table):
        return empty_frame(list(names), list(types))
    data: dict[str, Any] = {}  # name -> the column's array
    for j, (name, decl) in enumerate(zip(names, types)):
        column = table[:, j]
        data[name] = _boolean(column) if decl == "BOOLEAN" else convert_column(decl, column)
    frame: pd.DataFrame = pd.DataFrame(data, copy=False)  # pandas-stubs type the constructor's result as Any
    return frame
