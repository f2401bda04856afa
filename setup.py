"""Compiles the router's hot path with mypyc, where a C compiler is at hand.

The modules listed under `[tool.immute] compiled` in pyproject.toml are plain,
strictly typed Python; mypyc turns them into C extensions, which cuts the
router's CPU per request by about a quarter (bench/router.py measures both).
IMMUTE_COMPILE chooses: unset, compile when a C compiler ($CC, else cc) and
Python's headers are there and install the plain modules otherwise, or when
compiling fails; `1`, compile or fail; `0`, never compile. Extension files an
earlier editable install left beside the sources are removed unless this build
makes them again, so that none can shadow a plain module. Everything else about
the package is in pyproject.toml.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
GROUP = "immute_proxy"  # mypyc's group: its shared runtime module is GROUP__mypyc
METADATA_ONLY = {"egg_info", "dist_info", "sdist"}
CHOICE = os.environ.get("IMMUTE_COMPILE", "")


def compiled_sources() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [f"src/{path}" for path in pyproject["tool"]["immute"]["compiled"]]


def remove_stale_builds(*, keep: list[str]) -> None:
    """Delete extension files under src/ but those of the modules in `keep`."""
    stems = {str(Path(source).with_suffix("")) for source in keep}
    stems |= {f"src/{GROUP}__mypyc"} if keep else set()
    for built in (ROOT / "src").rglob("*.so"):
        stem = str(built.relative_to(ROOT)).split(".", 1)[0]
        if stem not in stems:
            built.unlink()


def why_not_compile() -> str | None:
    """The reason the hot path cannot be compiled here, or None when it can."""
    compiler = shlex.split(os.environ.get("CC") or "cc")
    if not compiler or not shutil.which(compiler[0]):
        return "no C compiler ($CC, else cc)"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        return f"no Python headers ({headers})"
    return None


def plain(reason: str) -> list[Any]:
    if CHOICE == "1":
        sys.exit(f"IMMUTE_COMPILE=1 but the router cannot be compiled: {reason}")
    print(f"immute: installing the router as plain Python: {reason}", file=sys.stderr)
    remove_stale_builds(keep=[])
    return []


def extensions() -> list[Any]:
    if sys.argv[1:2] and sys.argv[1] in METADATA_ONLY:
        return []  # pip runs setup.py for metadata first: no need to run mypyc there
    reason = "IMMUTE_COMPILE=0" if CHOICE == "0" else why_not_compile()
    if reason is not None:
        return plain(reason)
    from mypyc.build import mypycify

    sources = compiled_sources()
    remove_stale_builds(keep=sources)
    try:
        return mypycify(sources, group_name=GROUP)
    except SystemExit as exc:  # mypyc reports a type error this way
        return plain(f"mypyc failed: {exc}")


class BuildOrFallBack(build_ext):
    """Builds the extensions; in auto mode, a failed C build leaves none behind and
    the plain modules serve instead (a compiled module without its group's runtime
    would not import)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            if CHOICE == "1":
                raise
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            remove_stale_builds(keep=[])
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            print(f"immute: compiling failed ({reason}): the router stays plain Python")


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildOrFallBack})
