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
Runtime = Annotated[
    str | None,
    typer.Option(
        "--runtime",
        help="Run on this runtime (process or docker) whatever the spec says.",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SpecFileLongOnly = Annotated[
    str | None,
    typer.Option("--file", help="The spec file (default: ./immute.yaml).", show_default=False),
]
"""For commands whose ``-f`` means follow (``immute logs -f``)."""
