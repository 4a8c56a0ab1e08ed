"""``xt assets``: the objects stored in a database file, by hash."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .common import DbArg, JsonOpt, open_reader, print_frame, print_json

app = typer.Typer(
    help="List, export and delete stored objects (models and other assets).\n\n"
    "Example: xt assets ls results.db",
    no_args_is_help=True,
)

HashArg = Annotated[str, typer.Argument(metavar="HASH", help="The asset's hash (16 hex characters).", show_default=False)]


@app.command("ls")
def list_assets(db: DbArg, as_json: JsonOpt = False) -> None:
    """List every stored object: its hash, size in bytes and how many rows point at it.

    Example: xt assets ls results.db
    """
    import pandas as pd

    from ..schema import ASSET_COUNTS, ASSETS_TABLE, quote

    with open_reader(db) as reader:
        if not len(reader.assets):
            rows = []
        else:
            counts = reader.conn.execute(
                "SELECT 1 FROM db.sqlite_master WHERE type = 'table' AND name = ?", (ASSET_COUNTS,)
            ).fetchone()
            refs = f"coalesce((SELECT c.count FROM db.{quote(ASSET_COUNTS)} c WHERE c.hash = a.key), 0)"
            # length() reads a blob's size without loading it
            rows = reader.conn.execute(
                f"SELECT a.key, length(a.value), {refs if counts else 0} "
                f"FROM db.{quote(ASSETS_TABLE)} a ORDER BY a.rowid"
            ).fetchall()
    listing = [{"hash": key, "bytes": size, "references": refs} for key, size, refs in rows]
    if as_json:
        print_json(listing)
    elif not listing:
        typer.echo(f"No assets in {db}")
    else:
        print_frame(pd.DataFrame(listing))


@app.command("export")
def export_asset(
    db: DbArg,
    hash: HashArg,
    output: Annotated[str, typer.Argument(metavar="OUTPUT", help="The file to write; - for stdout.", show_default=False)],
) -> None:
    """Write an object's cloudpickle bytes to a file, to load with cloudpickle.loads.

    Example: xt assets export results.db 53425a65a40a49f4 model.cloudpickle
    """
    with open_reader(db) as reader:
        if output == "-":
            data = reader.assets.bytes(hash)
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            return
        size = reader.assets.export(hash, output)
    typer.echo(f"Wrote {size} bytes to {output}")


@app.command("delete")
def delete_asset(db: DbArg, hash: HashArg) -> None:
    """Delete one stored object. Rows keep its hash; loading it then gives None.

    Example: xt assets delete results.db 53425a65a40a49f4
    """
    with open_reader(db) as reader:
        deleted = reader.assets.delete(hash)
    typer.echo(f"Deleted {int(deleted)}")
