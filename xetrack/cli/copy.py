"""``xt copy``: merge the tables, assets, artifacts and models of one database file into another."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .common import note, plural


class _ProgressBar:
    """A rich progress bar on stderr, shown only for copies of more than 100,000 rows."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        from ..copy import PROGRESS_THRESHOLD

        if self.bar is None:
            if total <= PROGRESS_THRESHOLD:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("Copying rows"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("copy", total=total)
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def copy(
    source: Annotated[
        str, typer.Argument(metavar="SOURCE", help="The database to copy from; it is only read.", show_default=False)
    ],
    target: Annotated[
        str,
        typer.Argument(metavar="TARGET", help="The database to merge into, created if missing.", show_default=False),
    ],
    assets: Annotated[
        bool, typer.Option("--assets/--no-assets", help="Also copy stored objects and artifact bytes.")
    ] = True,
    table: Annotated[
        list[str] | None, typer.Option("--table", "-t", help="A table to copy; repeat for more (default: all).")
    ] = None,
) -> None:
    """Merge SOURCE's tables (and assets) into TARGET; rows TARGET already has are skipped.

    A row is already there when TARGET has its track_id and timestamp, so copying again
    after SOURCE grew copies only the new rows. The tables' runs, predictions and
    artifacts (with their bytes) come along, and so does the model registry. Other
    processes may write to TARGET meanwhile. Works with the sqlite engine; DuckDB is not
    needed.

    Example: xt copy worker.db all.db --table default --no-assets
    """
    from ..copy import copy_tables

    progress = _ProgressBar()
    try:
        result = copy_tables(source, target, assets=assets, tables=table or None, progress=progress)
    finally:
        progress.close()
    for name in result.skipped_tables:
        note(f"Skipped table {name!r}: it has no track_id and timestamp columns to tell its rows apart")
    if result.left_out:
        n = result.left_out
        what = "1 artifact entry or model version" if n == 1 else f"{n} artifact entries and model versions"
        why = "TARGET does not hold their bytes (--no-assets)" if not assets else "their bytes are in neither file"
        note(f"Left out {what}: {why}")
    already = f" ({result.skipped} already in {target})" if result.skipped else ""
    parts = [f"{plural(result.rows, 'row')}{already}"]
    for count, word in ((result.assets, "asset"), (result.artifacts, "artifact"), (result.models, "model version")):
        if count:
            parts.append(plural(count, word))
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    typer.echo(f"Copied {listed}")


def register(app: typer.Typer) -> None:
    app.command()(copy)
