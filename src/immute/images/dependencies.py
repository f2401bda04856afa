"""The dependency layer: the app's Python dependencies, installed into a prefix
(with uv, or pip: see ``installers``) and cached by the hash of everything they
depend on.

The cache key covers the dependency files' contents, the stack, the interpreter's
version and platform, the installer and its version, and the prefix: not the
source code and not the time, so a code-only change is a cache hit. The layer's
mtime is the constant epoch for the same reason. On a base image the layer is
made for the base's Python (see ``base_python``: wheels only, for its version,
ABI and platform, installed by pip, whose options for a foreign target are the
ones ``base_python`` speaks), and the key names that Python instead of the
base's digest, so a changed base with the same Python keeps its dependency
layer. Scripts' ``#!`` lines name ``/usr/bin/env python3`` rather than the path
of the interpreter installed for.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from immute.core.oci_image import DEFAULT_EPOCH, dependency_key, hex_of
from immute.errors import DependencyError
from immute.images.inputs import DEPS_PREFIX, BuildInputs
from immute.images.installers import Installer, chosen_installer, pip_installer, run_installer
from immute.images.layer_tar import LayerBlob, entries_from_tree, write_layer
from immute.images.store import ImageStore, atomic_write

if TYPE_CHECKING:
    from immute.images.base_python import BasePython

DEFAULT_DEPENDENCY_FILES = ("requirements.txt", "pyproject.toml")
_FOREIGN_LOCKS = {
    "uv.lock": "uv export --format requirements-txt -o requirements.lock",
    "poetry.lock": "poetry export -o requirements.lock",
    "Pipfile.lock": "pipenv requirements > requirements.lock",
    "pdm.lock": "pdm export -o requirements.lock",
}
_SHEBANG = re.compile(rb"^#![^\n]*python[^\n]*\n")


class DependencyLayer(NamedTuple):
    blob: LayerBlob
    cached: bool
    key: str


def default_dependency_files(context: Path) -> tuple[str, ...]:
    """``requirements.txt``, else ``pyproject.toml``, else nothing."""
    for name in DEFAULT_DEPENDENCY_FILES:
        if (context / name).is_file():
            return (name,)
    return ()


def interpreter_facts(python: str) -> tuple[str, str]:
    """(``implementation-version``, platform) of ``python``; asked in-process when
    it is this interpreter, which saves a process start on every warm build."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return _facts_here()
    import subprocess

    code = (
        "import sys, sysconfig; "
        "print(sys.implementation.name + '-' + '.'.join(map(str, sys.version_info[:3]))); "
        "print(sysconfig.get_platform())"
    )
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DependencyError(f"interpreter {python} cannot run: {exc}") from None
    version, platform = out.stdout.split()
    return version, platform


def _facts_here() -> tuple[str, str]:
    import sysconfig

    version = ".".join(map(str, sys.version_info[:3]))
    return f"{sys.implementation.name}-{version}", sysconfig.get_platform()


def requirement_args(context: Path, files: Sequence[str]) -> list[str]:
    """Installer arguments (uv's and pip's alike) naming what to install from each
    dependency file."""
    args: list[str] = []
    for name in files:
        path = context / name
        if not path.is_file():
            raise DependencyError(f"dependency file {path} does not exist")
        if path.name in _FOREIGN_LOCKS:
            raise DependencyError(
                f"{path}: immute cannot install from {path.name}; export it in requirements "
                f"format ({_FOREIGN_LOCKS[path.name]}) and list that file in build.dependencies"
            )
        if path.name == "pyproject.toml":
            args.extend(_pyproject_dependencies(path))
        else:
            args.extend(["-r", str(path)])
    return args


def _pyproject_dependencies(path: Path) -> list[str]:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DependencyError(f"{path}: cannot read: {exc}") from None
    deps = data.get("project", {}).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise DependencyError(f"{path}: project.dependencies must be a list of strings")
    return list(deps)


def _file_hashes(context: Path, files: Sequence[str]) -> dict[str, str]:
    hashes = {}
    for name in files:
        try:
            hashes[name] = hashlib.sha256((context / name).read_bytes()).hexdigest()
        except OSError as exc:
            raise DependencyError(f"dependency file {context / name}: {exc}") from None
    return hashes


