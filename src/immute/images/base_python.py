"""The Python a base image runs, read from its layers without a daemon.

A base image's processes run its own interpreter, not the host's, so its
dependencies are installed for that interpreter: pip runs on the host with
``--target`` and ``--python-version/--implementation/--abi/--platform
--only-binary=:all:``, which takes wheels only and checks ``Requires-Python``
against the base's version. The facts come from the layers as they stack up
(whiteouts applied):

- the version: ``python3`` on the image's ``PATH`` when it is (or links to)
  ``python3.N``, else the highest ``lib/python3.N/os.py`` (the standard library)
  under ``/usr`` or ``/usr/local``;
- the platform: the config's architecture, and the C library: glibc's version
  from ``libc.so.6`` (its banner) or a ``libc-2.N.so`` file name gives
  ``manylinux_2_N`` and every older manylinux tag; musl's loader gives
  ``musllinux_1_2`` down to ``1_0``; with neither, only pure-Python wheels fit.

pip evaluates environment markers (``; python_version < "3.12"``) with the
interpreter that runs it; that is the one documented difference from running
pip inside the image.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from immute.core.oci_image import hex_of
from immute.errors import DependencyError
from immute.images.inputs import DEFAULT_PATH
from immute.images.store import ImageStore, Manifest, atomic_write
from immute.images.unpack import OPAQUE, WHITEOUT

_MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "arm": "armv7l"}
_STDLIB = re.compile(r"(?:usr/local/|usr/)lib/python3\.(\d+)/os\.py")
_BIN = re.compile(r"(?:usr/local/|usr/)?s?bin/python3(?:\.\d+)?")
_GLIBC = re.compile(r"(?:usr/)?lib(?:64)?/(?:[\w-]+-linux-gnu\w*/)?(libc\.so\.6|libc-2\.(\d+)\.so)")
_MUSL = re.compile(r"(?:usr/)?lib/ld-musl-[\w-]+\.so\.1")
_GLIBC_BANNER = re.compile(rb"GNU C Library [^\n\x00]{0,120}? version 2\.(\d+)")
_VERSIONED = re.compile(r"python3\.(\d+)")
_CACHE_VERSION = 1
_MAX_LIBC = 64 << 20


class BasePython(NamedTuple):
    """CPython ``3.minor`` on ``machine`` with ``libc`` (``glibc``, ``musl`` or ``""``)."""

    minor: int
    machine: str
    libc: str = ""
    libc_minor: int = 0

    @property
    def interpreter(self) -> str:
        return f"cpython-3.{self.minor}"

    @property
    def platform(self) -> str:
        libc = {"glibc": f"glibc-2.{self.libc_minor}", "musl": "musl"}.get(self.libc, "no-libc")
        return f"{libc}-{self.machine}"

    def platforms(self) -> list[str]:
        """pip ``--platform`` tags, newest first: pip does not widen them itself."""
        m = self.machine
        if self.libc == "musl":
            return [f"musllinux_1_{n}_{m}" for n in (2, 1, 0)]
        if self.libc != "glibc":
            return ["any"]
        tags = [f"manylinux_2_{n}_{m}" for n in range(self.libc_minor, 4, -1)]
        legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
        for name, needs in legacy.items():
            if self.libc_minor >= needs and (m in ("x86_64", "i686") or name == "manylinux2014"):
                tags.append(f"{name}_{m}")
        return tags

    def pip_args(self) -> list[str]:
        args = ["--python-version", f"3.{self.minor}", "--implementation", "cp"]
        for abi in (f"cp3{self.minor}", "abi3", "none"):
            args += ["--abi", abi]
        for tag in self.platforms():
            args += ["--platform", tag]
        return [*args, "--only-binary=:all:"]

    def to_json(self) -> dict[str, object]:
        return {"interpreter": self.interpreter, "platform": self.platform}


def base_python(store: ImageStore, manifest: Manifest) -> BasePython:
    """The interpreter of the base image ``manifest``; cached by its digest, since
    reading a base's layers takes a second or more. Raises DependencyError when
    the image holds no Python 3."""
    cache = store.root / "cache" / "stacks" / f"{hex_of(manifest.digest)}.json"
    try:
        record = json.loads(cache.read_text(encoding="utf-8"))
        if record.get("version") == _CACHE_VERSION:
            return BasePython(**record["python"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    config = store.read_json(manifest.config.digest)
    found = python_of_layers(
        [store.blob_path(layer.digest) for layer in manifest.layers],
        config=config if isinstance(config, dict) else {},
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    record = {"version": _CACHE_VERSION, "python": found._asdict()}
    atomic_write(cache, json.dumps(record).encode())
    return found


def python_of_layers(layers: Iterable[Path], *, config: Mapping[str, Any]) -> BasePython:
    """The base's interpreter from its layer files (bottom first) and image config."""
    seen: dict[str, tuple[str, str]] = {}
    for path in layers:
        _apply_layer(seen, path)
    minor = _python_minor(seen, _path_dirs(config))
    if minor is None:
        raise DependencyError(
            "the stack has no Python 3 (no lib/python3.N/os.py under /usr or /usr/local): "
            "dependencies cannot be installed for it; use a base image with python3"
        )
    arch = str(config.get("architecture") or "amd64")
    libc, libc_minor = _libc(seen)
    return BasePython(minor, _MACHINES.get(arch, arch), libc, libc_minor)


