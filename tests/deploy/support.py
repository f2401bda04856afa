"""An app directory driven through the real `immute` CLI, with its own state,
router port and agent, torn down completely after each test."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"
BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class App:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "hello"
        shutil.copytree(EXAMPLE, self.dir)
        self.state = root / "state"
        self.port = free_port()
        self.spec: dict[str, Any] = yaml.safe_load((self.dir / "immute.yaml").read_text())
        self.spec["router"]["listen"] = f"127.0.0.1:{self.port}"
        self.spec["strategy"].pop("bake", None)
        self.write_spec()

    def write_spec(self) -> None:
        (self.dir / "immute.yaml").write_text(yaml.safe_dump(self.spec, sort_keys=False))

    def greet(self, text: str) -> None:
        (self.dir / "greeting.txt").write_text(text + "\n")

    def env(self) -> dict[str, str]:
        return {**os.environ, "IMMUTE_STATE_DIR": str(self.state)}

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "immute", *args],
            cwd=self.dir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"immute {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "immute", *args],
            cwd=self.dir,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def status(self) -> dict[str, Any]:
        import json

        value: dict[str, Any] = json.loads(self.run("status", "--json").stdout)
        return value

    def agent_pid(self) -> int | None:
        try:
            return int((self.state / "agent.lock").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill_agent(self) -> None:
        pid = self.agent_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.02)

    def get(self, path: str = "/") -> tuple[int, str]:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.getheader("x-release") or ""
        finally:
            conn.close()

    def teardown(self) -> None:
        """Stop everything the test started: instances, router, agent."""
        self.run("down", check=False, timeout=60)
        for pid in _pids_mentioning(str(self.state)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line, environment or working directory names our
    state directory (instances run from image roots kept under it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            blob += os.readlink(entry / "cwd").encode()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(entry.name))
    return found


def live_processes(app: App) -> list[int]:
    return _pids_mentioning(str(app.state))
