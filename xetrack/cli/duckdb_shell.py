"""``xt duckdb``: the DuckDB shell on a database file, offline.

DuckDB's own recipe, ``INSTALL sqlite; LOAD sqlite; ATTACH ...``, downloads the sqlite
extension. This command loads the one the ``duckdb-extension-sqlite-scanner`` wheel ships
(:func:`xetrack.duckdb_extension_path`) and attaches the file as ``db``, read-only unless
``--write``. The shell is the ``duckdb`` binary of the ``duckdb-cli`` wheel when it is
installed (the dev extra has it; its version matches the extension's), else ``duckdb`` on
PATH.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from typing import Annotated

import typer

from .common import CommandError, DbArg, open_reader

_VERSION = re.compile(r"v?(\d+\.\d+\.\d+)")


def _wheel_binary() -> str | None:
    """The binary inside the ``duckdb-cli`` wheel (its console script wraps the same file)."""
    spec = importlib.util.find_spec("duckdb_cli")
    if spec is None or not spec.origin:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "duckdb")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def _duckdb_version() -> str | None:
    from ..store import duckdb_shell_setup

    version: str | None = duckdb_shell_setup().duckdb_version()
    return version


def duckdb_binary() -> str:
    """The DuckDB CLI to run: the ``duckdb-cli`` wheel's, else ``duckdb`` on PATH."""
    found = _wheel_binary() or shutil.which("duckdb")
    if found is None:
        version = _duckdb_version()
        raise CommandError(
            f"No DuckDB CLI: pip install duckdb-cli{'==' + version if version else ''} "
            "(or put duckdb on PATH: https://duckdb.org/docs/installation)"
        )
    return found


def _binary_version(binary: str) -> str | None:
    if binary == _wheel_binary():
        from importlib import metadata

        try:
            return metadata.version("duckdb-cli")
        except metadata.PackageNotFoundError:
            pass
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    return match.group(1) if match else None


def setup_sql(db: str, write: bool, binary: str) -> str:
    """The statements run before the shell starts: load the extension, attach, USE db."""
    from ..store import duckdb_shell_setup

    setup = duckdb_shell_setup()
    extension = setup.bundled_extension()
    if extension is not None and _binary_version(binary) not in (None, _duckdb_version()):
        extension = None  # another DuckDB release cannot load this build of the extension
    return str(setup.shell_setup_sql(db, write, extension))


def duckdb_shell(
    db: DbArg,
    write: Annotated[bool, typer.Option("--write", help="Attach the file writable (default: read-only).")] = False,
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[-- DUCKDB_ARGS...]",
            help="Passed on to the duckdb shell after --, e.g. -- -c 'SELECT 1'.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Open the DuckDB shell with the file attached as db, offline.

    The sqlite extension comes from the duckdb-extension-sqlite-scanner wheel (no
    INSTALL, no network). Tables are db."default", db.model_experiments and so on, or
    just "default" (the shell starts in db). Read-only unless --write; DuckDB's writes have
    no busy timeout, so prefer xetrack for writing while other processes log.

    Example: xt duckdb results.db -- -c 'SELECT model, max(accuracy) FROM "default" GROUP BY model'
    """
    with open_reader(db):  # a missing file or one that is no database: a clear error
        pass
    binary = duckdb_binary()
    argv = [binary, "-cmd", setup_sql(db, write, binary), *(args or [])]
    sys.stdout.flush()
    sys.stderr.flush()
    # Ctrl-C belongs to the shell (it cancels a query there); a handler, unlike SIG_IGN,
    # is reset to the default in the child.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        code = subprocess.call(argv)
    except OSError as exc:
        raise CommandError(f"Cannot run {binary}: {exc.strerror or exc}") from None
    finally:
        signal.signal(signal.SIGINT, previous)
    # A read-only SQLite connection cannot remove the -wal and -shm files it had to
    # create; the last connection to close does, so close one (if nobody else holds the
    # file). The database's own bytes are not touched.
    with open_reader(db):
        pass
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(name="duckdb")(duckdb_shell)
