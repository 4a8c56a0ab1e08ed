"""The ``xt`` command line. Commands arrive with the CLI issue; ``xt --help`` works now."""

from __future__ import annotations

import typer

from .. import __version__

app = typer.Typer(
    name="xt",
    help="xetrack: read and manage experiment databases from the shell.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print the xetrack version. Example: xt version"""
    typer.echo(__version__)


@app.callback()
def _root() -> None:
    """xetrack: read and manage experiment databases from the shell."""


def main() -> None:
    app()
