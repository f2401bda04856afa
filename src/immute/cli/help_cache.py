"""Writes ``root_help.txt``: ``python -m immute.cli.help_cache`` (run by ``make docs``)."""

from __future__ import annotations

import os
import subprocess
import sys

from immute.cli import ROOT_HELP

_RENDER = "from immute.cli.app import build_app; build_app()(['--help'], prog_name='immute')"


def render_root_help() -> str:
    """``immute --help`` exactly as the full typer app renders it at 100 columns."""
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-c", _RENDER], env=env, capture_output=True, text=True, check=True
    ).stdout


if __name__ == "__main__":
    ROOT_HELP.write_text(render_root_help(), encoding="utf-8")
