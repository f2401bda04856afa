"""How to run an image's processes: on the host stack from its materialised root,
or as the image has them (containers).

The process runtime starts each instance as a child process with ``cwd`` inside
the shared, read-only root and the image's environment, where path lists name
image paths (``PYTHONPATH=/opt/immute/deps``): components that exist inside the
root are rebased onto it; the others (``/usr/bin``...) are the host's own, which
is what the ``host`` stack means.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from immute.core.oci_image import LABEL_PROCESS_PREFIX
from immute.errors import ImageError
from immute.images.roots import materialise
from immute.images.store import ImageStore

PATH_LISTS = ("PATH", "PYTHONPATH")


@dataclass(frozen=True)
class HostRun:
    root: Path
    cwd: Path
    workdir: str
    """The image's working directory (``/app``); ``cwd`` is where it lies on the host."""
    env: dict[str, str]
    processes: dict[str, list[str]]


def host_run(store: ImageStore, digest: str, *, host_env: Mapping[str, str]) -> HostRun:
    """Materialise the image (once, shared) and describe how to run its processes.

    ``host_env`` is the environment the processes would otherwise get; its PATH
    entries follow the image's, so host tools stay reachable."""
    root = materialise(store, digest)
    run = image_run(store, digest)
    env = dict(host_env)
    for name, value in run.env.items():
        env[name] = _rebase(root, value) if name in PATH_LISTS else value
    if "PATH" in host_env:
        env["PATH"] = _join_unique(env.get("PATH", ""), host_env["PATH"])
    cwd = root / run.workdir.lstrip("/")
    return HostRun(root=root, cwd=cwd, workdir=run.workdir, env=env, processes=run.processes)


def image_run(store: ImageStore, digest: str) -> HostRun:
    """How to run the image's processes inside the image itself (a container):
    paths as the image has them, nothing materialised, ``root`` is ``/``."""
    config = store.read_json(store.manifest(digest).config.digest)
    settings = config.get("config") or {} if isinstance(config, dict) else {}
    env = {}
    for item in settings.get("Env") or []:
        name, _, value = str(item).partition("=")
        env[name] = value
    processes = {}
    for label, value in (settings.get("Labels") or {}).items():
        if str(label).startswith(LABEL_PROCESS_PREFIX):
            processes[str(label)[len(LABEL_PROCESS_PREFIX) :]] = _argv(label, value)
    workdir = str(settings.get("WorkingDir") or "/")
    return HostRun(root=Path("/"), cwd=Path(workdir), workdir=workdir, env=env, processes=processes)


def _argv(label: str, value: object) -> list[str]:
    try:
        argv = json.loads(str(value))
    except ValueError:
        argv = None
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ImageError(f"image label {label}: expected a JSON list of strings")
    return argv


def _rebase(root: Path, value: str) -> str:
    parts = []
    for part in value.split(os.pathsep):
        inside = root / part.lstrip("/")
        parts.append(str(inside) if part.startswith("/") and inside.exists() else part)
    return os.pathsep.join(parts)


def _join_unique(first: str, second: str) -> str:
    seen: list[str] = []
    for part in [*first.split(os.pathsep), *second.split(os.pathsep)]:
        if part and part not in seen:
            seen.append(part)
    return os.pathsep.join(seen)
