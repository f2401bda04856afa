"""Real processes for router tests: backends and router processes on 127.0.0.1."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from router.helpers import Backend, RouterProc, start_backend, start_router_proc

BACKEND = Path(__file__).with_name("backend.py")


@dataclass
class Procs:
    tmp: Path
    started: list[subprocess.Popen[bytes]]

    def backend(self, name: str, *, ws: bool = False) -> Backend:
        backend = start_backend(name, ws=ws)
        self.started.append(backend.process)
        return backend

    def router(self, *extra: str, admin: Path | None = None, listen: str = "") -> RouterProc:
        router = start_router_proc(
            admin or self.tmp / "admin.sock", listen=listen, extra=extra, log=self.tmp / "r.log"
        )
        self.started.append(router.process)
        return router


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


def python() -> str:
    return sys.executable
