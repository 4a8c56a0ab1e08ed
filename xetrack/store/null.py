"""The engine behind ``Tracker.SKIP_INSERT``: it stores nothing and reads back nothing."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..frames import empty_frame
from ..schema import BASE_COLUMNS
from .base import Engine, Where


class NullEngine(Engine):
    path = None

    def tables(self) -> list[str]:
        return []

    def columns(self, table: str) -> dict[str, str]:
        return dict(BASE_COLUMNS)

    def ensure_table(self, table: str, reset: bool = False) -> None:
        pass

    def insert(self, table: str, row: dict[str, Any]) -> None:
        pass

    def insert_many(self, table: str, keys: tuple[str, ...], rows: list[tuple[Any, ...]],
                    first_value: Callable[[int], Any]) -> None:
        pass

    def update(self, table: str, values: dict[str, Any], where: Where | None) -> int:
        return 0

    def delete(self, table: str, where: Where | None) -> int:
        return 0

    def count(self, table: str, where: Where | None = None) -> int:
        return 0

    def read(self, table: str, where: Where | None = None, head: int | None = None,
             tail: int | None = None, columns: Sequence[str] | None = None) -> Any:
        names = list(columns) if columns else list(BASE_COLUMNS)
        return empty_frame(names, [BASE_COLUMNS.get(n, "") for n in names])

    def last_row(self, table: str, where: Where | None = None, offset: int = 0) -> dict[str, Any] | None:
        return None

    def nth_row(self, table: str, where: Where | None, n: int) -> dict[str, Any] | None:
        return None

    @property
    def conn(self) -> None:
        return None

    def close(self) -> None:
        pass
