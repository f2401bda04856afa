"""The command line: parse, print, call the client. No logic lives here.

Heavy modules (pydantic, rich, the store) are imported inside commands so that
``immute --help`` and ``immute --version`` start fast.
"""

from __future__ import annotations

import sys


def main() -> None:
    from immute.cli.app import app
    from immute.cli.boundary import run

    sys.exit(run(app))
