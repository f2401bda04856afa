"""Chaos: SIGKILL the agent at random points of deploys and rollbacks while load
runs. No request may fail, and after each restart what runs must match the last
committed desired state, with no orphan process and a route of live instances."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from deploy.support import App
from loadgen import Load

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("IMMUTE_CHAOS_ROUNDS", "20"))


def instance_pids(app: App) -> set[int]:
    """Processes running the app from a materialised image root under our state."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cwd.startswith(str(app.state)) and b"app.py" in cmdline:
            found.add(int(entry.name))
    return found


def check_converged(app: App, *, within: float = 30.0) -> None:
    """The restarted agent converges: no deploy left running, three routed
    instances of the active release, all alive and all in the route, and no
    instance process the store does not know. Replacing an instance that recovery
    had to stop takes the supervisor a moment, hence the bounded wait."""
    deadline = time.monotonic() + within
    while True:
        try:
            _converged(app)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _converged(app: App) -> None:
    status = app.status()
    assert status["deploy"] is None, status["deploy"]
    rows = status["instances"]
    assert all(r["running"] for r in rows), rows
    ready = {r["address"] for r in rows if r["state"] == "ready"}
    assert len(ready) == 3, rows
    assert {r["release"] for r in rows if r["state"] == "ready"} == {status["active"]}
    targets = {t["address"] for t in status["routes"]["services"]["hello-web"]["targets"]}
    assert targets == ready
    assert len(instance_pids(app)) == len(rows), "an orphan instance process is left"


def test_agent_killed_at_random_points_loses_nothing(app: App) -> None:
    app.spec["strategy"] = {"type": "rolling", "max_surge": 1, "max_unavailable": 0}
    app.write_spec()
    app.run("deploy")
    rng = random.Random(int(os.environ.get("IMMUTE_CHAOS_SEED", "20261129")))
    with Load(app.port, connections=8) as load:
        for round_ in range(ROUNDS):
            if round_ % 3 == 2:
                command: tuple[str, ...] = ("rollback",)
            else:
                app.greet(f"Hello, round {round_}")
                command = ("deploy", "-m", f"round {round_}")
            running = app.start(*command)
            time.sleep(rng.uniform(0.2, 2.5))
            app.kill_agent()
            running.communicate(timeout=60)
            app.run("status", "-f", timeout=120)
            check_converged(app)
    assert load.result.failed == 0, load.result
    assert load.result.requests > 1000
