"""Reading and changing rows: head, tail, columns, tables, set, delete."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DbArg,
    Engine,
    EngineOpt,
    JsonOpt,
    TableOpt,
    declared_types,
    open_reader,
    parse_value,
    print_frame,
    print_json,
)

CountOpt = Annotated[int, typer.Option("--n", "-n", min=0, help="How many rows.")]


def head(
    db: DbArg,
    n: CountOpt = 5,
    as_json: JsonOpt = False,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Show the first rows of a table, oldest first.

    Example: xt head results.db --n 3
    """
    with open_reader(db, table, engine) as reader:
        frame = reader.head(n)
    print_frame(frame, as_json)


def tail(
    db: DbArg,
    n: CountOpt = 5,
    as_json: JsonOpt = False,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Show the last rows of a table, still oldest first.

    Example: xt tail results.db --n 1 --json
    """
    with open_reader(db, table, engine) as reader:
        frame = reader.tail(n)
    print_frame(frame, as_json)


def columns(
    db: DbArg,
    as_json: JsonOpt = False,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """List a table's columns and their declared types (with --engine duckdb, DuckDB's types too).

    Example: xt columns results.db --table model_experiments
    """
    import pandas as pd

    types = declared_types(db, table)
    frame = pd.DataFrame({"column": list(types), "type": list(types.values())})
    if Engine(engine) is Engine.duckdb:
        with open_reader(db, table, engine) as reader:
            duck = reader.store.native_types(table)
        frame["duckdb_type"] = [duck.get(name, "") for name in types]
    print_frame(frame, as_json)


def tables(
    db: DbArg,
    as_json: JsonOpt = False,
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """List the experiment tables with their row and run counts (and descriptions).

    Example: xt tables results.db
    """
    import pandas as pd

    with open_reader(db, engine=engine) as reader:
        frame = reader.tables()
    listing = [
        {
            "table": row["table"],
            "rows": int(row["rows"]),
            "runs": None if pd.isna(row["runs"]) else int(row["runs"]),
            **(
                {"description": row["description"]}
                if "description" in row and isinstance(row["description"], str)
                else {}
            ),
        }
        for row in frame.astype(object).to_dict("records")
    ]
    if as_json:
        print_json(listing)
    elif not listing:
        typer.echo(f"No experiment tables in {db}")
    else:
        print_frame(pd.DataFrame(listing))


def set_value(
    db: DbArg,
    key: Annotated[str, typer.Argument(metavar="KEY", help="The column to set (created if new).", show_default=False)],
    value: Annotated[str, typer.Argument(metavar="VALUE", help="0.8, 3, true, null or any text.", show_default=False)],
    where_key: Annotated[str | None, typer.Option("--where-key", help="Only rows whose column ...")] = None,
    where_value: Annotated[str | None, typer.Option("--where-value", help="... equals this value.")] = None,
    track_id: Annotated[str | None, typer.Option("--track-id", help="Only this run's rows.")] = None,
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Set a value on existing rows: all of them, one run's, or those matching --where-key/--where-value.

    VALUE is read as a user means it: 0.8 is a float, 3 an int, true/false a bool, null
    is NULL, and anything else text (in a TEXT column it stays the text typed).

    Example: xt set results.db accuracy 0.8 --where-key model --where-value xgboost --track-id ebony-loon-6720
    """
    if (where_key is None) != (where_value is None):
        raise typer.BadParameter("give --where-key and --where-value together", param_hint="--where-key")
    from ..schema import column_name

    types = declared_types(db, table)
    lowered = {name.lower(): decl for name, decl in types.items()}
    parsed = parse_value(value, lowered.get(column_name(key).lower()))
    with open_reader(db, table, engine) as reader:
        if where_key is None:
            changed = reader.set_value(key, parsed, track_id=track_id)
        else:
            assert where_value is not None
            match = parse_value(where_value, lowered.get(column_name(where_key).lower()))
            changed = reader.set_where(key, parsed, where_key, match, track_id=track_id)
    typer.echo(f"Updated {changed}")


def delete(
    db: DbArg,
    track_id: Annotated[str, typer.Argument(metavar="TRACK_ID", help="The run to delete.", show_default=False)],
    table: TableOpt = "default",
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Delete every row of one run and print how many were deleted.

    Example: xt delete results.db ebony-loon-6720
    """
    with open_reader(db, table, engine) as reader:
        deleted = reader.delete_run(track_id)
    typer.echo(f"Deleted {deleted}")


def register(app: typer.Typer) -> None:
    app.command()(head)
    app.command()(tail)
    app.command()(columns)
    app.command()(tables)
    app.command("set")(set_value)
    app.command()(delete)
