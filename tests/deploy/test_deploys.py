"""Deploys, rollbacks and aborts end to end: the CLI, a real agent, real
processes, the real router and a load generator counting every failed request."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from deploy.support import App, free_port, live_processes
from loadgen import Load

pytestmark = pytest.mark.slow


def releases(app: App) -> dict[str, str]:
    import json

    rows = json.loads(app.run("history", "--json").stdout)
    return {f"v{r['number']}": r["status"] for r in rows}


def test_rolling_deploy_and_rollback_under_load_fail_no_request(app: App) -> None:
    app.greet("Hello, v1")
    app.run("deploy", "-m", "first")
    with Load(app.port, connections=8) as load:
        time.sleep(0.3)
        app.greet("Hello, v2")
        app.run("deploy", "-m", "second")
        time.sleep(0.3)
        app.run("rollback")
        time.sleep(0.3)
    result = load.result
    assert result.failed == 0, result
    assert result.by_release["v2"] > 0 and result.by_release["v3"] > 0
    assert releases(app) == {"v1": "superseded", "v2": "rolled-back", "v3": "active"}
    assert app.get() == (200, "v3")


@pytest.mark.parametrize(
    "strategy",
    [
        {"type": "blue-green", "standby": "30s"},
        {
            "type": "canary",
            "steps": [{"weight": "20%", "pause": "1s"}, {"weight": "50%", "pause": "1s"}],
        },
        {"type": "recreate"},
    ],
    ids=["blue-green", "canary", "recreate"],
)
def test_every_strategy_completes_under_load(app: App, strategy: dict[str, object]) -> None:
    app.spec["strategy"] = strategy
    app.write_spec()
    app.run("deploy")
    with Load(app.port, connections=8) as load:
        app.greet("Hello, v2")
        app.run("deploy")
        time.sleep(0.3)
    assert load.result.failed == 0, load.result
    assert app.get() == (200, "v2")
    status = app.status()
    routed = [i for i in status["instances"] if i["state"] == "ready"]
    assert {i["release"] for i in routed} == {"v2"} and len(routed) == 3


def test_boot_crash_aborts_and_traffic_stays(app: App) -> None:
    app.run("deploy")
    broken = (
        (app.dir / "app.py")
        .read_text()
        .replace("GREETING = ", "raise SystemExit('boom at boot')\nGREETING = ", 1)
    )
    (app.dir / "app.py").write_text(broken)
    with Load(app.port, connections=4) as load:
        failed = app.run("deploy", check=False)
    assert failed.returncode == 1
    assert "never became ready" in failed.stdout
    assert "boom at boot" in failed.stdout
    assert load.result.failed == 0, load.result
    assert releases(app) == {"v1": "active", "v2": "failed"}
    assert {i["release"] for i in app.status()["instances"]} == {"v1"}
    assert app.get() == (200, "v1")


def test_readiness_deadline_aborts(app: App) -> None:
    app.run("deploy")
    app.spec["processes"]["web"]["health"]["readiness"]["http"] = "/missing-ready-check"
    app.spec["strategy"]["progress_deadline"] = "2s"
    app.write_spec()
    (app.dir / "app.py").write_text(
        (app.dir / "app.py")
        .read_text()
        .replace(
            "self.send_response(200)",
            "self.send_response(200 if self.path != '/missing-ready-check' else 503)",
        )
    )
    failed = app.run("deploy", check=False)
    assert failed.returncode == 1
    assert "never became ready" in failed.stdout and "HTTP 503" in failed.stdout
    assert releases(app)["v2"] == "failed"
    assert app.get() == (200, "v1")


def test_failed_release_command_aborts_before_any_traffic(app: App) -> None:
    app.run("deploy")
    app.spec["release_command"] = ["python3", "-c", "import sys; print('migrating'); sys.exit(3)"]
    app.write_spec()
    failed = app.run("deploy", check=False)
    assert failed.returncode == 1
    assert "the release command exited with code 3" in failed.stdout
    assert "migrating" in failed.stdout
    assert releases(app)["v2"] == "failed"
    assert {i["release"] for i in app.status()["instances"]} == {"v1"}


def test_failed_canary_analysis_aborts(app: App) -> None:
    app.run("deploy")
    app.spec["strategy"] = {
        "type": "canary",
        "steps": [{"weight": "50%", "pause": "3s"}],
        "analysis": {"max_error_rate": "5%", "min_requests": 5},
    }
    app.write_spec()
    (app.dir / "app.py").write_text(
        (app.dir / "app.py")
        .read_text()
        .replace(
            "self.send_response(200)", "self.send_response(200 if self.path == '/healthz' else 500)"
        )
    )
    with Load(app.port, connections=4) as load:
        failed = app.run("deploy", check=False)
    assert failed.returncode == 1
    assert "canary analysis failed" in failed.stdout
    assert load.result.by_release["v1"] > 0
    assert app.get() == (200, "v1")
    assert releases(app)["v2"] == "failed"


def test_a_second_deploy_fails_at_once_naming_the_holder(app: App) -> None:
    app.run("deploy")
    app.spec["strategy"] = {"type": "canary", "steps": [{"weight": "10%", "pause": "5s"}]}
    app.write_spec()
    app.greet("Hello, v2")
    first = app.start("deploy", "-m", "slow canary")
    time.sleep(2.5)
    second = app.run("deploy", check=False)
    first.communicate(timeout=60)
    assert second.returncode == 3
    assert "deploy by" in second.stderr and "slow canary" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1


def test_killing_the_agent_loses_no_request_and_the_deploy_resumes(app: App) -> None:
    app.run("deploy")
    app.spec["strategy"] = {"type": "rolling", "max_surge": 1, "max_unavailable": 0}
    app.write_spec()
    app.greet("Hello, v2")
    with Load(app.port, connections=8) as load:
        deploying = app.start("deploy")
        # Killed once the agent has the deploy (a slow build must not make this
        # a kill before the deploy exists), and into its first steps.
        assert deploying.stdout is not None
        said: list[str] = []
        for line in iter(deploying.stdout.readline, ""):
            said.append(line)
            if line.startswith("deploy 2 started"):
                break
        assert said and said[-1].startswith("deploy 2 started"), "".join(said)
        time.sleep(0.5)
        app.kill_agent()
        deploying.communicate(timeout=30)
        time.sleep(0.5)
        app.run("status", "-f")
        time.sleep(0.3)
    assert load.result.failed == 0, load.result
    status = app.status()
    assert [i["release"] for i in status["instances"] if i["state"] == "ready"] == ["v2"] * 3
    assert all(i["running"] for i in status["instances"])
    assert releases(app)["v2"] == "active"


def refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_refused(port: int) -> None:
    """Wait until nothing accepts on `port` (an old router finishes, then exits)."""
    deadline = time.monotonic() + 30
    while not refuses(port):
        assert time.monotonic() < deadline, f"127.0.0.1:{port} still accepts"
        time.sleep(0.1)


def move_router(app: App, **router: str) -> int:
    """Point the spec's router at a new port (and other settings); the old port."""
    old_port, app.port = app.port, free_port()
    app.spec["router"].update(listen=f"127.0.0.1:{app.port}", **router)
    app.write_spec()
    return old_port


