"""``immute init``, ``immute schema`` and ``immute config ...``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from immute.cli.options import Destination, Json, SpecFile

config_app = typer.Typer(help="Validate and show the app's configuration.", no_args_is_help=True)


def init(
    file: SpecFile = None,
    app: Annotated[
        str | None, typer.Option(help="The app's name (default: the directory's).")
    ] = None,
) -> None:
    """Write a commented starter immute.yaml; never overwrites a file."""
    from immute.client.specfile import DEFAULT_SPEC
    from immute.client.starter import write_starter

    path = write_starter(Path(file or DEFAULT_SPEC), app=app)
    typer.echo(f"wrote {path}")


def schema() -> None:
    """Print the JSON Schema of immute.yaml, for editors."""
    from immute.client.spec_view import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@config_app.command("validate")
def validate(file: SpecFile = None, destination: Destination = None, as_json: Json = False) -> None:
    """Check the spec; print every problem with its file, line and key."""
    from immute.client.specfile import read_spec

    loaded = read_spec(file, destination)
    if as_json:
        typer.echo(
            json.dumps({"valid": True, "files": loaded.files, "spec_digest": loaded.spec_digest})
        )
    else:
        typer.echo(f"{' + '.join(loaded.files)}: valid ({loaded.spec_digest})")


@config_app.command("show")
def show(file: SpecFile = None, destination: Destination = None, as_json: Json = False) -> None:
    """Print the normalised spec with its digests; secrets appear as names only."""
    from immute.client.spec_view import normalised_view, render_yaml

    view = normalised_view(file, destination)
    typer.echo(json.dumps(view, indent=2) if as_json else render_yaml(view), nl=as_json)
