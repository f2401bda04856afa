"""The command line: parse, print, call the client. No logic lives here.

Heavy modules (pydantic, rich, the store) are imported inside commands so that
``immute --help`` and ``immute --version`` start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT_HELP = Path(__file__).with_name("root_help.txt")
"""``immute --help`` as typer renders it at 100 columns, written by ``make docs``
and checked against the live rendering by the tests: building the whole command
tree costs more than the 0.15 s the CLI may take to answer."""


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        # Scripts call this constantly; skip building the whole command tree.
        from immute import __version__

        sys.stdout.write(f"immute {__version__}\n")
        sys.exit(0)
    if sys.argv[1:] == ["--help"] and ROOT_HELP.is_file():
        sys.stdout.write(ROOT_HELP.read_text(encoding="utf-8"))
        sys.exit(0)
    from immute.cli.boundary import run

    if sys.argv[1:2] == ["build"]:
        # A warm rebuild is timed end to end: skip typer when its arguments are plain.
        from immute.cli.build_command import build, parse

        options = parse(sys.argv[2:])
        if options is not None:
            sys.exit(run(lambda: build(**options)))
    from immute.cli.app import build_app

    sys.exit(run(build_app(sys.argv[1] if len(sys.argv) > 1 else None)))
