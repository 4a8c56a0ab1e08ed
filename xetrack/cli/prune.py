"""``xt prune`` and ``xt du``: delete the runs a sweep leaves behind (``Reader.prune``),
and see where a store's bytes are (:func:`xetrack.usage.report`)."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from .common import CommandError, DbArg, JsonOpt, open_reader, plural, print_frame, print_json, records

TablesOpt = Annotated[
    list[str] | None, typer.Option("--table", "-t", help="The experiment table (repeatable; default: default).")
]


def stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def is_dry_run(dry_run: bool, yes: bool, interactive: bool) -> tuple[bool, bool]:
    """(whether ``xt prune`` only reports, whether that was its default rather than asked).

    At a terminal a prune without ``--yes`` only reports; a script or CI (no terminal on
    stdin) prunes unless ``--dry-run``.

    >>> is_dry_run(False, False, True), is_dry_run(False, True, True), is_dry_run(False, False, False)
    ((True, True), (False, False), (False, False))
    """
    if dry_run:
        return True, False
    if interactive and not yes:
        return True, True
    return False, False


def prune(
    db: DbArg,
    table: TablesOpt = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Runs that ended (or last logged) longer ago: 30d, 12h, 90m, 2w.")
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="Runs of this status, as xt runs shows it: failed, dead... (repeatable)."),
    ] = None,
    keep_best: Annotated[
        int | None, typer.Option("--keep-best", min=1, help="Keep the N best runs by --by (ties too).")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="The metric of --keep-best.")] = None,
    lower: Annotated[
        bool | None, typer.Option("--min/--max", help="Whether lower or higher --by is better (one is required).")
    ] = None,
    keep_tag: Annotated[
        list[str] | None, typer.Option("--keep-tag", help="Keep the runs with this tag, KEY=VALUE (repeatable).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also prune runs a registered model version came from.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go, and the bytes.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Prune without the dry run a terminal gets.")] = False,
    vacuum: Annotated[
        bool, typer.Option("--vacuum", help="Then give the freed space back to the file system.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete runs, with their side rows, that match every rule given (--older-than,
    --status), less those kept (--keep-best, --keep-tag, and runs a registered model came
    from unless --force); then remove the bytes nothing points at any more.

    At a terminal it only lists what would go unless --yes; a script prunes unless
    --dry-run. With no rule it refuses.

    Example: xt prune results.db --status failed --status dead --older-than 30d --keep-best 5 --by acc --max
    """
    if keep_best is not None and lower is None:
        raise typer.BadParameter(
            f"say whether lower or higher {by or 'METRIC'} is better: add --min or --max", param_hint="--keep-best"
        )
    if older_than is None and not status and keep_best is None:
        with open_reader(db, (table or ["default"])[0]) as reader:
            _ = reader.columns  # a missing or damaged file is said first, as by every command
        raise CommandError(
            "Nothing to prune by: give --older-than, --status or --keep-best (xt prune deletes no run by accident)"
        )
    if lower is not None and keep_best is None:
        raise typer.BadParameter("--min and --max say which way --keep-best ranks: add --keep-best N --by METRIC")
    dry, implied = is_dry_run(dry_run, yes, stdin_is_terminal())
    if vacuum and dry:
        vacuum = False
    tables = table or ["default"]
    results: list[dict[str, Any]] = []
    for name in tables:
        with open_reader(db, name) as reader:
            _ = reader.columns  # a missing file or table is the error to report
            done = reader.prune(
                older_than=older_than,
                status=status,
                keep_best=keep_best,
                by=by,
                mode="min" if lower else "max",
                keep_tags=keep_tag,
                force=force,
                dry_run=dry,
                vacuum=False,  # once, below, when some table lost runs
            )
        results.append({"table": name, "result": done})
    pruned = [r["result"] for r in results if r["result"].track_ids and not dry]
    if vacuum and pruned:
        with open_reader(db, tables[0]) as reader:
            cleaned = reader.gc(vacuum=True)
        pruned[-1].file_bytes = cleaned.file_bytes
    if as_json:
        print_json([_as_json(r["table"], r["result"]) for r in results])
        return
    for entry in results:
        _print(entry["table"], entry["result"])
    if implied:
        typer.echo("This was a dry run (stdin is a terminal): nothing was deleted. To prune, run again with --yes.")
    elif dry:
        typer.echo("Dry run: nothing was deleted.")