def _apply_layer(seen: dict[str, tuple[str, str]], path: Path) -> None:
    """Record the entries that matter, after this layer's whiteouts hid lower ones."""
    hidden: list[str] = []
    found: dict[str, tuple[str, str]] = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            name = member.name.removeprefix("./").strip("/")
            head, _, base = name.rpartition("/")
            if base == OPAQUE:
                hidden.append(f"{head}/")
            elif base.startswith(WHITEOUT):
                hidden.append(f"{head}/{base[len(WHITEOUT) :]}".lstrip("/"))
            elif fact := _fact(tar, member, name):
                found[name] = fact
    for gone in hidden:
        for name in [n for n in seen if n == gone or n.startswith(gone.rstrip("/") + "/")]:
            del seen[name]
    seen.update(found)


def _fact(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> tuple[str, str] | None:
    if (stdlib := _STDLIB.fullmatch(name)) and member.isfile():
        return "stdlib", stdlib.group(1)
    if _BIN.fullmatch(name):
        return ("link", member.linkname) if member.issym() else ("file", name.rpartition("/")[2])
    if _MUSL.fullmatch(name):
        return "musl", ""
    glibc = _GLIBC.fullmatch(name)
    if glibc is None or member.issym():
        return None
    if glibc.group(2):
        return "glibc", glibc.group(2)
    handle = tar.extractfile(member)
    banner = _GLIBC_BANNER.search(handle.read(_MAX_LIBC)) if handle is not None else None
    return ("glibc", banner.group(1).decode()) if banner else None


def _path_dirs(config: Mapping[str, Any]) -> list[str]:
    env = (config.get("config") or {}).get("Env") or []
    path = next((e[5:] for e in env if isinstance(e, str) and e.startswith("PATH=")), DEFAULT_PATH)
    return [d.strip("/") for d in path.split(":") if d.strip("/")]


def _python_minor(seen: Mapping[str, tuple[str, str]], path_dirs: list[str]) -> int | None:
    stdlibs = {int(value) for kind, value in seen.values() if kind == "stdlib"}
    for directory in path_dirs:
        for candidate in (f"{directory}/python3", f"usr/{directory}/python3"):
            kind, value = seen.get(candidate, ("", ""))
            named = _VERSIONED.fullmatch(value.rpartition("/")[2]) if kind else None
            if named and int(named.group(1)) in stdlibs:
                return int(named.group(1))
    return max(stdlibs, default=None)


def _libc(seen: Mapping[str, tuple[str, str]]) -> tuple[str, int]:
    glibc = [int(value) for kind, value in seen.values() if kind == "glibc"]
    if glibc:
        return "glibc", max(glibc)
    if any(kind == "musl" for kind, _ in seen.values()):
        return "musl", 0
    return "", 0
