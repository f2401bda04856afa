"""The command line: parse, print, call the client. No logic lives here.

Heavy modules (pydantic, rich, the store) are imported inside commands so that
``immute --help`` and ``immute --version`` start fast.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        # Scripts call this constantly; skip building the whole command tree.
        from immute import __version__

        sys.stdout.write(f"immute {__version__}\n")
        sys.exit(0)
    from immute.cli.app import app
    from immute.cli.boundary import run

    sys.exit(run(app))
