"""``immute build``'s arguments and output, without typer.

A warm rebuild is measured end to end, and building typer's command tree (click,
typer, the option annotations) costs about as much as the build itself. So
``immute build`` with the options listed here is parsed by :func:`parse` and run
directly; anything else (``--help``, ``--file=x``, an unknown or repeated option,
a missing value) returns None and typer parses it as usual, with its own messages.
A test checks that these tables name exactly the options of the typer command.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TypedDict

VALUE_OPTIONS = {
    "--file": "file",
    "-f": "file",
    "--destination": "destination",
    "-d": "destination",
    "--wheelhouse": "wheelhouse",
    "--runtime": "runtime",
}
FLAG_OPTIONS = {"--offline": "offline", "--json": "as_json"}


class BuildArgs(TypedDict):
    file: str | None
    destination: str | None
    wheelhouse: str | None
    runtime: str | None
    offline: bool
    as_json: bool


def parse(args: list[str]) -> BuildArgs | None:
    """Keyword arguments for :func:`build` from ``args`` (what follows ``build``),
    or None when typer should parse them instead."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    rest = iter(args)
    for arg in rest:
        if arg in FLAG_OPTIONS and FLAG_OPTIONS[arg] not in flags:
            flags.add(FLAG_OPTIONS[arg])
            continue
        value = next(rest, None)
        if arg not in VALUE_OPTIONS or VALUE_OPTIONS[arg] in values or value is None:
            return None
        if value.startswith("-"):
            return None
        values[VALUE_OPTIONS[arg]] = value
    return BuildArgs(
        file=values.get("file"),
        destination=values.get("destination"),
        wheelhouse=values.get("wheelhouse"),
        runtime=values.get("runtime"),
        offline="offline" in flags,
        as_json="as_json" in flags,
    )


def progress(message: str) -> None:
    sys.stderr.write(f"  {message}\n")
    sys.stderr.flush()


def build(
    file: str | None = None,
    destination: str | None = None,
    *,
    offline: bool = False,
    wheelhouse: str | None = None,
    runtime: str | None = None,
    as_json: bool = False,
) -> None:
    """Build the app's image and print the result (layers and digest, or JSON)."""
    from immute.client.images import build_image

    result = build_image(
        file,
        destination,
        offline=offline,
        wheelhouse=wheelhouse,
        progress=progress,
        runtime=runtime,
    )
    document = result.to_json()
    sys.stdout.write(json.dumps(document, indent=2) + "\n" if as_json else _text(document))
    sys.stdout.flush()


def _text(document: dict[str, Any]) -> str:
    """The layers and the image's name and digest, from the ``--json`` document."""
    lines = [
        f"{layer['role']:<13} {layer['digest']}  {human_size(layer['size']):>9}  "
        + ("cached" if layer["cached"] else "built")
        for layer in document["layers"]
    ]
    name = f"{document['name']} {document['manifest_digest']}"
    return "".join(f"{line}\n" for line in [*lines, name])


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