def test_a_new_router_listen_address_applies_on_the_next_deploy(app: App) -> None:
    app.run("deploy")
    old_port = move_router(app, hold="3s")
    # Canary analysis reads the new router's metrics: it must follow the move.
    app.spec["strategy"] = {
        "type": "canary",
        "steps": [{"weight": "50%", "pause": "1s"}],
        "analysis": {"max_error_rate": "5%", "min_requests": 1},
    }
    app.write_spec()
    app.greet("Hello, v2")
    with Load(app.port, connections=2):
        shown = app.run("deploy").stdout
    assert f"listen 127.0.0.1:{old_port} -> 127.0.0.1:{app.port}, hold 10s -> 3s" in shown
    assert app.get() == (200, "v2")
    wait_refused(old_port)


def test_a_failed_deploy_puts_the_router_back_where_the_previous_release_had_it(
    app: App,
) -> None:
    app.run("deploy")
    old_port = move_router(app)
    broken = (app.dir / "app.py").read_text().replace("GREETING = ", "raise SystemExit(1)\n", 1)
    (app.dir / "app.py").write_text(broken)
    assert app.run("deploy", check=False).returncode == 1
    new_port, app.port = app.port, old_port
    assert app.get() == (200, "v1")
    wait_refused(new_port)


def test_a_new_host_on_the_same_port_is_refused_with_what_to_do(app: App) -> None:
    app.run("deploy")
    app.spec["router"]["listen"] = f"localhost:{app.port}"  # the same socket: fine
    app.write_spec()
    assert "router:" not in app.run("deploy").stdout
    app.spec["router"]["listen"] = f"127.0.0.2:{app.port}"  # refused before binding anything
    app.write_spec()
    failed = app.run("deploy", check=False)
    assert failed.returncode == 1
    assert "keeps the port, which cannot be handed over" in failed.stdout
    assert app.get() == (200, "v2")


def test_down_leaves_nothing_running(app: App) -> None:
    app.run("deploy")
    assert live_processes(app)
    app.run("down")
    time.sleep(0.5)
    assert live_processes(app) == []


def test_down_without_a_running_agent_still_stops_every_instance(app: App) -> None:
    app.run("deploy")
    app.kill_agent()
    assert live_processes(app)
    assert app.run("down").stdout.strip() == "stopped 3 instances and the agent"
    time.sleep(0.5)
    assert live_processes(app) == []
    pid = app.agent_pid()
    deadline = time.monotonic() + 10
    while pid is not None and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid is not None and not Path(f"/proc/{pid}").exists()


def test_restart_replaces_every_instance_with_a_fresh_one(app: App) -> None:
    app.run("deploy")
    before = {i["id"] for i in app.status()["instances"]}
    with Load(app.port, connections=4) as load:
        app.run("restart")
    after = app.status()["instances"]
    assert load.result.failed == 0, load.result
    assert len(after) == 3 and not before & {i["id"] for i in after}
    assert {i["release"] for i in after} == {"v1"}
    assert releases(app) == {"v1": "active"}


def test_retention_keeps_what_the_spec_says(app: App) -> None:
    app.spec["retain"] = {"releases": 2, "images": 1}
    app.write_spec()
    for n in range(1, 5):
        app.greet(f"Hello, v{n}")
        app.run("deploy")
    assert releases(app) == {"v3": "superseded", "v4": "active"}
    images = json.loads(app.run("images", "--json").stdout)
    assert len(images) <= 2  # the active release's image, and the newest build by name
    logs = app.run("logs", "--release", "v1", "--json").stdout
    assert logs.strip()  # retention by age keeps young log lines of pruned releases
