"""``xt backup``: a consistent, standalone copy of a database that may be in use."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .common import CommandError, open_reader


def backup(
    source: Annotated[
        str, typer.Argument(metavar="SRC", help="The database to back up; it is only read.", show_default=False)
    ],
    dest: Annotated[
        str,
        typer.Argument(metavar="DEST", help="The file to write; it must not exist (see --force).", show_default=False),
    ],
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace DEST if it exists.")] = False,
) -> None:
    """Copy SRC to DEST safely, even while other processes keep logging to SRC.

    Unlike cp, which misses the rows still in SRC-wal, the copy holds every row logged
    before the command started, with all tables, assets, artifacts and models. DEST is
    one self-contained file (no -wal), and appears only once complete.

    Example: xt backup results.db results-backup.db
    """
    with open_reader(source) as reader:
        try:
            written = reader.backup(dest, overwrite=force)
        except FileExistsError:
            raise CommandError(
                f"Backup destination {dest!r} exists: choose another path, or pass --force to replace it"
            ) from None
    typer.echo(f"Backed up {source} to {written} ({os.path.getsize(written):,} bytes)")


def register(app: typer.Typer) -> None:
    app.command()(backup)
