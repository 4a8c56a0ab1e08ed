"""``xt assets``: the objects stored in a database file, by hash."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .common import DbArg, JsonOpt, open_reader, plural, print_frame, print_json

app = typer.Typer(
    help="List, export and delete stored objects (models and other assets), and remove "
    "(gc) the objects and artifact bytes nothing points at any more.\n\n"
    "Example: xt assets ls results.db",
    no_args_is_help=True,
)

HashArg = Annotated[
    str, typer.Argument(metavar="HASH", help="The asset's hash (16 hex characters).", show_default=False)
]


@app.command("ls")
def list_assets(db: DbArg, as_json: JsonOpt = False) -> None:
    """List every stored object: its hash, size in bytes, how many rows point at it and
    how many registered model versions.

    Example: xt assets ls results.db
    """
    import pandas as pd

    with open_reader(db) as reader:
        rows = reader.store.asset_listing() if len(reader.assets) else []
    listing = [{"hash": key, "bytes": size, "references": refs, "models": models} for key, size, refs, models in rows]
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
    output: Annotated[
        str, typer.Argument(metavar="OUTPUT", help="The file to write; - for stdout.", show_default=False)
    ],
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


@app.command("gc")
def collect_garbage(
    db: DbArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be removed.")] = False,
    vacuum: Annotated[
        bool, typer.Option("--vacuum", help="Also give the freed space back to the file system (rewrites the file).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove stored objects and artifact bytes that no row, artifact entry or model
    version points at any more (after xt delete, say), and print the bytes freed.

    Freed space is reused by later writes; --vacuum also shrinks the file.

    Example: xt assets gc results.db --dry-run
    """
    if dry_run and vacuum:
        raise typer.BadParameter("--dry-run removes nothing, so there is nothing to vacuum", param_hint="--vacuum")
    with open_reader(db) as reader:
        garbage = reader.gc(dry_run=dry_run, vacuum=vacuum)
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "assets": garbage.assets,
                "artifacts": garbage.artifacts,
                "bytes": garbage.bytes,
                "file_bytes": garbage.file_bytes,
                "hashes": list(garbage.hashes or []),
            }
        )
        return
    what = f"{plural(garbage.assets, 'asset')} and {plural(garbage.artifacts, 'artifact')}"
    if dry_run:
        typer.echo(f"Would remove {what}: {garbage.bytes:,} bytes")
    else:
        typer.echo(f"Removed {what}: {garbage.bytes:,} bytes freed")
    if vacuum:
        typer.echo(f"The file is {garbage.file_bytes:,} bytes smaller")
