"""A throwaway PostgreSQL server for the tests, from Debian's ``postgresql`` package.

``initdb`` into a temporary folder, owned by an unprivileged user when we run as root
(the server refuses to run as root), listening on 127.0.0.1 at a free port and on a
unix socket inside the folder. Superuser ``postgres`` logs in with trust; role
``xt_secret`` (password ``PASSWORD``) must give its password, so that tests can check a
password never shows.

    server = PgServer.start()
    url = server.create_database()   # postgresql://postgres@127.0.0.1:PORT/xt_1
    server.stop()

Also a script: ``make demo-postgres`` runs examples/quickstart.py through :func:`main`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from typing import Any

PACKAGE_HINT = "PostgreSQL's initdb not found: install the Debian package 'postgresql' (apt-get install postgresql)"
PASSWORD_ROLE = "xt_secret"
PASSWORD = "s3cret-Pa55word"


def find_bin(name: str) -> str | None:
    """``name`` (initdb, pg_ctl) on PATH or in Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    return candidates[-1] if candidates else None


def _version_key(path: str) -> tuple[int, ...]:
    part = path.split("/")[4]
    return tuple(int(p) for p in part.split(".") if p.isdigit())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> list[str]:
    """The command prefix that drops root: ``runuser -u postgres --`` (or nobody)."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        runuser = shutil.which("runuser")  # util-linux, on every Debian
        if runuser:
            return [runuser, "-u", user, "--"]
    raise RuntimeError("Running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


class PgServer:
    """One running server; :meth:`create_database` gives each test its own database."""

    def __init__(self, folder: str, port: int, prefix: list[str]) -> None:
        self.folder = folder
        self.port = port
        self.prefix = prefix
        self.data = os.path.join(folder, "data")
        self._numbers = itertools.count(1)

    @classmethod
    def start(cls) -> PgServer:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise FileNotFoundError(PACKAGE_HINT)
        prefix = _run_as()
        folder = tempfile.mkdtemp(prefix="xt-pg-")
        if prefix:
            user = prefix[2]
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        os.chmod(folder, 0o700)
        server = cls(folder, _free_port(), prefix)
        server._run(
            [initdb, "-D", server.data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]
        )
        with open(os.path.join(server.data, "pg_hba.conf"), "w") as hba:
            hba.write(
                f"local all {PASSWORD_ROLE} scram-sha-256\n"
                f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
                "local all all trust\n"
                "host all all 127.0.0.1/32 trust\n"
            )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={server.port} -c unix_socket_directories={folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60 "
            "-c shared_buffers=32MB"
        )
        server._run(
            [pg_ctl, "-D", server.data, "-o", options, "-l", os.path.join(folder, "log"), "-w", "-t", "60", "start"]
        )
        server.sql(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'")
        return server

    def _run(self, args: list[str]) -> None:
        out = subprocess.run(self.prefix + args, capture_output=True, text=True, cwd=self.folder)
        if out.returncode != 0:
            log = os.path.join(self.folder, "log")
            tail = ""
            if os.path.exists(log):
                with open(log) as file:
                    tail = file.read()[-2000:]
            raise RuntimeError(f"{args[0]} failed: {out.stdout}{out.stderr}{tail}")

    def url(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    def create_database(self, owner: str | None = None) -> str:
        """A new empty database; its URL (as the superuser)."""
        name = f"xt_{os.getpid()}_{next(self._numbers)}"
        owned = f" OWNER {owner}" if owner else ""
        self.sql(f"CREATE DATABASE {name} TEMPLATE template0{owned}")
        return self.url(name)

    def stop(self) -> None:
        pg_ctl = find_bin("pg_ctl")
        try:
            if pg_ctl is not None:
                self._run([pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def raw_sql(db: str, statement: str, params: tuple = (), empty: Any = None) -> Any:
    """Run one statement on a store behind xetrack's back, as a user with a SQL client
    would (to damage bytes or count them): a SQLite path or a PostgreSQL URL, ``?``
    placeholders on both. A table never created gives ``empty``."""
    if str(db).startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            try:
                cur = conn.execute(statement.replace("?", "%s"), params)
            except psycopg.errors.UndefinedTable:
                return empty
            return [tuple(row) for row in cur.fetchall()] if cur.description else cur.rowcount
    import sqlite3

    with sqlite3.connect(db) as conn:
        try:
            cur = conn.execute(statement, params)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return empty
        return cur.fetchall() if cur.description else cur.rowcount


def main() -> None:
    """``python tests/pg_server.py CMD...``: run CMD with ``XETRACK_DB`` (and
    ``XETRACK_PG_URL``) set to a fresh database of a throwaway server, then stop the
    server. ``make demo-postgres`` runs the quickstart this way."""
    server = PgServer.start()
    try:
        url = server.create_database()
        print(f"PostgreSQL {server.sql('SHOW server_version')[0][0]} at {url}", flush=True)
        env = dict(os.environ, XETRACK_PG_URL=url, XETRACK_DB=url)
        code = subprocess.call(sys.argv[1:], env=env) if sys.argv[1:] else 0
    finally:
        server.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