def _as_json(table: str, done: Any) -> dict[str, Any]:
    garbage = done.garbage
    return {
        "table": table,
        "dry_run": done.dry_run,
        "runs": records(done.runs),
        "track_ids": done.track_ids,
        "skipped": done.skipped,
        "protected": done.protected,
        "rows": done.rows,
        "bytes": done.bytes,
        "row_bytes": done.row_bytes,
        "side_bytes": done.side_bytes,
        "stored_bytes": done.stored_bytes,
        "exact": done.exact,
        "gc": None
        if garbage is None
        else {"assets": garbage.assets, "artifacts": garbage.artifacts, "bytes": garbage.bytes},
        "file_bytes": done.file_bytes,
    }


def _print(table: str, done: Any) -> None:
    about = "" if done.exact else " (estimated from the values: this SQLite has no dbstat)"
    if not len(done.runs):
        typer.echo(f"Table {table!r}: no run to prune")
    elif done.dry_run:
        typer.echo(
            f"Table {table!r}: would prune {plural(len(done.track_ids), 'run')} ({plural(done.rows, 'row')}), "
            f"freeing about {done.bytes:,} bytes: rows {done.row_bytes:,}, side rows {done.side_bytes:,}, "
            f"artifacts and objects only they hold {done.stored_bytes:,}{about}"
        )
    else:
        typer.echo(
            f"Table {table!r}: pruned {plural(len(done.track_ids), 'run')} ({plural(done.rows, 'row')}), "
            f"about {done.row_bytes + done.side_bytes:,} bytes of rows and side rows{about}"
        )
    if len(done.runs):
        shown = done.runs if done.dry_run else done.runs[done.runs["track_id"].isin(done.track_ids)]
        if len(shown):
            print_frame(shown if shown["name"].notna().any() else shown.drop(columns="name"))
    if done.skipped:
        typer.echo(
            f"Skipped {plural(len(done.skipped), 'run')} written since chosen (left whole): {', '.join(done.skipped)}"
        )
    if done.protected:
        typer.echo(
            f"Kept {plural(len(done.protected), 'run')} a registered model came from (--force prunes them): "
            + ", ".join(done.protected)
        )
    if done.garbage is not None:
        garbage = done.garbage
        typer.echo(
            f"gc removed {plural(garbage.assets, 'asset')} and {plural(garbage.artifacts, 'artifact')}: "
            f"{garbage.bytes:,} bytes"
        )
    if done.file_bytes:
        typer.echo(f"The file is {done.file_bytes:,} bytes smaller")


def du(
    db: DbArg,
    top: Annotated[int, typer.Option("--top", "-n", min=0, help="How many of the largest runs to list.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Where the bytes are: per table (rows, and side rows), the largest runs (their rows,
    and the artifacts and objects only they hold), stored objects and artifacts, and
    what 'xt assets gc --vacuum' would give back.

    Example: xt du results.db --top 5
    """
    import pandas as pd

    from ..usage import report

    with open_reader(db) as reader:
        found = report(reader.store, top)
        dialect = reader.store.dialect
    if as_json:
        print_json({"db": db, "dialect": dialect, **found})
        return
    if dialect == "postgres":
        how = "sizes from pg_total_relation_size, indexes and TOAST included"
    elif found["exact"]:
        how = f"page size {found['page_size']:,}; table bytes are their pages, from dbstat"
    else:
        how = "table bytes estimated from the values: this SQLite has no dbstat"
    typer.echo(f"{db}: {found['bytes']:,} bytes ({how})\n")
    typer.echo("Experiment tables (row_bytes: the table and its indexes; side_bytes: its runs' side rows):")
    print_frame(pd.DataFrame(found["tables"], columns=["table", "runs", "rows", "row_bytes", "side_bytes"]))
    typer.echo("\nxetrack's own tables:")
    internal = sorted(found["internal"], key=lambda r: -r["bytes"])
    print_frame(pd.DataFrame(internal, columns=["table", "bytes"]))
    if top:
        typer.echo(f"\nThe {plural(len(found['runs']), 'run')} holding the most (own_bytes: stored only it points at):")
        columns = ["table", "track_id", "rows", "row_bytes", "side_bytes", "stored_bytes", "own_bytes", "bytes"]
        print_frame(pd.DataFrame(found["runs"], columns=columns))
    typer.echo("\nStored objects and artifacts (references: rows' runs, artifact entries, model versions):")
    print_frame(pd.DataFrame(found["stored"]))
    back = found["reclaimable"]
    typer.echo(
        f"\n'xt assets gc --vacuum' would give back about {back['bytes']:,} bytes: {back['free_bytes']:,} in free "
        f"pages and {back['unreferenced_bytes']:,} that nothing points at"
    )


def register(app: typer.Typer) -> None:
    app.command()(prune)
    app.command()(du)


__all__ = ["prune", "du", "is_dry_run", "register", "CommandError"]
