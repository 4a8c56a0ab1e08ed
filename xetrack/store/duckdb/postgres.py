"""``engine='duckdb'`` on a PostgreSQL URL: reads through DuckDB's postgres scanner.

The scanner is loaded from the ``duckdb-extension-postgres-scanner`` wheel (the same
version as ``duckdb``), so no network is needed, as for the sqlite scanner. The
database is attached read-only as ``db``; writes still go through psycopg. Frames
are built exactly as the psycopg reads build them (overflow merged, same dtypes).

>>> Reader("postgresql://ana@db-host/exp", engine="duckdb").to_df()  # doctest: +SKIP
>>> reader.conn.execute('SELECT count(*) FROM db.public."default"').fetchall()  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import json
import os
import threading
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from ...errors import DatabaseError
from ..base import Where
from ..postgres.connect import scrub
from ..postgres.engine import PostgresEngine
from ..postgres.values import OVERFLOW, ROW, always_fits, merge_rows
from .user_sql import DuckDBUserSQL

WHEEL = "duckdb-extension-postgres-scanner"
FILE_NAME = "postgres_scanner.duckdb_extension"
ALIAS = "db"


def postgres_scanner_path() -> str:
    """The scanner's file in the wheel; FileNotFoundError naming the pip command."""
    version = metadata.version("duckdb")
    try:
        import duckdb_extension_postgres_scanner as package
    except ImportError:
        package = None
    if package is not None:
        root = os.path.dirname(package.__file__)
        exact = os.path.join(root, "extensions", f"v{version}", FILE_NAME)
        found = [exact] if os.path.exists(exact) else glob.glob(os.path.join(root, "extensions", "*", FILE_NAME))
        if len(found) == 1:
            return found[0]
    raise FileNotFoundError(
        f"DuckDB's postgres extension is not installed: pip install {WHEEL}=={version} "
        "(or pip install 'xetrack[postgres]')"
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresDuckDBEngine(DuckDBUserSQL, PostgresEngine):
    """The PostgreSQL engine with reads (and ``conn``) through DuckDB."""

    def __init__(self, url: str, *, create: bool = True, **kwargs: Any) -> None:
        super().__init__(url, create=create, **kwargs)
        self._duck: Any = None
        self._duck_pid = 0
        self._duck_lock = threading.Lock()
        self._schema = self._run(lambda conn: conn.execute("SELECT current_schema()").fetchone()[0])
        _ = self.duck  # load and attach now, so that a problem shows at once

    @property
    def duck(self) -> Any:
        """DuckDB with the database attached read-only as ``db``."""
        import duckdb

        if self._duck is None or self._duck_pid != os.getpid():
            duck = duckdb.connect()
            try:
                duck.load_extension(postgres_scanner_path())
                literal = "'" + self._url.replace("'", "''") + "'"  # ATTACH takes no parameters
                duck.execute(f"ATTACH {literal} AS {ALIAS} (TYPE postgres, READ_ONLY)")
            except duckdb.Error as exc:
                duck.close()
                raise DatabaseError(f"DuckDB could not attach {self.path}: {scrub(str(exc), self._url)}") from None
            self._duck, self._duck_pid = duck, os.getpid()
        return self._duck

    @property
    def conn(self) -> Any:
        """DuckDB (a cursor of the engine's database) with the database attached as ``db``."""
        return self.duck.cursor()

    def fetch(
        self,
        table: str,
        where: Where | None = None,
        head: int | None = None,
        tail: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> tuple[list[str], list[str], Any]:
        known = self._run(lambda conn: self._checked(conn, table, where))
        if known.spilled:  # keys past the table's columns: the psycopg read merges their spill rows
            return super().fetch(table, where, head, tail, columns)
        plain = {}
        for key, value in (where or {}).items():
            name = known.lower[key.lower()]
            if value is None or type(value) not in always_fits(known.columns[name]):
                # None and misfits may sit in the overflow: the psycopg read knows
                return super().fetch(table, where, head, tail, columns)
            plain[name] = value
        names = [known.lower.get(c.lower(), c) for c in columns] if columns else list(known.columns)
        untyped = [j for j, n in enumerate(names) if known.columns.get(n) == ""]
        selected = [_quote(n) + ("::VARCHAR" if j in untyped else "") for j, n in enumerate(names)]
        source = f"{ALIAS}.{_quote(self._schema)}.{_quote(table)}"
        query = f"SELECT {', '.join(selected)}, {_quote(OVERFLOW)}::VARCHAR FROM {source}"
        if plain:
            query += " WHERE " + " AND ".join(f"{_quote(n)} = ?" for n in plain)
        query += f" ORDER BY {_quote(ROW)} {'DESC' if tail is not None else 'ASC'}"
        limit = tail if tail is not None else head
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        with self._duck_lock:
            cursor = self.duck.cursor()
            try:
                rows = cursor.execute(query, list(plain.values())).fetchall()
            finally:
                cursor.close()
        if tail is not None:
            rows.reverse()
        types = self.column_types(table)  # after the rows, as the psycopg read does
        decoded = [_decode(row, untyped) for row in rows] if rows and (untyped or any(r[-1] for r in rows)) else rows
        return (
            names,
            [types.get(n, "") for n in names],
            merge_rows(decoded, names, [types.get(n, "") for n in names], untyped),
        )

    def close(self) -> None:
        if self._duck is not None and self._duck_pid == os.getpid():
            self._duck.close()
        self._duck = None
        super().close()


def _decode(row: tuple[Any, ...], untyped: Sequence[int]) -> tuple[Any, ...]:
    """JSONB cells come from DuckDB as JSON text: parse the untyped ones and the overflow."""
    if not untyped and row[-1] is None:
        return row
    values = list(row)
    for j in untyped:
        if values[j] is not None:
            values[j] = json.loads(values[j])
    if values[-1] is not None:
        values[-1] = json.loads(values[-1])
    return tuple(values)
