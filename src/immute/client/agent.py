"""Talking to the app's agent: start it in the background when it is not
running, call its API, and follow a deploy's events until it ends."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from immute.admin_socket import JSONObject, SocketUnanswered, exchange
from immute.errors import AgentError, ImmuteError, LockHeldError, NotFoundError, UsageError

SOCKET_NAME = "agent.sock"
START_TIMEOUT_S = 20.0
_ERRORS: dict[int, type[ImmuteError]] = {
    409: LockHeldError,
    404: NotFoundError,
    400: UsageError,
}


class AgentClient:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.socket = state_dir / SOCKET_NAME

    def call(self, method: str, path: str, body: object = None) -> JSONObject:
        """One API call; an error answer raises the matching ImmuteError."""
        status, value = asyncio.run(exchange(self.socket, method, path, body, peer="agent"))
        if status >= 400:
            error = _ERRORS.get(status, AgentError)
            raise error(str(value.get("error", f"the agent answered HTTP {status}")))
        return value

    def running(self) -> bool:
        try:
            self.call("GET", "/ping")
        except SocketUnanswered:
            return False
        return True

    def ensure_running(self) -> None:
        """Start the agent in its own session (it outlives this command) unless it runs."""
        if self.running():
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = (self.state_dir / "agent.log").open("ab")
        argv = [sys.executable, "-m", "immute.agent", "--state-dir", str(self.state_dir)]
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None and not self.running():
                raise AgentError(f"the agent exited at start; see {self.state_dir / 'agent.log'}")
            if self.running():
                return
            time.sleep(0.05)
        raise AgentError(f"the agent did not answer within {START_TIMEOUT_S:.0f}s")

    def follow(self, deploy_id: int, on_event: Callable[[dict[str, Any]], None]) -> JSONObject:
        """Print a deploy's events as they come; return its final record."""
        after = 0
        while True:
            answer = self.call("GET", f"/deploys/{deploy_id}?after={after}&wait=10")
            events = answer.get("events")
            for event in events if isinstance(events, list) else []:
                on_event(event)
            next_seq = answer.get("next")
            after = next_seq if isinstance(next_seq, int) else after
            if answer.get("status") != "running":
                return answer
