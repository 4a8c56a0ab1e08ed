"""Turning query results into DataFrames, and the pandas/polars backend switch.

A column's logical type decides the dtype (the engine passes it: the type recorded in
``xetrack_columns``, else the declared one), so a mostly-empty INTEGER column is a
nullable ``Int64`` (exact up to 2**63-1), not float64, an INTEGER column that received
a float is float64, and BOOLEAN reads back as ``boolean``. A column holding values of
truly different kinds (text in a numeric column) stays ``object`` with each value as
stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

_BACKENDS = ("pandas", "polars", "auto")
_backend = "pandas"


def set_backend(name: str) -> None:
    """Choose the DataFrame type xetrack returns: 'pandas' (default), 'polars', or 'auto'.

    'auto' uses pandas when it is installed, and polars only when pandas is absent.

    >>> import xetrack
    >>> xetrack.set_backend("pandas")
    """
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"Unknown backend {name!r}: choose one of {', '.join(_BACKENDS)}")
    if name == "polars":
        _require_polars()
    _backend = name


def get_backend() -> str:
    """The backend frames are returned in: 'pandas' or 'polars' ('auto' resolved)."""
    if _backend == "auto":
        import importlib.util

        return "pandas" if importlib.util.find_spec("pandas") is not None else "polars"
    return _backend


def _require_polars() -> Any:
    try:
        import polars
    except ImportError:
        raise ImportError("The polars backend needs polars: pip install 'xetrack[polars]'") from None
    return polars


def to_backend(frame: pd.DataFrame) -> Any:
    """Hand a pandas frame to the user in the chosen backend."""
    if get_backend() == "polars":
        return _require_polars().from_pandas(frame)
    return frame


def to_backend_series(series: pd.Series) -> Any:
    if get_backend() == "polars":
        return _require_polars().from_pandas(series)
    return series


try:  # pandas' own C routines, the ones read_sql uses; the numpy path below is the fallback
    # (pandas' private C routines: pandas-stubs leaves them out)
    from pandas._libs.lib import maybe_convert_objects as _infer  # type: ignore[attr-defined]
    from pandas._libs.lib import to_object_array_tuples as _object_table  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a pandas without them
    _infer = _object_table = None
try:
    from pandas._libs.lib import is_integer_array as _all_ints  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _all_ints = None


def _integer(column: np.ndarray) -> Any:
    if _all_ints is not None and _all_ints(column, skipna=False):
        try:  # only ints, no NULL: one C check and one cast, nothing to compare after
            return pd.arrays.IntegerArray(column.astype(np.int64), np.zeros(len(column), dtype=bool))
        except OverflowError:
            pass  # beyond int64: the path below keeps the values as stored
    try:  # the common case, a column with no NULL: a C cast, checked below
        values = column.astype(np.int64)
    except (TypeError, ValueError, OverflowError):
        pass  # NULLs, text or huge values
    else:
        # astype truncates a REAL such as 1.5; comparing as floats catches that
        # (an int64 compares equal to its own float rounding, however large).
        if (column.astype(np.float64) == values).all():
            return pd.arrays.IntegerArray(values, np.zeros(len(values), dtype=bool))
        return column
    if _infer is not None:
        try:
            inferred = _infer(column, convert_to_nullable_dtype=True)
        except TypeError:  # pragma: no cover - another pandas signature
            pass
        else:
            # ints with NULLs -> IntegerArray; anything else (a REAL 1.5, text) keeps
            # every value as stored.
            return inferred if isinstance(inferred, pd.arrays.IntegerArray) else column
    mask = column == None  # noqa: E711 - elementwise on an object array
    filled = column.copy()
    filled[mask] = 0
    try:
        values = filled.astype(np.int64)
    except (TypeError, ValueError, OverflowError):
        return column  # text or out-of-range values: keep every value as stored
    if not (values == filled).all():  # a REAL such as 1.5 in an INTEGER column
        return column
    return pd.arrays.IntegerArray(values, mask)


def _real(column: np.ndarray) -> Any:
    if _infer is not None:
        try:
            inferred = _infer(column)
        except TypeError:  # pragma: no cover
            pass
        else:
            if isinstance(inferred, np.ndarray) and inferred.dtype.kind in "fiu":
                return inferred.astype(np.float64, copy=False)
            return column
    try:
        return pd.array(column, dtype="float64")
    except (TypeError, ValueError):
        return column


def _boolean(column: np.ndarray) -> Any:
    ints = _integer(column)
    if not isinstance(ints, pd.arrays.IntegerArray):
        return column
    mask = np.asarray(ints.isna())
    values = ints.to_numpy(dtype=np.int64, na_value=0)
    if not ((values == 0) | (values == 1)).all():
        return column
    return pd.arrays.BooleanArray(values.astype(bool), mask)


def _text(column: np.ndarray) -> Any:
    if _infer is not None:
        try:
            return _infer(column, convert_non_numeric=True)  # str dtype where pandas uses it
        except TypeError:  # pragma: no cover
            pass
    return pd.Series(column, copy=False).infer_objects().array


def _blob(column: np.ndarray) -> Any:
    return column


_CONVERTERS = {"INTEGER": _integer, "REAL": _real, "BOOLEAN": _boolean, "BLOB": _blob}


def frame_from_rows(
    names: Sequence[str],
    decltypes: Sequence[str],
    rows: list[tuple[Any, ...]],
    constants: Sequence[tuple[str, str, Any]] = (),
) -> pd.DataFrame:
    """Build a pandas frame from ``cursor.fetchall()`` rows using the logical types.

    ``constants``: (name, logical type, value) of columns that hold one value on every
    row and were left out of the query; they come first, typed as a fetched column of
    that value would be.
    """
    if not rows:
        return empty_frame([c[0] for c in constants] + list(names), [c[1] for c in constants] + list(decltypes))
    if _object_table is not None:
        table = _object_table(rows)
    else:
        table = np.empty((len(rows), len(names)), dtype=object)
        for i, row in enumerate(rows):
            table[i, :] = row
    del rows
    data = {}
    for name, decl, value in constants:
        data[name] = _repeated(decl, value, len(table))
    for j, (name, decl) in enumerate(zip(names, decltypes)):
        data[name] = convert_column(decl, table[:, j])
    return pd.DataFrame(data, copy=False)


def _repeated(decl: str, value: Any, n: int) -> Any:
    """``n`` copies of ``value``, as a fetched column of that value would read back."""
    one = np.empty(1, dtype=object)
    one[0] = value
    first = convert_column(decl, one)  # one conversion decides the dtype
    if isinstance(first, pd.arrays.ArrowStringArray) and type(value) is str:
        import pyarrow as pa  # the string dtype keeps its data in it

        repeated = pa.chunked_array([pa.repeat(pa.scalar(value, pa.large_string()), n)])
        # pandas takes large_string data and a dtype here; pandas-stubs types neither
        return pd.arrays.ArrowStringArray(repeated, dtype=first.dtype)  # type: ignore[call-arg, arg-type]
    return first.take(np.zeros(n, dtype=np.intp))


def convert_column(decl: str, column: np.ndarray) -> Any:
    """One fetched column (an object array of the stored values) as the array its
    logical type ``decl`` reads back as: what :func:`frame_from_rows` does per column."""
    return _CONVERTERS.get(decl, _text)(column)


def empty_frame(names: Sequence[str], decltypes: Sequence[str]) -> pd.DataFrame:
    dtypes = {"INTEGER": "Int64", "REAL": "float64", "BOOLEAN": "boolean"}
    return pd.DataFrame({n: pd.Series([], dtype=dtypes.get(d, object)) for n, d in zip(names, decltypes)})


def normalize_duckdb_frame(frame: pd.DataFrame, decltypes: dict[str, str]) -> pd.DataFrame:
    """Give a DuckDB ``.df()`` the same dtypes the sqlite engine produces (``decltypes``:
    the logical types, which the engine only reads through DuckDB when they are the
    declared ones)."""
    for name in frame.columns:
        decl = decltypes.get(name)
        series = frame[name]
        if decl == "INTEGER" and series.dtype != "Int64":
            frame[name] = series.astype("Int64")
        elif decl == "BOOLEAN" and series.dtype != "boolean":
            frame[name] = series.astype("boolean")
        elif not decl and series.dtype == object:
            # An untyped column (only NULLs so far): DuckDB gives pd.NA, SQLite None.
            values = series.to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]  # stubs: no None
            frame[name] = _text(values)
        elif decl not in _CONVERTERS and series.dtype == object:
            frame[name] = series.infer_objects()
    return frame


def row_dict(
    names: Iterable[str], decltypes: Iterable[str], values: Iterable[Any], drop_null: bool = True
) -> dict[str, Any]:
    """One stored row as a dict; BOOLEAN columns as bool, NULLs dropped by default.

    The data comes first and ``timestamp``/``track_id`` last, as ``log()`` returns it.
    """
    out: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for name, decl, value in zip(names, decltypes, values):
        if value is None:
            if not drop_null:
                out[name] = None
            continue
        if decl == "BOOLEAN" and type(value) is int and value in (0, 1):
            value = bool(value)
        elif decl == "REAL" and type(value) is int:
            value = float(value)  # an int column widened by a float: the frame has floats too
        (last if name in _LAST else out)[name] = value
    out.update(last)
    return out


_LAST = ("timestamp", "track_id")
