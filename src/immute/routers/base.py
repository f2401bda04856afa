"""The Router protocol: what the agent needs from whatever routes traffic.

A router holds, per service, one set of targets that is replaced as a whole.
Draining is a call that returns only once the target carries nothing, so the
caller can destroy the instance right after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from immute.core.routes import Sticky, Target


@dataclass(frozen=True)
class DrainResult:
    service: str
    address: str
    cut: int
    seconds: float


class Router(Protocol):
    async def set_targets(
        self,
        service: str,
        targets: Sequence[Target],
        *,
        hosts: Sequence[str] = (),
        sticky: Sticky | None = None,
    ) -> None:
        """Replace the service's whole target set at once (creating the service)."""

    async def set_weights(self, service: str, weights: Mapping[str, int]) -> None:
        """Change weights of existing targets, e.g. to move a canary's share."""

    async def drain(self, service: str, address: str, *, deadline: float) -> DrainResult:
        """Send nothing new to `address`; return when its in-flight work has finished
        or was cut at `deadline` seconds."""

    async def pause(self, service: str) -> None:
        """Hold new requests for the service (up to the router's hold limit)."""

    async def resume(self, service: str) -> None: ...

    async def status(self) -> dict[str, object]:
        """Every service with its targets, their states and counters."""
