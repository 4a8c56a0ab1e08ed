"""What a Tracker (one run) and a Reader (a whole table) share: a read-only view of rows."""

from __future__ import annotations

import os
from typing import Any, TypeVar

import pandas as pd

from .frames import to_backend, to_backend_series
from .schema import column_name
from .store.base import Engine, Where, column_not_found

Self = TypeVar("Self", bound="TableView")

_PREVIEW = 10  # rows shown at each end by repr
_MAX_COLS = 20


def check_count(name: str, n: Any) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}: {n!r}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return n


class TableView:
    _engine: Engine
    table_name: str

    def _where(self) -> Where | None:
        return None

    def _frame(self, head: int | None = None, tail: int | None = None) -> pd.DataFrame:
        return self._engine.read(self.table_name, self._where(), head=head, tail=tail)

    def head(self, n: int = 5) -> Any:
        """The first ``n`` rows, oldest first."""
        return to_backend(self._frame(head=check_count("n", n)))

    def tail(self, n: int = 5) -> Any:
        """The last ``n`` rows, still oldest first."""
        return to_backend(self._frame(tail=check_count("n", n)))

    def __len__(self) -> int:
        return self._engine.count(self.table_name, self._where())

    @property
    def columns(self) -> list[str]:
        """The table's column names, in table order."""
        return list(self._engine.columns(self.table_name))

    def _resolve_column(self, key: Any) -> str:
        name = column_name(key)
        columns = self.columns
        lowered = {c.lower(): c for c in columns}
        if name.lower() not in lowered:
            raise column_not_found(name, self.table_name, columns)
        return lowered[name.lower()]

    def _column(self, key: Any) -> Any:
        name = self._resolve_column(key)
        frame = self._engine.read(self.table_name, self._where(), columns=[name])
        return to_backend_series(frame[name])

    def _preview(self) -> tuple[pd.DataFrame, int]:
        total = len(self)
        if total <= 2 * _PREVIEW:
            return self._frame(), total
        head, tail = self._frame(head=_PREVIEW), self._frame(tail=_PREVIEW)
        tail.index = pd.RangeIndex(total - len(tail), total)
        return pd.concat([head, tail]), total

    def _preview_text(self) -> str:
        frame, total = self._preview()
        text = frame.to_string(max_cols=_MAX_COLS)
        if total > 2 * _PREVIEW:
            lines = text.splitlines()
            text = "\n".join(lines[: _PREVIEW + 1] + ["..."] + lines[_PREVIEW + 1 :])
        return f"{text}\n[{total} rows x {len(frame.columns)} columns]"

    def _repr_html_(self) -> str:
        frame, total = self._preview()
        html = frame._repr_html_()  # type: ignore[operator]  # pandas-stubs leaves DataFrame._repr_html_ out
        return f"{html or ''}<p>{total} rows x {len(frame.columns)} columns</p>"

    def close(self) -> None:
        """Close the connections. Using the object again reopens them."""
        self._engine.close()

    def __enter__(self: Self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def to_csv(self, path: str | os.PathLike[str], **kwargs: Any) -> None:
        """Write these rows to a CSV file (``index=False`` unless given)."""
        kwargs.setdefault("index", False)
        self._frame().to_csv(path, **kwargs)

    def to_parquet(self, path: str | os.PathLike[str], **kwargs: Any) -> None:
        """Write these rows to a Parquet file."""
        kwargs.setdefault("index", False)
        self._frame().to_parquet(path, **kwargs)
