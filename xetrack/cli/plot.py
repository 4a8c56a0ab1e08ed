"""``xt plot``: histograms and scatter plots drawn in the terminal (plotext), with a summary."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Annotated

import typer

from .common import (
    CommandError,
    DbArg,
    Engine,
    EngineOpt,
    TableOpt,
    note,
    open_reader,
    plural,
    print_frame,
    stdout_is_terminal,
)
from .stats import numeric_column

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(
    help="Plot columns in the terminal.\n\nExample: xt plot hist results.db accuracy --bins 20",
    no_args_is_help=True,
)

ColumnArg = Annotated[str, typer.Argument(metavar="COLUMN", help="A numeric column.", show_default=False)]
XArg = Annotated[str, typer.Argument(metavar="X", help="The numeric column across.", show_default=False)]
YArg = Annotated[str, typer.Argument(metavar="Y", help="The numeric column up.", show_default=False)]
_MAX_WIDTH = 100
_HEIGHT = 20


def _figure(title: str) -> object:
    import plotext as plt

    plt.clear_figure()
    width = min(shutil.get_terminal_size((80, 24)).columns, _MAX_WIDTH)
    plt.plotsize(width, _HEIGHT)
    if not stdout_is_terminal() or "NO_COLOR" in os.environ:
        plt.theme("clear")  # no escape codes in a pipe or a file
    plt.title(title)
    return plt


def _finite(values: pd.Series, column: str) -> pd.Series:
    import numpy as np

    finite = values[np.isfinite(values)]
    dropped = len(values) - len(finite)
    if dropped:
        note(f"{plural(dropped, 'row')} without a number in {column!r} left out")
    return finite


def _summary(columns: dict[str, pd.Series]) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        [
            {"column": name, "count": len(v), "min": v.min(), "mean": v.mean(), "max": v.max()}
            for name, v in columns.items()
        ]
    )
    typer.echo()
    print_frame(frame)


@app.command()
def hist(
    db: DbArg,
    column: ColumnArg,
    bins: Annotated[int, typer.Option("--bins", "-b", min=1, help="Number of bins.")] = 20,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Draw a histogram of COLUMN, then its count, min, mean and max.

    Example: xt plot hist results.db accuracy --bins 20
    """
    with open_reader(db, table, engine) as reader:
        values = _finite(numeric_column(reader, column), column)
    plt = _figure(f"{column} histogram")
    plt.hist(values.tolist(), bins=bins)  # type: ignore[attr-defined]
    plt.xlabel(column)  # type: ignore[attr-defined]
    typer.echo(plt.build().rstrip())  # type: ignore[attr-defined]
    _summary({column: values})


@app.command()
def scatter(
    db: DbArg,
    x: XArg,
    y: YArg,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Draw Y against X, one point per row where both are numbers, then a summary of each.

    Example: xt plot scatter results.db epoch loss
    """
    import numpy as np

    with open_reader(db, table, engine) as reader:
        xs, ys = numeric_column(reader, x), numeric_column(reader, y)
    size = min(len(xs), len(ys))  # rows appended between the two reads are left out
    xs, ys = xs.iloc[:size].reset_index(drop=True), ys.iloc[:size].reset_index(drop=True)
    both = np.isfinite(xs) & np.isfinite(ys)
    if not both.all():
        note(f"{plural(int((~both).sum()), 'row')} without numbers in both {x!r} and {y!r} left out")
    xs, ys = xs[both], ys[both]
    if not len(xs):
        raise CommandError(f"No row has numbers in both {x!r} and {y!r}")
    plt = _figure(f"{y} against {x}")
    plt.scatter(xs.tolist(), ys.tolist())  # type: ignore[attr-defined]
    plt.xlabel(x)  # type: ignore[attr-defined]
    plt.ylabel(y)  # type: ignore[attr-defined]
    typer.echo(plt.build().rstrip())  # type: ignore[attr-defined]
    _summary({x: xs, y: ys})
