"""Health as a pure state machine: check results in, status out.

An instance starts ``STARTING``. ``healthy_threshold`` passes in a row make it
``HEALTHY``; once it has been healthy, ``unhealthy_threshold`` failures in a row
make it ``UNHEALTHY``. Between those runs the status holds (hysteresis), so one
slow answer does not take an instance out of the route and one lucky answer
does not put it in. Failures while ``STARTING`` change nothing (as Kubernetes
treats readiness): how long to wait for a booting instance is the deadline of
the agent's readiness wait, not a count of failures.

The probes that produce the results live in ``immute.agent.health``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Literal

from immute.core import spec
from immute.errors import UsageError


class HealthStatus(enum.Enum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class HealthPolicy:
    """How often to check and how many results in a row change the status."""

    interval: float = 1.0
    timeout: float = 1.0
    healthy_threshold: int = 1
    unhealthy_threshold: int = 3

    def __post_init__(self) -> None:
        if self.healthy_threshold < 1 or self.unhealthy_threshold < 1:
            raise UsageError("health thresholds must be at least 1")
        if self.interval <= 0 or self.timeout <= 0:
            raise UsageError("health interval and timeout must be positive")


@dataclass(frozen=True)
class HealthState:
    status: HealthStatus = HealthStatus.STARTING
    passes_in_a_row: int = 0
    failures_in_a_row: int = 0
    last_detail: str = ""
    """Why the last check passed or failed, e.g. ``HTTP 503`` or ``connection refused``."""


def record_result(
    state: HealthState, passed: bool, *, policy: HealthPolicy, detail: str = ""
) -> HealthState:
    """The state after one more check result."""
    if passed:
        passes, failures = state.passes_in_a_row + 1, 0
    else:
        passes, failures = 0, state.failures_in_a_row + 1
    status = state.status
    if passes >= policy.healthy_threshold:
        status = HealthStatus.HEALTHY
    elif failures >= policy.unhealthy_threshold and status is not HealthStatus.STARTING:
        status = HealthStatus.UNHEALTHY
    return replace(
        state,
        status=status,
        passes_in_a_row=passes,
        failures_in_a_row=failures,
        last_detail=detail,
    )


@dataclass(frozen=True)
class HttpCheck:
    """Passes on a 2xx or 3xx answer to ``GET path`` on the instance's port."""

    path: str = "/"
    kind: Literal["http"] = "http"


@dataclass(frozen=True)
class TcpCheck:
    """Passes when a TCP connection to the instance's port opens."""

    kind: Literal["tcp"] = "tcp"


@dataclass(frozen=True)
class CommandCheck:
    """Passes when ``argv`` exits 0 within the timeout (run with the instance's env)."""

    argv: tuple[str, ...]
    kind: Literal["command"] = "command"


@dataclass(frozen=True)
class UptimeCheck:
    """For workers without a port: passes once the instance has run ``grace`` seconds."""

    grace: float = 5.0
    kind: Literal["uptime"] = "uptime"


Check = HttpCheck | TcpCheck | CommandCheck | UptimeCheck


def uptime_passed(*, started_at: float, now: float, running: bool, grace: float) -> bool:
    """A worker is healthy once it has stayed up ``grace`` seconds."""
    return running and now - started_at >= grace


MS = 1000


def probe_of(section: spec.Check, *, routed: bool) -> tuple[Check, HealthPolicy]:
    """The check and policy a spec's ``readiness`` or ``liveness`` section asks for.

    With no probe named, routed processes get a TCP connect and others (workers)
    are ready once up for ``min_uptime``, as the spec's reference says.
    """
    policy = HealthPolicy(
        interval=section.interval / MS,
        timeout=section.timeout / MS,
        healthy_threshold=section.healthy_threshold,
        unhealthy_threshold=section.unhealthy_threshold,
    )
    check: Check
    if section.http is not None:
        check = HttpCheck(section.http)
    elif section.command is not None:
        check = CommandCheck(tuple(section.command))
    elif section.tcp or routed or not isinstance(section, spec.Readiness):
        check = TcpCheck()
    else:
        check = UptimeCheck(section.min_uptime / MS)
    return check, policy
