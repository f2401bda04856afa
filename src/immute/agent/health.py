"""Probing instances: HTTP, TCP, command and uptime checks, and the loops that run them.

Each probe answers pass or fail with a one-line reason; the counting that turns
results into a status is the pure state machine in ``immute.core.health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from immute.core.health import (
    Check,
    CommandCheck,
    HealthPolicy,
    HealthState,
    HealthStatus,
    HttpCheck,
    UptimeCheck,
    record_result,
    uptime_passed,
)
from immute.core.instances import InstanceInfo, InstanceState
from immute.runtimes.base import Runtime

STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})")


@dataclass(frozen=True)
class ProbeTarget:
    """The instance a check looks at.

    ``running`` says whether the instance still runs (from the runtime): a
    dead instance fails every check without being probed.
    """

    running: Callable[[], Awaitable[bool]]
    started_at: float
    port: int | None = None
    host: str = "127.0.0.1"
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)


def target_for(
    runtime: Runtime,
    info: InstanceInfo,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProbeTarget:
    """The probe target of an instance a runtime started; liveness comes from ``observe``."""

    async def running() -> bool:
        return any(
            seen.instance_id == info.instance_id and seen.state is InstanceState.RUNNING
            for seen in await runtime.observe()
        )

    return ProbeTarget(
        running=running, started_at=info.started_at, port=info.port, cwd=cwd, env=env or {}
    )


@dataclass(frozen=True)
class ProbeResult:
    passed: bool
    detail: str


async def probe(check: Check, target: ProbeTarget, *, timeout: float) -> ProbeResult:
    """Run one check once; never raises for a failing instance, only reports."""
    if not await target.running():
        return ProbeResult(False, "instance is not running")
    if isinstance(check, UptimeCheck):
        passed = uptime_passed(
            started_at=target.started_at, now=time.time(), running=True, grace=check.grace
        )
        return ProbeResult(passed, f"up {time.time() - target.started_at:.1f}s of {check.grace}s")
    if isinstance(check, CommandCheck):
        return await _probe_command(check, target, timeout=timeout)
    if target.port is None:
        return ProbeResult(False, f"{check.kind} check on an instance without a port")
    try:
        async with asyncio.timeout(timeout):
            if isinstance(check, HttpCheck):
                return await _probe_http(check.path, target.host, target.port)
            return await _probe_tcp(target.host, target.port)
    except TimeoutError:
        return ProbeResult(False, f"no answer within {timeout}s")
    except OSError as exc:
        return ProbeResult(False, os.strerror(exc.errno) if exc.errno else str(exc))


async def _probe_tcp(host: str, port: int) -> ProbeResult:
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True, f"connected to {host}:{port}")


async def _probe_http(path: str, host: str, port: int) -> ProbeResult:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "User-Agent: immute-health\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    match = STATUS_LINE.match(status_line)
    if match is None:
        return ProbeResult(False, f"not an HTTP answer: {status_line[:40]!r}")
    code = int(match.group(1))
    return ProbeResult(200 <= code < 400, f"HTTP {code}")


async def _probe_command(
    check: CommandCheck, target: ProbeTarget, *, timeout: float
) -> ProbeResult:
    try:
        proc = await asyncio.create_subprocess_exec(
            *check.argv,
            cwd=target.cwd,
            env=dict(target.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        return ProbeResult(False, f"{exc.strerror or exc}: {check.argv[0]}")
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        # The command may have started children of its own; they share its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return ProbeResult(False, f"command ran longer than {timeout}s")
    return ProbeResult(code == 0, f"exit {code}")


OnChange = Callable[[HealthState], Awaitable[None]]


class HealthMonitor:
    """Checks one instance every ``policy.interval`` and tracks its status."""

    def __init__(
        self,
        check: Check,
        target: ProbeTarget,
        *,
        policy: HealthPolicy,
        on_change: OnChange | None = None,
    ) -> None:
        self.check = check
        self.target = target
        self.policy = policy
        self.on_change = on_change
        self.state = HealthState()

    async def check_once(self) -> HealthState:
        result = await probe(self.check, self.target, timeout=self.policy.timeout)
        before = self.state.status
        self.state = record_result(
            self.state, result.passed, policy=self.policy, detail=result.detail
        )
        if self.state.status is not before and self.on_change is not None:
            await self.on_change(self.state)
        return self.state

    async def run(self, *, max_checks: int | None = None) -> HealthState:
        """Liveness: check until cancelled (or ``max_checks``), reporting each status change."""
        checks = 0
        while max_checks is None or checks < max_checks:
            await self.check_once()
            checks += 1
            await asyncio.sleep(self.policy.interval)
        return self.state

    async def wait_healthy(self, *, deadline: float) -> HealthState:
        """Readiness: check until HEALTHY, until the instance exits, or ``deadline`` seconds.

        Returns the last state; the caller tells success by its status and
        failure by ``last_detail``.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + deadline
        while True:
            state = await self.check_once()
            if state.status is HealthStatus.HEALTHY or not await self.target.running():
                return state
            remaining = give_up - loop.time()
            if remaining <= 0:
                return state
            await asyncio.sleep(min(self.policy.interval, remaining))
