"""What every ``xt`` command shares: options, opening a Reader, printing, one-line errors.

Commands read through :class:`xetrack.Reader` (which never creates or changes a file)
and write through its public calls. Heavy modules (pandas, the Reader) are imported
inside the calls, so that ``xt --help`` stays fast.
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import pandas as pd

    from ..reader import Reader


class Engine(str, enum.Enum):
    sqlite = "sqlite"
    duckdb = "duckdb"


DbArg = Annotated[str, typer.Argument(metavar="DB", help="The database file.", show_default=False)]
TableOpt = Annotated[str, typer.Option("--table", "-t", help="The experiment table.")]
EngineOpt = Annotated[Engine, typer.Option("--engine", "-e", help="Read with SQLite or DuckDB.", case_sensitive=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

_CELL_WIDTH = 60  # longer text is cut in tables (never in --json)


class CommandError(Exception):
    """A problem to report in one line on stderr, with exit code 1."""


def open_reader(db: str, table: str = "default", engine: Engine | str = Engine.sqlite) -> Reader:
    """A Reader of ``db`` that leaves the file as it is (a read from the shell writes no run summary)."""
    from ..reader import Reader

    return Reader(db, engine=Engine(engine).value, table=table, persist_summary=False)


def declared_types(db: str, table: str) -> dict[str, str]:
    """Column -> declared SQLite type, in table order; a missing table is a clear error."""
    with open_reader(db, table) as reader:
        names = reader.columns  # raises TableNotFoundError, listing the tables
        # as written in the file; on PostgreSQL the logical types its columns were declared for
        types = reader.store.declared_types(table)
    return {name: types.get(name, "") for name in names}


_NUMBER = re.compile(r"[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?(0|[1-9][0-9]*)")


def parse_value(text: str, declared: str | None = None) -> Any:
    """A command-line value the way a user means it.

    ``true``/``false`` are bools, ``null``/``none`` is None, ``3`` an int, ``0.8`` or
    ``1e-3`` a float, and anything else text (``007`` too). When the value goes into a
    column declared TEXT, it stays the text that was typed.

    >>> [parse_value(v) for v in ["0.8", "3", "1e-3", "true", "null", "007", "resnet"]]
    [0.8, 3, 0.001, True, None, '007', 'resnet']
    >>> parse_value("12", declared="TEXT")
    '12'
    """
    word = text.strip()
    lowered = word.lower()
    if lowered in ("null", "none"):
        return None
    if declared is not None and declared.upper() in ("TEXT", "BLOB"):
        return text
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.fullmatch(word):
        number = int(word)
        if -(2**63) <= number < 2**63:
            return number
    if _NUMBER.fullmatch(word):
        value = float(word)
        if math.isfinite(value):
            return value
    return text


# -- printing -------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """A value as JSON can hold it: missing -> null, bytes -> hex, numpy -> Python."""
    if value is None:
        return None
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():  # numpy scalars
        value = item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [str(c) for c in frame.columns]
    return [
        {name: jsonable(value) for name, value in zip(columns, row)} for row in frame.itertuples(index=False, name=None)
    ]


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _cell(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = "0x" + bytes(value).hex()  # told apart from a number or text
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, str) and len(value) > _CELL_WIDTH:
        return value[: _CELL_WIDTH - 1] + "…"
    return value


def table_text(frame: pd.DataFrame, index: bool = False) -> str:
    """An aligned Markdown table; missing values are blank and long text is cut."""
    shown = frame.astype(object).map(_cell) if len(frame.columns) else frame
    return shown.to_markdown(index=index, floatfmt="g", disable_numparse=False)


def print_frame(frame: pd.DataFrame, as_json: bool = False, index: bool = False) -> None:
    if as_json:
        print_json(records(frame))
    else:
        typer.echo(table_text(frame, index=index))


def print_pairs(
    pairs: Iterable[tuple[str, Any]], as_json: bool = False, header: tuple[str, str] = ("column", "value")
) -> None:
    """A mapping as a two-column table, or a JSON object."""
    pairs = list(pairs)
    if as_json:
        print_json({key: jsonable(value) for key, value in pairs})
        return
    import pandas as pd

    frame = pd.DataFrame({header[0]: [k for k, _ in pairs], header[1]: [v for _, v in pairs]})
    typer.echo(table_text(frame))


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def note(message: str) -> None:
    """A diagnostic line: stderr, so that stdout stays clean for pipes. The password of
    a PostgreSQL URL (echoed by a usage error, say) shows as ``***``."""
    from ..store import hide_passwords

    typer.echo(hide_passwords(message), err=True)


# -- errors ---------------------------------------------------------------------
def one_line(text: str) -> str:
    """Fold a multi-line message (DuckDB's, say) into one line; drop its caret diagram."""
    lines = []
    for line in str(text).splitlines():
        if line.strip().startswith("LINE ") and ":" in line:
            break  # DuckDB's "LINE 1: SELECT ..." and the caret under it
        if line.strip():
            lines.append(line.strip())
    return " ".join(lines) or type(text).__name__


def error_message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return one_line(exc.args[0])  # KeyError's str() would add quotes
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)) and exc.filename and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    text = one_line(str(exc)) if str(exc) else type(exc).__name__
    return text


def stdout_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        return False
