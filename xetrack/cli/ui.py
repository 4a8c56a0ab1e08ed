"""``xt ui``: serve the dashboard of a database file until Ctrl-C (docs/ui.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import CommandError, DbArg, TableOpt, note, open_reader


def ui(
    db: DbArg,
    table: TableOpt = "default",
    host: Annotated[
        str, typer.Option("--host", help="The address to bind; not 127.0.0.1 means a token is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="The port; 0 picks a free one.")] = 8080,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the URL in the default browser.")] = False,
) -> None:
    """Serve a dashboard of DB's runs, charts and artifacts, read-only, until Ctrl-C.

    Example: xt ui results.db --port 0 --open
    """
    from ..ui import INSTALL_HINT, prepare

    try:
        server, url, app, sock = prepare(lambda name: open_reader(db, name), table, host, port)
    except ImportError as exc:
        raise CommandError(str(exc) if INSTALL_HINT in str(exc) else f"{INSTALL_HINT} ({exc})") from None
    with app.state.source.borrow(table) as reader:
        _ = reader.columns  # a missing table fails here, in one line
    from ..store import shown

    typer.echo(f"xetrack dashboard of {shown(db)}: {url}", err=False)  # a URL without its password
    note("Press Ctrl-C to stop")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.run(sockets=[sock])
    finally:
        app.state.source.close()  # its warming thread and its Readers


def register(app: typer.Typer) -> None:
    app.command()(ui)
