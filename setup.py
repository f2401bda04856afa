"""Compiles the router's hot path with mypyc, where a C compiler is at hand.

The modules listed under `[tool.immute] compiled` in pyproject.toml are plain,
strictly typed Python; mypyc turns them into C extensions, which cuts the
router's CPU per request by about a third (bench/router.py measures both).
IMMUTE_COMPILE chooses: unset, compile when gcc (or $CC) and Python's headers
are there and install the plain modules otherwise; `1`, compile or fail;
`0`, never compile. Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def compiled_sources() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [f"src/{path}" for path in pyproject["tool"]["immute"]["compiled"]]


def why_not_compile() -> str | None:
    """The reason the hot path cannot be compiled here, or None when it can."""
    if not shutil.which(os.environ.get("CC") or "cc"):
        return "no C compiler (cc or $CC)"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        return f"no Python headers ({headers})"
    return None


def extensions() -> list[Any]:
    choice = os.environ.get("IMMUTE_COMPILE", "")
    if choice == "0":
        return []
    reason = why_not_compile()
    if reason is not None:
        if choice == "1":
            sys.exit(f"IMMUTE_COMPILE=1 but the router cannot be compiled: {reason}")
        print(f"immute: installing the router as plain Python: {reason}", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    # One group, so the shared runtime module has a stable name.
    return mypycify(compiled_sources(), group_name="immute_proxy")


setup(ext_modules=extensions())
