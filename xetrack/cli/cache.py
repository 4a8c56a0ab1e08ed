"""``xt cache``: the result cache of tracked functions (a diskcache directory)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOpt, jsonable, print_frame, print_json

app = typer.Typer(
    help="List and clean the result cache of tracked functions.\n\nExample: xt cache ls cache_dir",
    no_args_is_help=True,
)

DirArg = Annotated[
    str, typer.Argument(metavar="DIR", help="The cache directory given to Tracker(cache=...).", show_default=False)
]
_RESULT_WIDTH = 60


def _shown(result: object) -> str:
    text = repr(result)
    return text if len(text) <= _RESULT_WIDTH else text[: _RESULT_WIDTH - 1] + "…"


@app.command("ls")
def list_cache(directory: DirArg, as_json: JsonOpt = False) -> None:
    """List every cached result with its lineage: the track_id of the run that computed it.

    Example: xt cache ls cache_dir
    """
    import pandas as pd

    from ..reader import Reader

    entries = [
        {"key": key, "track_id": entry["cache"], "result": entry["result"]}
        for key, entry in Reader.scan_cache(directory)
    ]
    if as_json:
        print_json([{**e, "result": jsonable(e["result"])} for e in entries])
    elif not entries:
        typer.echo(f"The cache in {directory} is empty")
    else:
        print_frame(pd.DataFrame([{**e, "result": _shown(e["result"])} for e in entries]))


@app.command("delete")
def delete_cache(
    directory: DirArg,
    track_id: Annotated[
        str, typer.Argument(metavar="TRACK_ID", help="The run whose results to delete.", show_default=False)
    ],
) -> None:
    """Delete the cached results a run computed, and print how many.

    Example: xt cache delete cache_dir fierce-pudu-1649
    """
    from ..reader import Reader

    typer.echo(f"Deleted {Reader.delete_cache_by_track_id(directory, track_id)}")
