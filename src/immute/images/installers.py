"""The program that installs an app's dependencies into the dependency layer.

uv by default: a dependency of immute, it resolves and installs several times
faster than pip. ``IMMUTE_INSTALLER=pip`` installs with the pip of the image's
interpreter instead. Each reads its own settings (``UV_*`` and ``uv.toml``, or
``PIP_*`` and ``pip.conf``), except offline, where only the wheelhouse counts.
The installer's name and version are part of the dependency cache key: the two
write different files (scripts, ``INSTALLER``), so they make different layers.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from immute.errors import DependencyError, failure_line
from immute.images.store import write_cache

INSTALLER_VARIABLE = "IMMUTE_INSTALLER"
INSTALLERS = ("uv", "pip")
_MISSING = (
    re.compile(r"No matching distribution found for (\S+)"),
    re.compile(r"(\S+) was not found in the"),
    re.compile(r"there is no version of (\S+)"),
)


class Installer(NamedTuple):
    """``name`` (uv or pip) at ``version``; ``program`` is the uv binary, or the
    interpreter whose pip runs."""

    name: str
    version: str
    program: str

    @property
    def identity(self) -> str:
        return f"{self.name} {self.version}"

    def install_argv(
        self, *, python: str, target: Path, sources: Sequence[str], requirements: Sequence[str]
    ) -> list[str]:
        """Install ``requirements`` into ``target`` for ``python``: no bytecode, and
        files copied (never hard-linked from a cache that normalising would edit)."""
        if self.name == "uv":
            head = [self.program, "pip", "install", "--quiet", "--python", python]
            options = ["--target", str(target), "--link-mode", "copy"]
            return [*head, *options, *sources, *requirements]
        options = ["--target", str(target), "--no-compile", "--no-warn-script-location"]
        return [*self.pip_argv(), "install", *options, *sources, *requirements]

    def pip_argv(self) -> list[str]:
        return [self.program, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]

    def offline_sources(self, wheelhouse: Path) -> list[str]:
        only = ["--no-index", "--find-links", str(wheelhouse)]
        return ["--offline", *only] if self.name == "uv" else only


def chosen_installer(python: str, *, cache: Path) -> Installer:
    """The installer ``$IMMUTE_INSTALLER`` names (default uv); ``cache`` keeps uv's
    version, keyed by its binary's identity, so a warm build need not ask it."""
    name = os.environ.get(INSTALLER_VARIABLE) or "uv"
    if name not in INSTALLERS:
        raise DependencyError(f"${INSTALLER_VARIABLE}: {name!r} is not an installer (uv or pip)")
    if name == "pip":
        return pip_installer(python, cache=cache)
    binary = _uv_binary()
    version = _remembered("uv", binary, cache, lambda: _ask([binary, "--version"], 1))
    return Installer("uv", version, binary)


def pip_installer(python: str, *, cache: Path) -> Installer:
    """The pip of ``python``, at the version it reports; remembered by the identity
    of pip's own ``__init__.py`` when ``python`` is this interpreter (an upgrade
    rewrites it), asked every time otherwise."""

    def ask() -> str:
        try:
            return _ask([python, "-m", "pip", "--version"], 1)
        except DependencyError:
            raise DependencyError(
                f"{python} has no working pip, which installs dependencies for a base image's "
                f"Python (and with {INSTALLER_VARIABLE}=pip): run '{python} -m ensurepip'"
            ) from None

    witness = _pip_here() if os.path.realpath(python) == os.path.realpath(sys.executable) else None
    return Installer("pip", _remembered("pip", witness, cache, ask) if witness else ask(), python)


def _pip_here() -> str | None:
    from importlib.util import find_spec

    spec = find_spec("pip")
    return spec.origin if spec is not None and spec.origin else None


def _uv_binary() -> str:
    """uv installed beside immute: in this interpreter's scripts directory, which
    is where ``uv.find_uv_bin`` looks first, else wherever that finds it (its full
    search costs a warm build several milliseconds)."""
    import sysconfig

    beside = os.path.join(sysconfig.get_path("scripts"), "uv")
    if os.path.isfile(beside):
        return beside
    from uv import find_uv_bin

    try:
        return find_uv_bin()
    except FileNotFoundError:
        raise DependencyError(
            f"uv is not installed beside immute; reinstall immute or set {INSTALLER_VARIABLE}=pip"
        ) from None


def _remembered(name: str, witness: str, cache: Path, ask: Callable[[], str]) -> str:
    """``ask()``'s answer (a version), kept in ``cache`` for as long as the file
    ``witness`` keeps its identity (path, size, mtime, inode)."""
    info = os.stat(witness)
    key = f"{os.path.realpath(witness)}|{info.st_size}|{info.st_mtime_ns}|{info.st_ino}"
    path = cache / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    version = ask()
    write_cache(path, version.encode())
    return version


def _ask(argv: list[str], word: int) -> str:
    """Word ``word`` of the first line that ``argv`` prints (``uv 0.13.9 (...)``,
    ``pip 24.0 from ...``)."""
    import subprocess

    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.split()[word]
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        raise DependencyError(f"{argv[0]} cannot tell its version: {exc}") from None


def run_installer(
    installer: Installer, argv: Sequence[str], *, offline: bool, wheelhouse: Path | None
) -> None:
    """Run an install (or ``pip wheel``); turn its failure into one line naming the
    missing distribution if any."""
    import subprocess

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if offline:
        # Only the wheelhouse: no variable and no configuration file may add an
        # index or a find-links directory behind its back.
        env = {k: v for k, v in env.items() if not k.startswith(("PIP_", "UV_"))}
        env.update(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1")
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, env=env)
    if result.returncode == 0:
        return
    missing = next((m for p in _MISSING if (m := p.search(result.stderr))), None)
    if missing and offline:
        raise DependencyError(
            f"offline build: {missing.group(1)} is not in the wheelhouse {wheelhouse}; "
            "run 'immute deps fetch'"
        )
    if missing:
        raise DependencyError(f"{installer.name} found no distribution for {missing.group(1)}")
    detail = failure_line(result.stderr)
    raise DependencyError(f"{installer.name} failed (exit {result.returncode}): {detail}")
