"""``xt sql``: the user's own SQL, with the database attached as ``db`` under either engine."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from .common import CommandError, DbArg, Engine, EngineOpt, JsonOpt, note, open_reader, plural, print_frame

_NEAR = re.compile(r'near "([A-Za-z_][A-Za-z0-9_]*)"')


def keyword_hint(query: str, message: str) -> str:
    """When a syntax error is at a table name after ``db.`` that is an SQL keyword
    (``db.default``, ``db.order``), the advice to quote it; else nothing.

    >>> keyword_hint('SELECT * FROM db.default', 'near "default": syntax error')
    '. "default" is an SQL keyword: write the table as db."default"'
    """
    if "syntax error" not in message.lower():
        return ""
    near = _NEAR.search(message)
    if near is None:
        return ""
    used = re.search(r"\bdb\s*\.\s*(" + re.escape(near.group(1)) + r")\b", query, re.IGNORECASE)
    if used is None:
        return ""
    word = used.group(1)
    return f'. "{word}" is an SQL keyword: write the table as db."{word}"'


def sql(
    db: DbArg,
    query: Annotated[str, typer.Argument(metavar="SQL", help="One SQL statement.", show_default=False)],
    as_json: JsonOpt = False,
    engine: EngineOpt = Engine.sqlite,
) -> None:
    """Run one SQL statement and print its result. The file is attached as db.

    Tables are db."default", db.model_experiments and so on, under either engine.

    Example: xt sql results.db 'SELECT model, max(accuracy) FROM db."default" GROUP BY model'
    """
    import pandas as pd

    from ..store.base import SQLError

    with open_reader(db, engine=engine) as reader:
        try:
            names, rows, changed = reader.store.run_sql(query)
        except SQLError as exc:
            raise CommandError(f"SQL error: {exc}{keyword_hint(query, str(exc))}") from None
    if names is None:  # a statement with no result set
        if changed >= 0:
            note(f"{plural(changed, 'row')} changed")
        return
    # object columns: an integer column with NULLs stays integers, not floats
    print_frame(pd.DataFrame(rows, columns=names, dtype=object), as_json)


def register(app: typer.Typer) -> None:
    app.command()(sql)
