"""Naming rules for tables and columns, and how Python values are stored.

Everything here is pure: no I/O. The store and the Tracker call it on the hot
path, so the common cases (str/int/float/bool/None) are checked first.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import json
import math
import pathlib
import re
import uuid
from collections.abc import Hashable
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: Columns every row has, set by the Tracker.
TIMESTAMP = "timestamp"
TRACK_ID = "track_id"
BASE_COLUMNS = {TIMESTAMP: "TEXT", TRACK_ID: "TEXT"}

#: Tables xetrack keeps for itself inside the same file.
ASSETS_TABLE = "assets"
INTERNAL_PREFIX = "xetrack_"
ASSET_COUNTS = INTERNAL_PREFIX + "asset_counts"

_TABLE_NAME = re.compile(r"[A-Za-z0-9_]+\Z")
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_]")


class NotPlainValue(TypeError):
    """A value that is no plain SQL value: the Tracker stores it as an asset instead."""


#: Values stored as they are. bool is listed apart from int on purpose.
PLAIN_TYPES = (str, int, float, bool, type(None))


def quote(identifier: str) -> str:
    """Quote an SQL identifier: ``a"b`` -> ``"a""b"``. Every name we emit goes through here."""
    return '"' + identifier.replace('"', '""') + '"'


def is_internal_table(name: str) -> bool:
    lowered = name.lower()
    return lowered == ASSETS_TABLE or lowered.startswith(INTERNAL_PREFIX) or lowered.startswith("sqlite_")


def validate_table_name(name: Any) -> str:
    """Return ``name`` if it can name an experiment table, else raise ValueError/TypeError.

    >>> validate_table_name("model_experiments")
    'model_experiments'
    """
    if not isinstance(name, str):
        raise TypeError(f"Table name must be a str, got {type(name).__name__}: {name!r}")
    if not _TABLE_NAME.match(name):
        raise ValueError(f"Table name {name!r} is invalid: use letters, digits and underscores only")
    if is_internal_table(name):
        raise ValueError(
            f"Table name {name!r} is reserved: 'assets', 'sqlite_*' and 'xetrack_*' "
            "tables are kept by SQLite or xetrack itself"
        )
    return name


def column_name(key: Hashable) -> str:
    """Turn a logged key into a column name.

    Every character outside ``[A-Za-z0-9_]`` becomes ``_`` and int keys become their
    digits, as xetrack 0.7.0 did: ``'@@'`` is the column ``__``. Only what cannot be
    stored at all is refused: an empty key, or a key that is no str or int.

    >>> column_name("invalid key"), column_name(1), column_name("@@")
    ('invalid_key', '1', '__')
    """
    if isinstance(key, str):
        text = key
    elif isinstance(key, int) and not isinstance(key, bool):
        text = str(key)
    else:
        raise TypeError(f"Keys must be str or int, got {type(key).__name__}: {key!r}")
    if not text:
        raise ValueError("Empty key: every logged key needs a name")
    return _NOT_NAME_CHAR.sub("_", text)


def sql_type(value: Any) -> str | None:
    """The declared SQL type a new column gets from its first (already coerced) value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "REAL"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "BLOB"
    return "TEXT"


def _json_default(obj: Any) -> Any:
    item = getattr(obj, "item", None)  # numpy scalars
    if callable(item) and getattr(obj, "shape", None) == ():
        return item()
    tolist = getattr(obj, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, (decimal.Decimal, uuid.UUID, pathlib.PurePath)):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _dump_finite(obj: Any) -> str:
    """JSON for a structure holding NaN or inf: NaN -> null, +-inf -> +-1e999.

    ``1e999`` is valid JSON that Python, pandas and SQLite read back as infinity,
    whereas Python's own ``Infinity`` token is not JSON at all.
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return "null" if math.isnan(obj) else ("1e999" if obj > 0 else "-1e999")
    if isinstance(obj, dict):
        items = (json.dumps(k if isinstance(k, str) else json.dumps(k)) + ":" + _dump_finite(v) for k, v in obj.items())
        return "{" + ",".join(items) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_dump_finite(v) for v in obj) + "]"
    try:
        return json.dumps(obj, default=_json_default, allow_nan=False, ensure_ascii=False)
    except ValueError:  # a NaN inside something only _json_default could unpack
        return _dump_finite(_json_default(obj))


def to_json(value: Any, key: Any = None) -> str:
    """Serialize a dict/list/tuple as JSON text that SQLite's json functions accept."""
    try:
        return json.dumps(value, default=_json_default, allow_nan=False, ensure_ascii=False)
    except ValueError:
        return _dump_finite(value)  # NaN or inf somewhere inside
    except TypeError as exc:
        raise NotPlainValue(f"Value for key {key!r} cannot be stored as JSON: {exc}") from None


def coerce(value: Any, key: Any = None) -> Any:
    """Turn one logged value into what SQLite stores.

    None/NaN -> None; numpy scalars -> Python; datetimes -> ISO text; dict/list/tuple ->
    JSON text; Path/UUID/Decimal -> text; Enum -> its value. Anything else is not a
    plain value and raises NotPlainValue, a TypeError (the asset store takes those).
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is float:
        return None if value != value else value
    if kind is int:
        if INT64_MIN <= value <= INT64_MAX:
            return value
        raise ValueError(
            f"Value for key {key!r} is {value}, outside SQLite's 64-bit integer range "
            f"[{INT64_MIN}, {INT64_MAX}]: log it as a float or a str"
        )
    # Subclasses and foreign scalars, slower path.
    if isinstance(value, enum.Enum):
        return coerce(value.value, key)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return coerce(int(value), key)
    if isinstance(value, float):
        return coerce(float(value), key)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (dict, list, tuple)):
        return to_json(value, key)
    if isinstance(value, (decimal.Decimal, uuid.UUID, pathlib.PurePath)):
        return str(value)
    numpy_scalar = _numpy_scalar(value)
    if numpy_scalar is not _NOT_SCALAR:
        return coerce(numpy_scalar, key)
    raise NotPlainValue(
        f"Cannot log key {key!r}: a {type(value).__module__}.{type(value).__qualname__} is "
        "not a plain value (str, int, float, bool, None, datetime, dict, list, tuple)"
    )


_NOT_SCALAR = object()


def _numpy_scalar(value: Any) -> Any:
    """numpy/pandas scalar -> Python value, or _NOT_SCALAR."""
    module = type(value).__module__
    if module.startswith("numpy") and getattr(value, "shape", None) == ():
        kind = getattr(getattr(value, "dtype", None), "kind", "")
        if kind == "M":  # datetime64
            import pandas as pd

            return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()
        if kind == "m":  # timedelta64
            import pandas as pd

            return None if pd.isna(value) else pd.Timedelta(value).total_seconds()
        return value.item()
    if module.startswith("pandas"):
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
        if isinstance(value, pd.Timedelta):
            return value.total_seconds()
    return _NOT_SCALAR
