"""Options shared by many commands."""

from __future__ import annotations

from typing import Annotated

import typer

SpecFile = Annotated[
    str | None,
    typer.Option(
        "--file", "-f", help="The spec file (default: ./immute.yaml).", show_default=False
    ),
]
Destination = Annotated[
    str | None,
    typer.Option(
        "--destination", "-d", help="Merge immute.DEST.yaml over the spec.", show_default=False
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
