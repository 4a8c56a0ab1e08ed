"""The engine behind ``Tracker.SKIP_INSERT``: it stores nothing and reads back nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..frames import empty_frame
from ..schema import BASE_COLUMNS
from .base import AssetWrites, Engine, Where


class NullEngine(Engine):
    path = None

    def tables(self) -> list[str]:
        return []

    def columns(self, table: str) -> dict[str, str]:
        return dict(BASE_COLUMNS)

    def ensure_table(self, table: str, reset: bool = False) -> None:
        pass

    def insert(self, table: str, row: dict[str, Any], assets: AssetWrites | None = None, roles: Any = None) -> None:
        pass

    def insert_many(
        self,
        table: str,
        keys: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        first_value: Callable[[int], Any],
        assets: AssetWrites | None = None,
        kinds: Any = None,
        roles: Any = None,
    ) -> None:
        pass

    def asset_get(self, key: str) -> bytes | None:
        return None

    def has_asset(self, key: str) -> bool:
        return False

    def asset_keys(self) -> list[str]:
        return []

    def asset_count(self) -> int:
        return 0

    def asset_refs(self, key: str) -> int:
        return 0

    def asset_delete(self, key: str, table: str | None = None, column: str | None = None) -> int:
        return 0

    def update(self, table: str, values: dict[str, Any], where: Where | None) -> int:
        return 0

    def delete(self, table: str, where: Where | None) -> int:
        return 0

    def count(self, table: str, where: Where | None = None) -> int:
        return 0

    def read(
        self,
        table: str,
        where: Where | None = None,
        head: int | None = None,
        tail: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> Any:
        names = list(columns) if columns else list(BASE_COLUMNS)
        return empty_frame(names, [BASE_COLUMNS.get(n, "") for n in names])

    def last_row(
        self, table: str, where: Where | None = None, offset: int = 0, drop_null: bool = True
    ) -> dict[str, Any] | None:
        return None

    def nth_row(self, table: str, where: Where | None, n: int, drop_null: bool = True) -> dict[str, Any] | None:
        return None

    @property
    def conn(self) -> None:
        return None

    def close(self) -> None:
        pass
