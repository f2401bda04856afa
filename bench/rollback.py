"""How fast a rollback moves traffic: end to end through the CLI, and the route flip alone.

Run: .venv/bin/python bench/rollback.py [--runs 5] [--flips 50]

(a) End to end. A scratch copy of ``examples/hello`` (3 instances, rolling with
``bake: 1m``) is deployed twice, so the first release's instances wait on
standby. Each run launches the real ``immute rollback`` process (Python start
included) while a poller sends ``GET /`` through the router every ~2 ms on one
keep-alive connection and reads ``x-release``. An instance keeps the release
name it was started with in that header: after rolling back to v1 as v3, v1's
adopted instances still say v1. So each run's target header is the other of
the two deployed releases, and the next run rolls back again (to the release
just left, whose instances are now on standby). Figures per run: first
response from the target, all traffic on the target (the first response of
the final streak of target-only responses, checked for 0.5 s after the CLI
exits), the agent's first step event (``--json``; the standby instances are
back in the route by then) and the CLI's exit, all from launching the CLI.
Target: all traffic <= 1 s.

(b) The route flip alone: the router admin call that swaps a service's
targets, made with ``BuiltinRouter.set_targets`` exactly as the agent makes it,
on a router of our own in front of two sets of 3 ``examples/hello`` processes
(the sizes of the rollback above). Each flip is timed around the awaited call;
after each, one request through the router must come from the new set (timed
too). Idle, and again under ``wrk -c16`` load when wrk is installed. Target:
the call <= 50 ms.

Median and max are printed. The machine has 2 cores shared with other work.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from immute.core.routes import Target
from immute.routers.builtin import BuiltinRouter, start_router
from scratch_app import EXAMPLE, ScratchApp, free_port, wait_http

END_TO_END_TARGET = 1.0
FLIP_TARGET = 0.050
SERVICE = "hello-web"


@dataclass
class Rollback:
    first_target: float
    all_target: float
    cli_exit: float
    first_step: float


class Poller:
    """GETs through the router on one keep-alive connection every ~2 ms;
    keeps (seconds since ``t0``, x-release) of every response."""

    def __init__(self, port: int, t0: float) -> None:
        self.port, self.t0 = port, t0
        self.seen: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.errors = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        give_up = time.perf_counter() + 60
        while not self.stop.is_set() and time.perf_counter() < give_up:
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
            except OSError:
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            header = response.getheader("x-release") or ""
            self.seen.append((time.perf_counter() - self.t0, header))
            time.sleep(0.002)
        conn.close()

    def all_on(self, target: str, *, since: float) -> bool:
        recent = [h for t, h in self.seen if t >= since]
        return bool(recent) and all(h == target for h in recent)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


def one_rollback(app: ScratchApp, target: str) -> Rollback:
    t0, wall0 = time.perf_counter(), time.time()
    cli = subprocess.Popen(
        app.argv("rollback", "--json"),
        cwd=app.dir,
        env=app.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    poller = Poller(app.port, t0)
    try:
        out, err = cli.communicate(timeout=60)
        cli_exit = time.perf_counter() - t0
        if cli.returncode != 0:
            sys.exit(f"immute rollback failed: {err.strip()}")
        settle = time.perf_counter() + 10
        while (
            not poller.all_on(target, since=cli_exit) or time.perf_counter() - t0 < cli_exit + 0.5
        ):
            if time.perf_counter() > settle:
                sys.exit(f"traffic did not settle on {target} after the rollback")
            time.sleep(0.05)
    finally:
        poller.finish()
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    if poller.errors:
        sys.exit(f"the poller saw {poller.errors} failed requests during the rollback")
    seen = poller.seen
    first = next(t for t, h in seen if h == target)
    last_other = max((i for i, (_, h) in enumerate(seen) if h != target), default=-1)
    steps = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return Rollback(
        first_target=first,
        all_target=seen[last_other + 1][0],
        cli_exit=cli_exit,
        first_step=float(steps[0]["at"]) - wall0 if steps else float("nan"),
    )


def end_to_end(runs: int) -> list[Rollback]:
    results = []
    with ScratchApp(bake="1m") as app:
        app.deploy("Hello, v1")
        first = app.release_header()
        app.deploy("Hello, v2")
        second = app.release_header()
        print(f"deployed {first} then {second}; router on 127.0.0.1:{app.port}", flush=True)
        for run in range(1, runs + 1):
            current = app.release_header()
            target = first if current == second else second
            time.sleep(1.0)
            result = one_rollback(app, target)
            results.append(result)
            print(
                f"run {run}: {current} -> {target}: first response from {target} "
                f"{result.first_target * 1000:.0f} ms, all traffic "
                f"{result.all_target * 1000:.0f} ms, agent's first step event "
                f"{result.first_step * 1000:.0f} ms, CLI exited {result.cli_exit * 1000:.0f} ms",
                flush=True,
            )
    return results


class Backends:
    """Two sets of ``examples/hello`` processes, releases "a" and "b", 3 each."""

    def __init__(self, size: int) -> None:
        self.sets: dict[str, list[str]] = {"a": [], "b": []}
        self.processes: list[subprocess.Popen[bytes]] = []
        for release, addresses in self.sets.items():
            for _ in range(size):
                port = free_port()
                env = {**os.environ, "PORT": str(port), "IMMUTE_RELEASE": release}
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "app.py"],
                        cwd=EXAMPLE,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        # Connections that wrk resets when killed print tracebacks.
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
                addresses.append(f"127.0.0.1:{port}")
        for addresses in self.sets.values():
            for address in addresses:
                wait_http(int(address.rsplit(":", 1)[1]))

    def targets(self, release: str) -> list[Target]:
        return [Target(address, 100, "ready", release) for address in self.sets[release]]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def header_via(conn: http.client.HTTPConnection) -> str:
    conn.request("GET", "/")
    response = conn.getresponse()
    response.read()
    return response.getheader("x-release") or ""


async def flips(
    router: BuiltinRouter, backends: Backends, *, port: int, count: int
) -> tuple[list[float], list[float]]:
    """``count`` swaps between the two sets: each call's seconds, and seconds
    until a request through the router came from the new set."""
    calls, served = [], []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for i in range(count):
            release = "b" if i % 2 == 0 else "a"
            began = time.perf_counter()
            await router.set_targets(SERVICE, backends.targets(release))
            calls.append(time.perf_counter() - began)
            header = header_via(conn)
            served.append(time.perf_counter() - began)
            if header != release:
                sys.exit(f"flip {i}: a request after the call came from {header}, not {release}")
            await asyncio.sleep(0.02)
    finally:
        conn.close()
    return calls, served


def route_flip(count: int) -> dict[str, tuple[list[float], list[float]]]:
    results: dict[str, tuple[list[float], list[float]]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="immute-bench-flip-"))
    port = free_port()
    backends = Backends(3)
    router_process = start_router(
        listen=f"127.0.0.1:{port}", admin=scratch / "router.sock", log=scratch / "router.log"
    )
    try:
        router = BuiltinRouter(scratch / "router.sock")
        asyncio.run(router.set_targets(SERVICE, backends.targets("a")))
        results["idle"] = asyncio.run(flips(router, backends, port=port, count=count))
        wrk = shutil.which("wrk")
        if wrk:
            load = subprocess.Popen(
                [wrk, "-t1", "-c16", "-d300s", f"http://127.0.0.1:{port}/"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(0.5)
                results["under wrk -c16"] = asyncio.run(
                    flips(router, backends, port=port, count=count)
                )
            finally:
                load.kill()
                load.wait()
    finally:
        router_process.terminate()
        try:
            router_process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            router_process.kill()
            router_process.wait()
        backends.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def cli_start(runs: int = 5) -> float:
    """Median seconds of ``immute --version``: the part of (a) that is Python starting."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "immute", "--version"], check=True, capture_output=True
        )
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def line(name: str, values: list[float], target: float | None) -> str:
    text = f"  {name:<52} median {statistics.median(values) * 1000:7.1f} ms   max "
    text += f"{max(values) * 1000:7.1f} ms"
    if target is not None:
        verdict = "ok" if max(values) <= target else "OVER"
        text += f"   target <= {target * 1000:.0f} ms: {verdict}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="rollbacks through the CLI")
    parser.add_argument("--flips", type=int, default=50, help="route flips per condition")
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("--runs: 1 to 20 (the standby set waits 1 minute)")
    if not 1 <= args.flips <= 1000:
        parser.error("--flips: 1 to 1000")
    rollbacks = end_to_end(args.runs)
    flipped = route_flip(args.flips)
    print()
    print(f"(a) immute rollback, end to end ({args.runs} runs, 3 instances per release):")
    print(line("first response from the target release", [r.first_target for r in rollbacks], None))
    print(
        line(
            "all traffic on the target release",
            [r.all_target for r in rollbacks],
            END_TO_END_TARGET,
        )
    )
    print(
        line("agent's first step event (standby promoted)", [r.first_step for r in rollbacks], None)
    )
    print(line("CLI exited", [r.cli_exit for r in rollbacks], None))
    print(f"  for reference, `immute --version` takes {cli_start() * 1000:.0f} ms (median)")
    print(f"(b) route flip alone: set_targets swapping 3 targets for 3 ({args.flips} flips):")
    for condition, (calls, served) in flipped.items():
        print(line(f"admin call, {condition}", calls, FLIP_TARGET))
        print(line(f"call + next request from the new set, {condition}", served, None))
    print("machine: 2 cores shared with other work")


if __name__ == "__main__":
    main()
