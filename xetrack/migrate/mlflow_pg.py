"""Reading an MLflow tracking database on PostgreSQL, without MLflow: the tables MLflow's
SQLAlchemy store creates (``experiments``, ``runs``, ``params``, ``metrics``, ``tags``,
the model registry) are the same as in its SQLite database, so the reads are the SQLite
store's, through psycopg 3 on a read-only session.

The source URI is MLflow's (``postgresql+psycopg://...``) or a plain PostgreSQL URL;
the password never appears in messages.

>>> open_store("postgresql+psycopg://ml@db-host/mlflow")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .mlflow_store import NotAnMlflowStore, SqliteStore

#: URI prefixes of an MLflow database on PostgreSQL (MLflow names SQLAlchemy's driver).
SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://")
_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"


def is_postgres_uri(text: str) -> bool:
    return text.lower().startswith(SCHEMES)


class _Bound:
    """The SQLite store's queries (``?`` placeholders, all xetrack's own fixed text) on a
    psycopg connection (``%s`` placeholders); the values stay bound."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, query: str, params: Any = ()) -> Any:
        return self._conn.execute(query.replace("?", "%s"), params)

    def close(self) -> None:
        self._conn.close()


class PostgresStore(SqliteStore):
    """An MLflow database on PostgreSQL, read on a session that cannot write."""

    def __init__(self, uri: str, artifact_root: str | None = None) -> None:
        from ..store.postgres.connect import connect, redact

        if not is_postgres_uri(uri):
            raise NotAnMlflowStore(f"{uri!r}: an MLflow PostgreSQL URI looks like postgresql+psycopg://user@host/db")
        url = "postgresql://" + uri.split("://", 1)[1]
        self.path = redact(url)
        self.artifact_root = artifact_root
        self.problems: list[str] = []
        conn = connect(url)  # a DatabaseError naming the redacted URL
        try:
            conn.execute("SET default_transaction_read_only = on")
            names = {name for (name,) in conn.execute(_TABLES)}
        except BaseException:
            conn.close()
            raise
        missing = {"experiments", "runs", "params", "metrics", "tags"} - names
        if missing:
            conn.close()
            raise NotAnMlflowStore(
                f"{self.path!r} is not an MLflow store: it has no {', '.join(sorted(missing))} table"
            )
        self.conn = _Bound(conn)
        self.tables = names

    def __enter__(self) -> PostgresStore:
        return self
