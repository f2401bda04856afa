"""Translate errors into one line and an exit code at the CLI boundary."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from immute.errors import ImmuteError


def debug_log_path() -> Path:
    """Where unexpected errors are written, with their traceback."""
    import tempfile

    state = os.environ.get("IMMUTE_STATE_DIR")
    base = Path(state) if state else Path(tempfile.gettempdir())
    return base / "immute-debug.log"


def error_line(message: str) -> None:
    """Print one red line on stderr (red only on a terminal)."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\x1b[31merror: {message}\x1b[0m\n")
    else:
        sys.stderr.write(f"error: {message}\n")


def run(app: Callable[[], object]) -> int:
    """Run the typer app (which handles its own usage errors), or any command
    function; return the exit code."""
    try:
        app()
    except ImmuteError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            error_line(line)
        return exc.exit_code
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:
        return _unexpected(exc)
    return 0


def _unexpected(exc: BaseException) -> int:
    # Imported here: only a crash pays for them.
    import time
    import traceback

    path = debug_log_path()
    try:
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} pid {os.getpid()}\n")
            log.write("".join(traceback.format_exception(exc)))
        where = f" (traceback in {path})"
    except OSError:
        where = ""
    error_line(f"unexpected {type(exc).__name__}: {exc}{where}")
    return 70
