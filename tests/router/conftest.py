"""Real processes for router tests: backends and router processes on 127.0.0.1."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from router_helpers import Procs


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    started: list[subprocess.Popen[bytes]] = []
    yield Procs(tmp_path, started)
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
