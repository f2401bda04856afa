"""What a build needs to know, as one plain value (the spec is mapped to it)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

HOST_STACK = "host"
DEPS_PREFIX = "opt/immute/deps"
EMPTY: Mapping[str, str] = MappingProxyType({})
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BuildInputs(NamedTuple):
    """Everything that decides an image's content, and nothing else.

    ``dependency_files`` are paths relative to ``context`` (requirements files,
    lock files in requirements format, or ``pyproject.toml``, whose
    ``[project].dependencies`` are installed). ``stack`` is ``host`` or a base
    image pinned by digest (see ``stacks``), or ``dockerfile:PATH`` as the spec
    wrote it when ``dockerfile`` (absolute) builds the stack. ``python`` is the
    interpreter that runs pip: on the host stack, the one the image's processes
    will run with; on a base image, the one that installs for the base's Python.
    """

    app: str
    context: Path
    processes: Mapping[str, Sequence[str]]
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    dependency_files: Sequence[str] = ()
    stack: str = HOST_STACK
    dockerfile: Path | None = None
    workdir: str = "/app"
    env: Mapping[str, str] = EMPTY
    labels: Mapping[str, str] = EMPTY
    source_revision: str | None = None
    spec_digest: str | None = None
    python: str = sys.executable
    offline: bool = False
    wheelhouse: Path | None = None


class LayerReport(NamedTuple):
    """One layer of a finished build, as ``immute build --json`` reports it."""

    role: str
    digest: str
    diff_id: str
    size: int
    cached: bool


class BuildResult(NamedTuple):
    manifest_digest: str
    config_digest: str
    name: str
    layers: tuple[LayerReport, ...]
    stack: str = HOST_STACK
    stack_digest: str | None = None
    python: Mapping[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "manifest_digest": self.manifest_digest,
            "config_digest": self.config_digest,
            "stack": self.stack,
            "stack_digest": self.stack_digest,
            "python": None if self.python is None else dict(self.python),
            "layers": [
                {
                    "role": layer.role,
                    "digest": layer.digest,
                    "diff_id": layer.diff_id,
                    "size": layer.size,
                    "cached": layer.cached,
                }
                for layer in self.layers
            ],
        }
