"""Compiles the router's hot path with mypyc, where a C compiler is at hand.

The modules listed under `[tool.immute] compiled` in pyproject.toml are plain,
strictly typed Python; mypyc turns them into C extensions, which cuts the
router's CPU per request by about a third (bench/router.py measures both).
IMMUTE_COMPILE chooses: unset, compile when gcc (or $CC) and Python's headers
are there and install the plain modules otherwise; `1`, compile or fail;
`0`, never compile. An install without compiling removes the extension files an
earlier one left beside the sources (an editable install builds them there), so
that they cannot shadow the plain modules. Everything else about the package is
in pyproject.toml.
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
GROUP = "immute_proxy"  # mypyc's group: its shared runtime module is GROUP__mypyc
METADATA_ONLY = {"egg_info", "dist_info", "sdist"}


def compiled_sources() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [f"src/{path}" for path in pyproject["tool"]["immute"]["compiled"]]


def remove_stale_builds() -> None:
    for built in (ROOT / "src").rglob("*.so"):
        built.unlink()


def why_not_compile() -> str | None:
    """The reason the hot path cannot be compiled here, or None when it can."""
    if not shutil.which(os.environ.get("CC") or "cc"):
        return "no C compiler (cc or $CC)"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        return f"no Python headers ({headers})"
    return None


def extensions() -> list[Any]:
    if sys.argv[1:2] and sys.argv[1] in METADATA_ONLY:
        return []  # pip runs setup.py for metadata first: no need to run mypyc there
    choice = os.environ.get("IMMUTE_COMPILE", "")
    reason = "IMMUTE_COMPILE=0" if choice == "0" else why_not_compile()
    if reason is not None:
        if choice == "1":
            sys.exit(f"IMMUTE_COMPILE=1 but the router cannot be compiled: {reason}")
        print(f"immute: installing the router as plain Python: {reason}", file=sys.stderr)
        remove_stale_builds()
        return []
    from mypyc.build import mypycify

    return mypycify(compiled_sources(), group_name=GROUP)


setup(ext_modules=extensions())
