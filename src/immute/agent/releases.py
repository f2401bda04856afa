"""What the agent knows of a release: its number, image, and the spec it runs with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from immute.core.spec import Process, Spec


@dataclass(frozen=True)
class ReleaseContext:
    """A release as instances are started from it."""

    number: int
    image_digest: str
    config_digest: str
    spec: Spec

    @property
    def name(self) -> str:
        return f"v{self.number}"

    def process(self, name: str) -> Process:
        return self.spec.processes[name]

    def routed(self) -> frozenset[str]:
        return frozenset(n for n, p in self.spec.processes.items() if p.routed)

    def instance_counts(self) -> dict[str, int]:
        return {name: p.instances for name, p in self.spec.processes.items()}


def host_stack_env(image_env: Mapping[str, str], root: Path) -> dict[str, str]:
    """The image's environment for a process on the host stack.

    Paths in an image's ``PATH`` and ``PYTHONPATH`` name places inside the
    image; on the host stack the image lives under ``root``, so entries that
    exist there are moved under it, and ``PATH`` keeps the host's own entries.
    """
    env = dict(image_env)
    for key in ("PATH", "PYTHONPATH"):
        if key not in env:
            continue
        entries = []
        for entry in env[key].split(":"):
            inside = root / entry.lstrip("/")
            entries.append(str(inside) if entry.startswith("/") and inside.exists() else entry)
        env[key] = ":".join(e for e in entries if e)
    return env
