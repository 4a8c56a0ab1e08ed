"""The ``xt`` command line: one typer app, one module per command group.

Every command reads through :class:`xetrack.Reader` and writes through its public calls
(``xt copy`` through :func:`xetrack.copy`), the same API a user calls. Output goes to
stdout and diagnostics to stderr. An error is one line on stderr and a non-zero exit,
never a traceback (set ``XT_TRACEBACK=1`` to see one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

import xetrack

from . import artifacts, assets, backup, cache, copy, duckdb_shell, migrate, plot, rows, runs, sql, stats, ui
from .common import CommandError, error_message, note, one_line

app = typer.Typer(
    name="xt",
    help="xetrack: read, change and merge experiment databases from the shell.\n\nExample: xt head results.db --n 3",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print the xetrack version.

    Example: xt version
    """
    typer.echo(xetrack.__version__)


rows.register(app)
runs.register(app)
sql.register(app)
duckdb_shell.register(app)
app.add_typer(assets.app, name="assets")
app.add_typer(artifacts.artifacts_app, name="artifacts")
app.add_typer(artifacts.models_app, name="models")
app.add_typer(cache.app, name="cache")
copy.register(app)
backup.register(app)
app.add_typer(stats.app, name="stats")
app.command("describe")(stats.describe)  # as xetrack 0.7.0's README calls it
app.add_typer(plot.app, name="plot")
app.add_typer(migrate.import_app, name="import")
app.add_typer(migrate.export_app, name="export")
ui.register(app)
__import__("xetrack.cli.prune", fromlist=["register"]).register(app)  # xt prune, xt du


def _usage_hint(exc: BaseException) -> str:
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return ""
    return f" (see '{ctx.command_path} --help')"


def main(argv: Sequence[str] | None = None) -> None:
    """The ``xt`` console script."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=list(argv) if argv is not None else None, prog_name="xt", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors: a bad option, a missing argument...
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)
        note(f"Error: {one_line(exc.format_message())}{_usage_hint(exc)}")
        sys.exit(exc.exit_code)
    except typer.Abort:
        note("Aborted")
        sys.exit(1)
    except BrokenPipeError:
        # The reader of our stdout went away (| head): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:
        note("Interrupted")
        sys.exit(130)
    except CommandError as exc:
        note(f"Error: {error_message(exc)}")
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("XT_TRACEBACK"):
            raise
        note(f"Error: {error_message(exc)}")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