def dependency_layer(
    store: ImageStore,
    inputs: BuildInputs,
    *,
    progress: Callable[[str], None],
    target: BasePython | None = None,
) -> DependencyLayer | None:
    """The cached or freshly built dependency layer, for ``target`` (a base image's
    Python) or else the host's; None when there is nothing to install."""
    files = list(inputs.dependency_files)
    if not files:
        return None
    markers = ""
    if target is None:
        interpreter, platform = interpreter_facts(inputs.python)
        installer = chosen_installer(inputs.python, cache=store.root / "cache" / "installers")
    else:
        interpreter, platform = target.interpreter, target.platform
        installer = pip_installer(inputs.python, cache=store.root / "cache" / "installers")
        markers = interpreter_facts(inputs.python)[0]
    key = dependency_key(
        files=_file_hashes(inputs.context, files),
        # On a base image pip still reads environment markers with the host's Python.
        stack=inputs.stack if target is None else f"base-image, markers of {markers}",
        interpreter=interpreter,
        platform=platform,
        installer=installer.identity,
        prefix=DEPS_PREFIX,
    )
    cache_file = store.root / "cache" / "deps" / f"{hex_of(key)}.json"
    cached = _cached(store, cache_file)
    if cached is not None:
        return DependencyLayer(cached, True, key)
    args = requirement_args(inputs.context, files)
    if not args:
        return None
    progress(f"installing dependencies with {installer.identity} ({interpreter}, {platform})")
    try:
        blob = _install(store, inputs, installer, [*(target.pip_args() if target else []), *args])
    except DependencyError as exc:
        if target is None:
            raise
        raise DependencyError(f"{exc} (wheels for the stack's {interpreter}, {platform})") from None
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    record = {"digest": blob.digest, "diff_id": blob.diff_id, "size": blob.size}
    atomic_write(cache_file, json.dumps(record).encode())
    return DependencyLayer(blob, False, key)


def _cached(store: ImageStore, cache_file: Path) -> LayerBlob | None:
    try:
        record = json.loads(cache_file.read_text(encoding="utf-8"))
        blob = LayerBlob(str(record["digest"]), str(record["diff_id"]), int(record["size"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return blob if store.has_blob(blob.digest) else None


def source_args(installer: Installer, *, offline: bool, wheelhouse: Path | None) -> list[str]:
    if not offline:
        return []
    if wheelhouse is None or not wheelhouse.is_dir():
        raise DependencyError(
            f"offline build: no wheelhouse at {wheelhouse}; run 'immute deps fetch' first"
        )
    return installer.offline_sources(wheelhouse)


def _install(
    store: ImageStore, inputs: BuildInputs, installer: Installer, args: list[str]
) -> LayerBlob:
    import tempfile

    sources = source_args(installer, offline=inputs.offline, wheelhouse=inputs.wheelhouse)
    with tempfile.TemporaryDirectory(dir=store.root / "tmp", prefix="deps-") as temp:
        target = Path(temp) / "deps"
        argv = installer.install_argv(
            python=inputs.python, target=target, sources=sources, requirements=args
        )
        run_installer(installer, argv, offline=inputs.offline, wheelhouse=inputs.wheelhouse)
        normalise_install(target)
        return write_layer(store, entries_from_tree(target, under=DEPS_PREFIX), mtime=DEFAULT_EPOCH)


def normalise_install(target: Path) -> None:
    """Make an install independent of where it ran: no bytecode caches, no
    installer lock file, and scripts' ``#!`` lines name ``/usr/bin/env python3``
    (their RECORD entries re-hashed to match) instead of the interpreter it ran for."""
    import shutil

    for cache in sorted(target.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    # uv's lock of a --target directory; no installed file.
    (target / ".lock").unlink(missing_ok=True)
    bin_dir = target / "bin"
    if not bin_dir.is_dir():
        return
    rewritten: dict[str, str] = {}
    for script in sorted(bin_dir.iterdir()):
        if script.is_file() and not script.is_symlink():
            data = script.read_bytes()
            if _SHEBANG.match(data):
                data = _SHEBANG.sub(b"#!/usr/bin/env python3\n", data, count=1)
                script.write_bytes(data)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                rewritten[script.name] = f"sha256={digest.decode()},{len(data)}"
    if rewritten:
        for record in target.glob("*.dist-info/RECORD"):
            _fix_record(record, rewritten)


def _fix_record(record: Path, rewritten: dict[str, str]) -> None:
    lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
    for i, line in enumerate(lines):
        path, _, _ = line.partition(",")
        head, _, name = path.rpartition("/")
        if name in rewritten and head.endswith("bin"):
            lines[i] = f"{path},{rewritten[name]}\n"
    record.write_text("".join(lines), encoding="utf-8")


def fetch_wheels(
    *,
    python: str,
    context: Path,
    files: Sequence[str],
    wheelhouse: Path,
    target: BasePython | None = None,
) -> list[str]:
    """Fill ``wheelhouse`` with wheels of every dependency: for the host's Python
    built from sdists where needed, for ``target`` (a base image's Python) only
    wheels that fit it; returns the wheel file names now there."""
    args = requirement_args(context, files)
    wheelhouse.mkdir(parents=True, exist_ok=True)
    if args:
        # pip, whatever installs: uv has no command that keeps the wheels it gets.
        pip = Installer("pip", "", python)
        if target is None:
            command = ["wheel", "--wheel-dir", str(wheelhouse), *args]
        else:
            command = ["download", "--dest", str(wheelhouse), *target.pip_args(), *args]
        run_installer(pip, [*pip.pip_argv(), *command], offline=False, wheelhouse=None)
    return sorted(p.name for p in wheelhouse.glob("*.whl"))
