"""``xt artifacts`` and ``xt models``: the files runs kept and the model registry.

Artifacts are read through ``Reader.artifacts`` and ``Reader.open_artifact``, models through
``Reader.models`` and ``Reader.export_model``; aliases move through
``Reader.set_model_alias`` and ``Reader.delete_model_alias``. Bytes are streamed, one
chunk at a time, so an artifact of any size goes out in bounded memory; a file OUTPUT
appears only once every byte is verified against the hash.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Annotated

import typer

from .common import CommandError, DbArg, JsonOpt, TableOpt, open_reader, print_frame

if TYPE_CHECKING:
    import pandas as pd

artifacts_app = typer.Typer(
    help="List the artifacts runs kept (files, bytes, figures, frames) and get their bytes.\n\n"
    "Example: xt artifacts ls results.db --track-id fierce-pudu-1649",
    no_args_is_help=True,
)
models_app = typer.Typer(
    help="List registered model versions, move their aliases and export their bytes.\n\n"
    "Example: xt models ls results.db",
    no_args_is_help=True,
)

OutputArg = Annotated[
    str, typer.Argument(metavar="OUTPUT", help="The file to write; - for stdout.", show_default=False)
]
TrackIdOpt = Annotated[str | None, typer.Option("--track-id", "-r", help="Only this run's artifacts.")]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The model's name.", show_default=False)]
AliasArg = Annotated[str, typer.Argument(metavar="ALIAS", help="The alias, e.g. production.", show_default=False)]


# -- writing bytes out ------------------------------------------------------------------
def _to_stdout(pieces: Iterable[bytes]) -> int:
    """Stream the pieces to stdout as they come; a piece that fails verification raises
    after the earlier ones went out, so the error says to discard them."""
    out = sys.stdout.buffer
    written = 0
    try:
        for piece in pieces:
            out.write(piece)
            written += len(piece)
    except Exception as exc:
        from ..errors import IntegrityError

        if not isinstance(exc, IntegrityError) or not written:
            raise
        raise CommandError(f"{exc}; {written} bytes already went to stdout: discard them") from exc
    out.flush()
    return written


def _check_output(output: str, suggestion: str) -> None:
    if os.path.isdir(output):
        raise CommandError(f"{output!r} is a folder: give the file to write, e.g. {os.path.join(output, suggestion)}")


def _read_in_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """The stream's bytes, one stored chunk at a time."""
    from ..store.chunks import CHUNK_SIZE

    return iter(lambda: stream.read(CHUNK_SIZE), b"")


# -- xt artifacts -------------------------------------------------------------------------
@artifacts_app.command("ls")
def list_artifacts(
    db: DbArg, track_id: TrackIdOpt = None, table: TableOpt = "default", as_json: JsonOpt = False
) -> None:
    """List the artifacts of a table's runs (or of one run): track_id, name, type, hash,
    size in bytes, when it was logged and its step (empty when logged without one).

    Example: xt artifacts ls results.db --track-id fierce-pudu-1649
    """
    with open_reader(db, table) as reader:
        frame = reader.artifacts(track_id)
        if not len(frame) and table != "default":
            _ = reader.columns  # a misspelled table is an error that lists the tables
    if as_json:
        print_frame(frame, True)
    elif not len(frame):
        where = f" for run {track_id}" if track_id else ""
        typer.echo(f"No artifacts in {db}{where}")
    else:
        print_frame(frame)


@artifacts_app.command("get")
def get_artifact(
    db: DbArg,
    hash_or_name: Annotated[
        str,
        typer.Argument(
            metavar="HASH_OR_NAME", help="The artifact's hash, or its name (the latest logged).", show_default=False
        ),
    ],
    output: OutputArg,
    track_id: Annotated[str | None, typer.Option("--track-id", "-r", help="The artifact of this run.")] = None,
    table: TableOpt = "default",
    step: Annotated[
        int | None,
        typer.Option("--step", min=0, help="The artifact logged at this step (default: the latest step)."),
    ] = None,
) -> None:
    """Write an artifact's bytes to a file, or to stdout with -, streamed and verified.

    A file is written only once every byte matches the hash: a damaged artifact leaves
    no file behind. A name logged at several steps gives its latest step, or --step's.

    Example: xt artifacts get results.db loss.png loss.png --track-id fierce-pudu-1649 --step 3
    """
    from ..artifacts import write_verified

    with open_reader(db, table) as reader:
        if output != "-":
            _check_output(output, os.path.basename(hash_or_name) or "artifact")
        with reader.open_artifact(hash_or_name, track_id, step=step) as stream:
            if output == "-":
                _to_stdout(_read_in_chunks(stream))
                return
            size = write_verified(_read_in_chunks(stream), output)
    typer.echo(f"Wrote {size} bytes to {output}")


