"""``xt import mlflow SRC DB`` and ``xt export mlflow DB DEST``: through
:func:`xetrack.import_mlflow` and :func:`xetrack.export_mlflow`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .common import CommandError, DbArg, TableOpt, plural

import_app = typer.Typer(help="Bring runs from another tracker into a database file.", no_args_is_help=True)
export_app = typer.Typer(help="Write a database file's runs in another tracker's format.", no_args_is_help=True)


@import_app.command("mlflow")
def import_mlflow(
    src: Annotated[
        str,
        typer.Argument(
            metavar="SRC",
            help="An mlruns/ folder, sqlite:///mlflow.db or postgresql+psycopg://user@host/db.",
            show_default=False,
        ),
    ],
    db: DbArg,
    artifact_root: Annotated[
        str | None,
        typer.Option(
            "--artifact-root", help="The folder the runs' artifacts are in, when their URIs do not lead there."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Import MLflow experiments, runs, metrics, tags, artifacts and registered models.

    Running it again adds only what is new; an import that was stopped resumes.

    Example: xt import mlflow ./mlruns results.db
    """
    import os

    from ..migrate import NotAnMlflowStore
    from ..migrate import import_mlflow as run_import
    from ..reader import Reader

    if os.path.exists(db):  # a damaged target is named before the source is read
        with Reader(db) as reader:
            reader.store.tables()
    try:
        result = run_import(src, db, artifact_root=artifact_root, progress=not quiet)
    except NotAnMlflowStore as exc:
        raise CommandError(str(exc)) from None
    typer.echo(
        f"Imported {plural(result.runs, 'run')} ({plural(result.rows, 'row')}, {plural(result.artifacts, 'artifact')}) "
        f"from {plural(result.experiments, 'experiment')} and {plural(result.models, 'model version')}; "
        f"{plural(result.skipped, 'run')} already there; {result.rows_per_second:,.0f} rows/s"
    )
    if result.warnings:
        typer.echo(f"{plural(len(result.warnings), 'warning')} (see stderr)", err=True)


def _check_target(db: str) -> None:
    """A damaged target file is named before the source is read."""
    import os

    from ..reader import Reader

    if os.path.exists(db):
        with Reader(db) as reader:
            reader.store.tables()


def _report(result: Any, source: str) -> None:
    replaced = f", {plural(result.replaced, 'run')} replaced (its files changed)" if result.replaced else ""
    typer.echo(
        f"Imported {plural(result.runs, 'run')} ({plural(result.rows, 'row')}) from {source}{replaced}; "
        f"{plural(result.skipped, 'run')} already there"
    )
    if result.warnings:
        typer.echo(f"{plural(len(result.warnings), 'warning')} (see stderr)", err=True)


@import_app.command("tensorboard")
def import_tensorboard(
    logdir: Annotated[
        str,
        typer.Argument(
            metavar="LOGDIR", help="The TensorBoard log folder (holding the run folders).", show_default=False
        ),
    ],
    db: DbArg,
    table: TableOpt = "default",
) -> None:
    """Import TensorBoard runs: each folder of event files is a run (named by its path in
    LOGDIR), its scalars rows by step, its hparams params.

    Running it again adds only what is new; a run whose event files grew is imported again.
    Needs the tensorboard extra: pip install 'xetrack[tensorboard]'.

    Example: xt import tensorboard ./runs results.db
    """
    from ..migrate.tensorboard import import_tensorboard as run_import

    _check_target(db)
    _report(run_import(logdir, db, table=table), logdir)


@import_app.command("csv")
def import_csv(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="The CSV file (a header line first).", show_default=False)
    ],
    db: DbArg,
    run_column: Annotated[
        str, typer.Option("--run-column", help="The column whose value names each line's run.", show_default=False)
    ],
    step_column: Annotated[
        str | None, typer.Option("--step-column", help="The column stored as step (whole numbers).")
    ] = None,
    table: TableOpt = "default",
    delimiter: Annotated[str, typer.Option("--delimiter", help="The character between cells.")] = ",",
) -> None:
    """Import a CSV file: each line a row, the lines grouped into runs by --run-column (its
    value is the run's name); numbers are stored as numbers.

    Running it again adds nothing: a run is known by its name and its lines.

    Example: xt import csv results.csv results.db --run-column run --step-column epoch
    """
    from ..migrate.csv_import import import_csv as run_import

    _check_target(db)
    _report(run_import(file, db, run_column, step_column=step_column, table=table, delimiter=delimiter), file)


@export_app.command("mlflow")
def export_mlflow(
    db: DbArg,
    dest: Annotated[
        str,
        typer.Argument(metavar="DEST", help="The mlruns/ folder to write (created if missing).", show_default=False),
    ],
    table: Annotated[list[str] | None, typer.Option("--table", "-t", help="Only this table (repeatable).")] = None,
) -> None:
    """Write the runs as an MLflow file store that MLflow reads (mlflow ui --backend-store-uri DEST).

    Example: xt export mlflow results.db ./mlruns
    """
    from ..migrate import export_mlflow as run_export

    result = run_export(db, dest, tables=table or None)
    typer.echo(
        f"Exported {plural(result.runs, 'run')} ({plural(result.points, 'metric point')}, "
        f"{plural(result.artifacts, 'artifact')}) of {plural(result.experiments, 'experiment')} and "
        f"{plural(result.models, 'model version')} to {dest}; {plural(result.skipped, 'run')} already there"
    )
