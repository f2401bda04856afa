"""A copy of ``examples/hello`` in a scratch directory, driven through the real
``immute`` CLI, with its own state directory, router port and agent.

Shared by the deploy benchmarks. ``teardown`` stops everything the copy
started: ``immute down`` first, then any process still belonging to the
scratch directory (see ``kill_processes_under``; only ours can: the directory
is fresh) is killed by pid, and says so on stderr.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hello"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ScratchApp:
    """Shared by the benchmarks, ``make demo`` and the end-to-end tests.

    ``runtime="docker"`` deploys containers on the Debian base image of
    ``docker_base`` (imported into the copy's store), under a unique app name."""

    def __init__(
        self,
        *,
        root: Path | None = None,
        instances: int = 3,
        bake: str | None = "1m",
        runtime: str = "process",
    ) -> None:
        self._owns_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="immute-bench-"))
        self.dir = self.root / "hello"
        shutil.copytree(EXAMPLE, self.dir)
        self.state = self.root / "state"
        self.port = free_port()
        self.spec: dict[str, Any] = yaml.safe_load((self.dir / "immute.yaml").read_text())
        self.spec["router"]["listen"] = f"127.0.0.1:{self.port}"
        self.spec["processes"]["web"]["instances"] = instances
        if bake is None:
            self.spec["strategy"].pop("bake", None)
        else:
            self.spec["strategy"]["bake"] = bake
        self.env = {**os.environ, "IMMUTE_STATE_DIR": str(self.state)}
        self.base: str | None = None
        if runtime == "docker":
            self.base = self._import_base()
            stack = {"stack": self.base}
            self.spec.update(app=f"bench-{self.port}", runtime="docker", build=stack)
        self.write_spec()

    def _import_base(self) -> str:
        from docker_base import saved_image_tar

        out = self.run_or_exit("image", "import", str(saved_image_tar()), timeout=600)
        return out.split()[1]

    def write_spec(self) -> None:
        (self.dir / "immute.yaml").write_text(yaml.safe_dump(self.spec, sort_keys=False))

    def greet(self, text: str) -> None:
        (self.dir / "greeting.txt").write_text(text + "\n")

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "immute", *args]

    def complete(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run one CLI command in the copy to its end, capturing its output."""
        return subprocess.run(
            self.argv(*args),
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run_or_exit(self, *args: str, timeout: float = 180) -> str:
        """Run one CLI command to its end; its stdout, or an exit naming its output."""
        result = self.complete(*args, timeout=timeout)
        if result.returncode != 0:
            sys.exit(f"immute {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def deploy(self, greeting: str, *extra: str) -> list[dict[str, Any]]:
        """Deploy with a new greeting; the agent's events (``deploy --json``)."""
        self.greet(greeting)
        out = self.run_or_exit("deploy", "--json", "-m", greeting, *extra)
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def release_header(self) -> str:
        """The ``x-release`` header of one request through the router."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            return response.getheader("x-release") or ""
        finally:
            conn.close()

    def teardown(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run(
                self.argv("down"),
                cwd=self.dir,
                env=self.env,
                capture_output=True,
                timeout=60,
                check=False,
            )
        # Give processes that are on their way out a moment before calling them leftovers.
        settle = time.monotonic() + 2
        while processes_under(self.root) and time.monotonic() < settle:
            time.sleep(0.1)
        if self.base is not None:
            from docker_base import forget_engine_images

            forget_engine_images(self.state / "images", keep=self.base)
        leftovers = kill_processes_under(self.root)
        if leftovers:
            print(
                "teardown: still running 2 s after `immute down`, killed: " + ", ".join(leftovers),
                file=sys.stderr,
            )
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ScratchApp:
        return self

    def __exit__(self, *_: object) -> None:
        self.teardown()


def kill_processes_under(root: Path) -> list[str]:
    """SIGKILL the processes that belong to the scratch directory ``root``: those
    whose command line or environment names it, or whose working directory is in
    it (instances and their shims run in the image roots under the state
    directory and name it nowhere else). Repeated until none is left, in case a
    supervisor started a replacement meanwhile (bounded)."""
    killed: list[str] = []
    for _ in range(5):
        found = processes_under(root)
        if not found:
            break
        for pid, what in found.items():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(what)
        time.sleep(0.1)
    return killed


def processes_under(root: Path) -> dict[int, str]:
    """pid -> a short description (``IMMUTE_INSTANCE`` or the command line)."""
    text = str(root)
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if text.encode() in blob or cwd == text or cwd.startswith(text + "/"):
            found[int(entry.name)] = _describe(blob)
    return found


def _describe(blob: bytes) -> str:
    fields = blob.decode(errors="replace").split("\0")
    instance = [f for f in fields if f.startswith("IMMUTE_INSTANCE=")]
    if instance:
        return instance[0].partition("=")[2]
    return " ".join(f for f in fields[:4] if "=" not in f)[:80]


def wait_http(port: int, *, path: str = "/healthz", timeout: float = 30.0) -> float:
    """Poll ``path`` on 127.0.0.1:``port`` every 5 ms until it answers 200;
    the moment (``time.perf_counter``) it did. Raises TimeoutError."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return time.perf_counter()
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.005)
    raise TimeoutError(f"nothing answered on 127.0.0.1:{port}{path} within {timeout:.0f}s")
