"""What the agent knows of a release: its number, image, and the spec it runs with."""

from __future__ import annotations

from dataclasses import dataclass

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
