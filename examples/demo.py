"""``make demo``: immute's main job end to end on the embedded default.

Copies ``examples/hello`` to a scratch directory, then, with a load generator
running throughout: deploys v1 (three instances behind the built-in router),
v2 by rolling update, v3 by canary, and rolls back. Prints requests served per
release, failed requests, the time of each phase and the rollback switch time.
Stops everything at the end unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench"))

from loadgen import Load  # noqa: E402
from scratch_app import ScratchApp  # noqa: E402


class Demo(ScratchApp):
    def __init__(self) -> None:
        super().__init__(instances=3, bake="1m")
        self.phases: list[tuple[str, float]] = []

    def immute(self, *args: str) -> None:
        print(f"$ immute {' '.join(args)}", flush=True)
        subprocess.run(self.argv(*args), cwd=self.dir, env=self.env, check=True)

    def phase(self, name: str, *args: str, greeting: str | None = None) -> None:
        if greeting:
            self.greet(greeting)
        started = time.monotonic()
        self.immute(*args)
        self.phases.append((name, time.monotonic() - started))


class SwitchWatch:
    """Polls the router every few milliseconds to time the rollback's switch."""

    def __init__(self, port: int, target: str) -> None:
        self.port, self.target = port, target
        self.started = time.monotonic()
        self.switched_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        in_a_row = 0
        while not self._stop.is_set() and time.monotonic() - self.started < 60:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            in_a_row = in_a_row + 1 if response.getheader("x-release") == self.target else 0
            if in_a_row == 1 and self.switched_at is None:
                self.switched_at = time.monotonic()
            if in_a_row < 20 and in_a_row == 0:
                self.switched_at = None
            if in_a_row >= 50:
                break
            time.sleep(0.002)
        conn.close()

    def seconds(self) -> float | None:
        self._thread.join(timeout=60)
        return None if self.switched_at is None else self.switched_at - self.started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the app running")
    args = parser.parse_args()
    demo = Demo()
    keep = False
    try:
        demo.phase("deploy v1 (3 instances)", "deploy", "-m", "v1", greeting="Hello, v1")
        with Load(demo.port, connections=16) as load:
            demo.phase("deploy v2, rolling", "deploy", "-m", "v2", greeting="Hello, v2")
            demo.phase(
                "deploy v3, canary", "deploy", "-d", "canary", "-m", "v3", greeting="Hello, v3"
            )
            watch = SwitchWatch(demo.port, "v2")
            demo.phase("rollback to v2 (as v4)", "rollback")
            switch = watch.seconds()
            time.sleep(0.5)
        demo.immute("status")
        report(demo, load, switch)
        keep = args.keep
        if load.result.failed:
            sys.exit(1)
    finally:
        if keep:
            print(f"\nleft running: http://127.0.0.1:{demo.port}/  (IMMUTE_STATE_DIR={demo.state})")
            print(f"stop it with: cd {demo.dir} && IMMUTE_STATE_DIR={demo.state} immute down")
        else:
            demo.teardown()


def report(demo: Demo, load: Load, switch: float | None) -> None:
    from rich.console import Console
    from rich.table import Table

    result = load.result
    console = Console()
    served = Table("release", "requests served", title="Traffic during the demo")
    for release, count in sorted(result.by_release.items()):
        served.add_row(release, str(count))
    served.add_row(
        "failed",
        f"{result.failed} ({result.non_2xx} non-2xx, {result.socket_errors} socket errors)",
    )
    console.print(served)
    phases = Table("phase", "seconds", title="Phases (CLI start to finish)")
    for name, seconds in demo.phases:
        phases.add_row(name, f"{seconds:.2f}")
    phases.add_row(
        "rollback switch (command start to all traffic on v2's image)",
        f"{switch:.3f}" if switch else "n/a",
    )
    console.print(phases)
    console.print(f"{result.requests} requests in {load.elapsed:.1f}s, {result.failed} failed")


if __name__ == "__main__":
    main()
