"""The agent keeps the active release whole: crashed or unresponsive instances
are replaced by fresh ones of the same release, never patched."""

from __future__ import annotations

import os
import signal
import time

import pytest

from deploy.support import App
from loadgen import Load

pytestmark = pytest.mark.slow


def ready_ids(app: App) -> set[str]:
    return {i["id"] for i in app.status()["instances"] if i["state"] == "ready" and i["running"]}


def wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def pid_listening_on(port: int) -> int:
    """The pid of the process with a listening socket on ``port`` (from /proc)."""
    hex_port = f"{port:04X}"
    inodes = set()
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{hex_port}") and fields[3] == "0A":
                inodes.add(fields[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    raise AssertionError(f"nothing listens on {port}")


def test_a_crashed_instance_is_replaced_without_failed_requests(app: App) -> None:
    app.run("deploy")
    before = ready_ids(app)
    victim = next(i for i in app.status()["instances"] if i["state"] == "ready")
    with Load(app.port, connections=8) as load:
        os.kill(pid_listening_on(int(victim["address"].rsplit(":", 1)[1])), signal.SIGKILL)
        wait_for(lambda: len(ready_ids(app)) == 3 and victim["id"] not in ready_ids(app))
    assert load.result.failed == 0, load.result
    after = ready_ids(app)
    assert len(after - before) == 1
    assert {i["release"] for i in app.status()["instances"]} == {"v1"}


def test_an_instance_failing_liveness_is_replaced(app: App, tmp_path: object) -> None:
    flags = app.root / "flags"
    flags.mkdir()
    app.spec["processes"]["web"]["health"]["liveness"] = {
        "http": "/livez",
        "interval": "200ms",
        "unhealthy_threshold": 2,
    }
    app.spec["env"] = {"FLAGS": str(flags)}
    app.write_spec()
    source = (app.dir / "app.py").read_text()
    sick = (
        "        if self.path == '/livez' and os.path.exists("
        "os.path.join(os.environ['FLAGS'], os.environ['PORT'])):\n"
        "            self.send_response(500); self.send_header('content-length', '0');"
        " self.end_headers(); return\n"
    )
    (app.dir / "app.py").write_text(
        source.replace(
            '        if self.path == "/healthz":\n', sick + '        if self.path == "/healthz":\n'
        )
    )
    app.run("deploy")
    victim = next(i for i in app.status()["instances"] if i["state"] == "ready")
    (flags / victim["address"].rsplit(":", 1)[1]).write_text("sick")
    wait_for(lambda: victim["id"] not in ready_ids(app) and len(ready_ids(app)) == 3)
    assert all(i["release"] == "v1" for i in app.status()["instances"])
