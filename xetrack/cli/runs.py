"""``xt runs``, ``xt compare`` and ``xt history``: the runs of a table, read through
``Reader.search``, ``Reader.compare`` and ``Reader.history``."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import CommandError, DbArg, Engine, EngineOpt, JsonOpt, TableOpt, open_reader, plural, print_frame

AggOpt = Annotated[str, typer.Option("--agg", help="Each metric's value per run: last, first, min, max or mean.")]


def runs(
    db: DbArg,
    where: Annotated[
        str | None,
        typer.Option("--where", "-w", help='A condition: "acc > 0.9 AND model = \'rf\'" or "metrics.acc > 0.9".'),
    ] = None,
    order_by: Annotated[str | None, typer.Option("--order-by", "-o", help="'acc DESC', or '-acc,loss'.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="At most N runs.")] = None,
    agg: AggOpt = "last",
    tags: Annotated[bool, typer.Option("--tags", help="Show the runs' tags as tags.<key> columns.")] = False,
    as_json: JsonOpt = False,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """One row per run: status, start, end, duration, events, params and metrics
    (and, with --tags, the tags; --where can filter on tags.<key> either way).

    Example: xt runs results.db --where "metrics.acc > 0.9" --order-by "-acc" --limit 5
    """
    with open_reader(db, table, engine) as reader:
        frame = reader.search(where, order_by=order_by, limit=limit, agg=agg)
    if not tags:
        frame = frame[[c for c in frame.columns if not str(c).startswith("tags.")]]
    print_frame(frame, as_json)


def tag(
    db: DbArg,
    track_id: Annotated[str, typer.Argument(metavar="TRACK_ID", help="The run.", show_default=False)],
    pairs: Annotated[
        list[str],
        typer.Argument(metavar="KEY=VALUE...", help="Tags to set; KEY= (no value) with --delete.", show_default=False),
    ],
    delete: Annotated[bool, typer.Option("--delete", help="Remove the tags named (KEY or KEY=).")] = False,
    table: TableOpt = "default",
) -> None:
    """Set (or --delete) tags of a run.

    Example: xt tag results.db fierce-pudu-1649 team=vision stage=baseline
    """
    from ..reader import Reader

    with Reader(db, table=table) as reader:
        _ = reader.columns  # a missing or damaged file, or a misspelled table, is the error to report first
        parsed: dict[str, str] = {}
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not key or (not eq and not delete):
                raise CommandError(f"Expected KEY=VALUE, got {pair!r}")
            parsed[key] = value
        if delete:
            gone = [k for k in parsed if reader.delete_tag(track_id, k)]
            typer.echo(f"Deleted {plural(len(gone), 'tag')} of {track_id}")
            return
        reader.set_tags(track_id, parsed)
    typer.echo(f"Set {plural(len(parsed), 'tag')} on {track_id}")


def compare(
    db: DbArg,
    track_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Two or more track_ids.", show_default=False)],
    only_diff: Annotated[bool, typer.Option("--only-diff", help="Keep the fields that differ.")] = False,
    agg: AggOpt = "last",
    as_json: JsonOpt = False,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Runs side by side: fields as rows, runs as columns.

    Example: xt compare results.db fierce-pudu-1649 ebony-loon-6720 --only-diff
    """
    with open_reader(db, table, engine) as reader:
        frame = reader.compare(track_ids, only_diff=only_diff, agg=agg)
    print_frame(frame, as_json)


def history(
    db: DbArg,
    metric: Annotated[str, typer.Argument(metavar="METRIC", help="A numeric column.", show_default=False)],
    track_id: Annotated[list[str] | None, typer.Option("--track-id", "-r", help="Only this run (repeatable).")] = None,
    step: Annotated[
        str | None, typer.Option("--step", help="The step column (default: step, epoch or row order).")
    ] = None,
    as_json: JsonOpt = False,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Draw METRIC over steps, one line per run, in the terminal (--json: the points).

    Example: xt history results.db loss --track-id fierce-pudu-1649
    """
    import pandas as pd

    with open_reader(db, table, engine) as reader:
        if track_id:
            frame = pd.concat([reader.history(metric, track_id=t, step=step) for t in track_id], ignore_index=True)
        else:
            frame = reader.history(metric, step=step)
    if as_json:
        print_frame(frame, True)
        return
    frame = frame[
        pd.to_numeric(frame["value"], errors="coerce").notna() & pd.to_numeric(frame["step"], errors="coerce").notna()
    ]
    if not len(frame):
        raise CommandError(f"No numeric values of {metric!r} to draw")
    from .plot import _figure

    plt = _figure(f"{metric} over steps ({plural(frame['track_id'].nunique(), 'run')})")
    for run, points in frame.groupby("track_id", sort=False):
        plt.plot(points["step"].astype(float).tolist(), points["value"].astype(float).tolist(), label=str(run))  # type: ignore[attr-defined]
    plt.xlabel("step")  # type: ignore[attr-defined]
    typer.echo(plt.build().rstrip())  # type: ignore[attr-defined]
    summary = frame.groupby("track_id", sort=False)["value"].agg(["count", "min", "max", "last"]).reset_index()
    typer.echo()
    print_frame(summary)


def register(app: typer.Typer) -> None:
    app.command()(runs)
    app.command()(tag)
    app.command()(compare)
    app.command()(history)
