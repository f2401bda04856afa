"""Which build of the router's hot path this install runs (setup.py compiles it
with mypyc where it can), and how to run the other one: the plain modules, from
a copy of the source without the compiled ones. Used by bench/router.py and
tests/router/test_compiled.py."""

from __future__ import annotations

import importlib.machinery
import os
import shutil
from pathlib import Path

import immute
import immute.proxy.exchange

RUNTIME = "immute_proxy__mypyc"  # setup.py's group: the compiled modules' shared code
EXTENSIONS = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def compiled() -> bool:
    """Whether the installed router's hot path is a mypyc build."""
    return (immute.proxy.exchange.__file__ or "").endswith(EXTENSIONS)


def plain_env(tmp: Path) -> dict[str, str]:
    """An environment whose `python -m immute.proxy` runs the plain modules: the
    same source, copied under `tmp` without extension files, first on the path."""
    source = Path(immute.__file__).parent
    shutil.copytree(
        source, tmp / "plain" / "immute", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    return {**os.environ, "PYTHONPATH": str(tmp / "plain")}
