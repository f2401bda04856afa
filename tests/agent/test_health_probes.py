"""Readiness and liveness probes against real small servers and real commands."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contract.instance_apps import APP_SOURCE, app_root, app_spec, stop_everything
from immute.agent.health import HealthMonitor, ProbeTarget, probe, target_for
from immute.core.health import (
    CommandCheck,
    HealthPolicy,
    HealthState,
    HealthStatus,
    HttpCheck,
    TcpCheck,
    UptimeCheck,
)
from immute.runtimes.ports import free_port
from immute.runtimes.process import ProcessRuntime

FAST = HealthPolicy(interval=0.05, timeout=1.0, healthy_threshold=2, unhealthy_threshold=2)
Serve = Callable[..., tuple[ProbeTarget, subprocess.Popen[bytes]]]


def target_of(proc: subprocess.Popen[bytes], *, port: int | None) -> ProbeTarget:
    async def running() -> bool:
        return proc.poll() is None

    return ProbeTarget(running=running, started_at=time.time(), port=port)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Starts the test app (or any argv) with the given env; kills all at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        env: dict[str, str] | None = None, *, argv: list[str] | None = None, port: bool = True
    ) -> tuple[ProbeTarget, subprocess.Popen[bytes]]:
        number = free_port() if port else None
        full_env = {**(env or {}), "PORT": str(number)}
        proc = subprocess.Popen(argv or [sys.executable, str(APP_SOURCE)], env=full_env)
        started.append(proc)
        return target_of(proc, port=number), proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def test_http_readiness_waits_for_a_server_that_becomes_ready_late(serve: Serve) -> None:
    target, _ = serve({"READY_AFTER": "0.5"})
    seen: list[HealthStatus] = []

    async def on_change(state: HealthState) -> None:
        seen.append(state.status)

    monitor = HealthMonitor(HttpCheck("/ready"), target, policy=FAST, on_change=on_change)
    state = asyncio.run(monitor.wait_healthy(deadline=15))
    assert state.status is HealthStatus.HEALTHY
    assert state.passes_in_a_row == FAST.healthy_threshold
    assert state.last_detail == "HTTP 200"
    assert seen[-1] is HealthStatus.HEALTHY


def test_http_readiness_gives_up_on_a_server_that_never_gets_ready(serve: Serve) -> None:
    target, _ = serve({"READY_AFTER": "3600"})
    monitor = HealthMonitor(HttpCheck("/ready"), target, policy=FAST)
    state = asyncio.run(monitor.wait_healthy(deadline=1.0))
    assert state.status is HealthStatus.STARTING
    assert state.failures_in_a_row >= 1
    assert state.last_detail == "HTTP 503"


def test_readiness_stops_waiting_when_the_instance_dies(serve: Serve) -> None:
    target, proc = serve({"READY_AFTER": "3600", "DIE_AFTER": "0.3"})
    monitor = HealthMonitor(HttpCheck("/ready"), target, policy=FAST)
    state = asyncio.run(monitor.wait_healthy(deadline=60))
    assert state.status is not HealthStatus.HEALTHY
    assert proc.wait(timeout=15) == 3


def test_liveness_reports_a_server_that_dies_as_unhealthy(serve: Serve) -> None:
    target, proc = serve({"DIE_AFTER": "1.0"})
    seen: list[HealthStatus] = []

    async def on_change(state: HealthState) -> None:
        seen.append(state.status)

    policy = HealthPolicy(interval=0.05, timeout=1.0, healthy_threshold=1, unhealthy_threshold=3)
    monitor = HealthMonitor(HttpCheck("/"), target, policy=policy, on_change=on_change)
    assert asyncio.run(monitor.wait_healthy(deadline=15)).status is HealthStatus.HEALTHY
    proc.wait(timeout=15)
    state = asyncio.run(monitor.run(max_checks=policy.unhealthy_threshold))
    assert state.status is HealthStatus.UNHEALTHY
    assert seen == [HealthStatus.HEALTHY, HealthStatus.UNHEALTHY]


def test_http_check_fails_on_connection_refused_while_the_instance_runs(serve: Serve) -> None:
    target, _ = serve(argv=[sys.executable, "-c", "import time; time.sleep(30)"])
    result = asyncio.run(probe(HttpCheck("/"), target, timeout=1.0))
    assert not result.passed
    assert result.detail == "Connection refused"


def test_tcp_check_passes_on_a_listening_port_only(serve: Serve) -> None:
    target, _ = serve()
    monitor = HealthMonitor(TcpCheck(), target, policy=FAST)
    assert asyncio.run(monitor.wait_healthy(deadline=15)).status is HealthStatus.HEALTHY
    closed, _ = serve(argv=[sys.executable, "-c", "import time; time.sleep(30)"])
    assert not asyncio.run(probe(TcpCheck(), closed, timeout=1.0)).passed


def test_command_check_passes_on_exit_zero_only(serve: Serve, tmp_path: Path) -> None:
    target, _ = serve(argv=[sys.executable, "-c", "import time; time.sleep(30)"], port=False)
    ok = CommandCheck((sys.executable, "-c", "raise SystemExit(0)"))
    failing = CommandCheck((sys.executable, "-c", "raise SystemExit(4)"))
    assert asyncio.run(probe(ok, target, timeout=5.0)).passed
    result = asyncio.run(probe(failing, target, timeout=5.0))
    assert (result.passed, result.detail) == (False, "exit 4")
    missing = asyncio.run(probe(CommandCheck(("no-such-check",)), target, timeout=5.0))
    assert not missing.passed and "no-such-check" in missing.detail


def test_command_check_that_hangs_is_killed_at_its_timeout(serve: Serve, tmp_path: Path) -> None:
    target, _ = serve(argv=[sys.executable, "-c", "import time; time.sleep(30)"], port=False)
    marker = tmp_path / "pid"
    hanging = CommandCheck(
        (
            sys.executable,
            "-c",
            f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)",
        )
    )
    result = asyncio.run(probe(hanging, target, timeout=0.5))
    assert (result.passed, result.detail) == (False, "command ran longer than 0.5s")
    assert not Path(f"/proc/{marker.read_text()}").exists()


def test_a_worker_without_port_is_healthy_once_it_stayed_up(serve: Serve) -> None:
    target, _ = serve(argv=[sys.executable, "-c", "import time; time.sleep(30)"], port=False)
    monitor = HealthMonitor(UptimeCheck(grace=0.3), target, policy=FAST)
    state = asyncio.run(monitor.wait_healthy(deadline=15))
    assert state.status is HealthStatus.HEALTHY


def test_a_worker_that_exits_within_its_grace_is_never_healthy(serve: Serve) -> None:
    target, proc = serve(argv=[sys.executable, "-c", "raise SystemExit(1)"], port=False)
    proc.wait(timeout=15)
    monitor = HealthMonitor(UptimeCheck(grace=0.3), target, policy=FAST)
    state = asyncio.run(monitor.wait_healthy(deadline=15))
    assert state.status is not HealthStatus.HEALTHY
    assert state.last_detail == "instance is not running"


def test_targets_of_runtime_instances_follow_the_runtime(tmp_path: Path) -> None:
    runtime = ProcessRuntime(tmp_path / "state")
    root = app_root(tmp_path)

    async def scenario() -> tuple[HealthState, HealthState]:
        try:
            info = await runtime.start(app_spec(root, "web-1", env={"READY_AFTER": "0.2"}))
            target = target_for(runtime, info)
            monitor = HealthMonitor(HttpCheck("/ready"), target, policy=FAST)
            ready = await monitor.wait_healthy(deadline=15)
            await runtime.stop("web-1")
            return ready, await monitor.check_once()
        finally:
            await stop_everything(runtime)

    ready, after_stop = asyncio.run(scenario())
    assert ready.status is HealthStatus.HEALTHY
    assert after_stop.last_detail == "instance is not running"