# -- xt models ----------------------------------------------------------------------------
def _aliases(frame: pd.DataFrame, name: str) -> dict[str, int]:
    """alias -> version of model ``name``; a name not registered is an error listing the names."""
    from ..errors import NotFoundError
    from ..store.base import close_matches

    versions = frame[frame["name"] == name]
    if not len(versions):
        names = sorted(set(frame["name"]))
        listed = ", ".join(names) if names else "none is registered"
        raise NotFoundError(f"No model named {name!r}.{close_matches(name, names)} Models: {listed}")
    return {
        alias: int(version) for version, aliases in zip(versions["version"], versions["aliases"]) for alias in aliases
    }


@models_app.command("ls")
def list_models(db: DbArg, as_json: JsonOpt = False) -> None:
    """List every registered model version: name, version, aliases, hash, kind (asset: a
    pickled object; artifact: logged bytes), size, the run that registered it, description.

    Example: xt models ls results.db
    """
    with open_reader(db) as reader:
        frame = reader.models()
    if as_json:
        print_frame(frame, True)  # aliases stay a JSON array
    elif not len(frame):
        typer.echo(f"No models in {db}")
    else:
        frame["aliases"] = frame["aliases"].map(", ".join)
        print_frame(frame)


@models_app.command("alias")
def set_alias(
    db: DbArg,
    name: NameArg,
    version: Annotated[
        int, typer.Argument(metavar="VERSION", min=1, help="The version the alias names.", show_default=False)
    ],
    alias: AliasArg,
) -> None:
    """Point ALIAS of model NAME at VERSION, moving it from the version it named.

    Example: xt models alias results.db mnist-classifier 2 production
    """
    with open_reader(db) as reader:
        frame = reader.models()
        before = _aliases(frame, name).get(alias) if name in set(frame["name"]) else None
        reader.set_model_alias(name, version, alias)  # unknown names and versions: a clear error
    was = "(new)" if before is None else "(unchanged)" if before == version else f"(was {before})"
    typer.echo(f"{name}@{alias} -> version {version} {was}")


@models_app.command("unalias")
def delete_alias(db: DbArg, name: NameArg, alias: AliasArg) -> None:
    """Remove ALIAS of model NAME; the version it named stays.

    Example: xt models unalias results.db mnist-classifier staging
    """
    from ..errors import NotFoundError
    from ..store.base import close_matches

    with open_reader(db) as reader:
        pointers = _aliases(reader.models(), name)
        if alias not in pointers or not reader.delete_model_alias(name, alias):
            shown = ", ".join(f"{a} -> {v}" for a, v in sorted(pointers.items())) or "none"
            raise NotFoundError(
                f"Model {name!r} has no alias {alias!r}.{close_matches(alias, list(pointers))} Aliases: {shown}"
            )
    typer.echo(f"Removed {name}@{alias} (was version {pointers[alias]})")


@models_app.command("export")
def export_model(
    db: DbArg,
    spec: Annotated[
        str,
        typer.Argument(
            metavar="NAME[:V|@ALIAS]", help="The model: name (latest), name:3 or name@production.", show_default=False
        ),
    ],
    output: OutputArg,
) -> None:
    """Write a model version's stored bytes to a file (or stdout with -): the cloudpickle of
    a registered object, to load with cloudpickle.loads, or a registered artifact's bytes.

    Example: xt models export results.db mnist-classifier@production model.cloudpickle
    """
    with open_reader(db) as reader:
        if output == "-":
            with reader.open_model(spec) as stream:
                _to_stdout(_read_in_chunks(stream))
            return
        _check_output(output, "model.cloudpickle")
        size = reader.export_model(spec, output)
    typer.echo(f"Wrote {size} bytes to {output}")
