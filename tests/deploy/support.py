"""An app directory driven through the real `immute` CLI, with its own state,
router port and agent, torn down completely after each test. Built on the
benchmarks' ScratchApp, so tests, benchmarks and `make demo` drive one thing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from scratch_app import ScratchApp, free_port, processes_under

__all__ = ["App", "free_port", "live_processes"]


class App(ScratchApp):
    def __init__(self, root: Path) -> None:
        super().__init__(root=root, bake=None)

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = self.complete(*args, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"immute {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            cwd=self.dir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def status(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.run("status", "--json").stdout)
        return value

    def agent_pid(self) -> int | None:
        try:
            return int((self.state / "agent.lock").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill_agent(self) -> None:
        pid = self.agent_pid()
        if pid is None:
            return
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


def live_processes(app: App) -> list[int]:
    return list(processes_under(app.state))
