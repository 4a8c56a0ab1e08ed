"""``xt stats``: describe a table, and find the row with the top or bottom value."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from .common import (
    CommandError,
    DbArg,
    Engine,
    EngineOpt,
    JsonOpt,
    TableOpt,
    jsonable,
    open_reader,
    print_frame,
    print_json,
    print_pairs,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..reader import Reader

app = typer.Typer(
    help="Statistics of a table: describe, and the top or bottom row by a column.\n\n"
    "Example: xt stats top results.db accuracy",
    no_args_is_help=True,
)

ColumnArg = Annotated[str, typer.Argument(metavar="COLUMN", help="A numeric column.", show_default=False)]


def numeric_column(reader: Reader, column: str) -> pd.Series:
    """One column as float64 (bools as 0/1; text and NULL as NaN); an error if none is a number."""
    import pandas as pd

    values = reader[column]  # ColumnNotFoundError with close matches
    if str(values.dtype) == "boolean":
        values = values.astype("Float64")
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    if not numbers.notna().any():
        raise CommandError(f"Column {column!r} of table {reader.table_name!r} holds no numbers")
    return numbers


@app.command()
def describe(
    db: DbArg,
    columns: Annotated[
        str | None, typer.Option("--columns", "-c", help="Comma-separated columns (default: all).")
    ] = None,
    as_json: JsonOpt = False,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Count, mean, std, min, quartiles and max of the numeric columns (pandas' describe).
    Also 'xt describe', as xetrack 0.7.0 calls it.

    Example: xt stats describe results.db --columns accuracy,loss

    Example: xt describe results.db --columns=accuracy,loss
    """
    import pandas as pd

    with open_reader(db, table, engine) as reader:
        if columns:
            names = [c.strip() for c in columns.split(",") if c.strip()]
            if not names:
                raise typer.BadParameter("name at least one column", param_hint="--columns")
            frame = pd.DataFrame({name: reader[name] for name in names})
        else:
            frame = reader.to_df()
    if frame.empty:
        raise CommandError(f"Table {table!r} has no rows to describe")
    summary = frame.describe()
    if as_json:
        print_json({str(c): {str(k): jsonable(v) for k, v in summary[c].items()} for c in summary.columns})
    else:
        print_frame(summary, index=True)


def _extreme_row(reader: Reader, column: str, largest: bool) -> dict[str, Any]:
    """The whole row holding the largest (or smallest) number of ``column``; first one on ties."""
    from ..schema import TIMESTAMP, TRACK_ID

    numbers = numeric_column(reader, column)
    position = int(cast(int, numbers.idxmax() if largest else numbers.idxmin()))  # a RangeIndex label
    # Fetch that row through its run (an indexed read), not the whole table.
    track_id = reader[TRACK_ID].iloc[position] if TRACK_ID in reader.columns else None
    frame = None
    if isinstance(track_id, str):
        run = reader.to_df(track_id=track_id)
        timestamp = reader[TIMESTAMP].iloc[position]
        match = run[run[TIMESTAMP] == timestamp]
        if len(match) == 1:
            frame = match
    if frame is None:
        frame = reader.to_df(head=position + 1).iloc[[position]]
    row = frame.iloc[0]
    return {str(name): value for name, value in row.items() if jsonable(value) is not None}


def _show_extreme(db: str, column: str, as_json: bool, table: str, engine: Engine, largest: bool) -> None:
    with open_reader(db, table, engine) as reader:
        row = _extreme_row(reader, column, largest)
    print_pairs(row.items(), as_json)


@app.command()
def top(
    db: DbArg,
    column: ColumnArg,
    as_json: JsonOpt = False,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Show the whole row with the largest value of COLUMN.

    Example: xt stats top results.db accuracy
    """
    _show_extreme(db, column, as_json, table, engine, largest=True)


@app.command()
def bottom(
    db: DbArg,
    column: ColumnArg,
    as_json: JsonOpt = False,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Show the whole row with the smallest value of COLUMN.

    Example: xt stats bottom results.db loss
    """
    _show_extreme(db, column, as_json, table, engine, largest=False)
