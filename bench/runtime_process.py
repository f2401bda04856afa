"""What the process runtime adds to starting and stopping an instance.

Run: .venv/bin/python bench/runtime_process.py [--runs N]

Starts and stops N instances of a worker that sleeps (and handles SIGTERM),
through ``ProcessRuntime`` and, side by side in the same run, as a bare child
with ``subprocess.Popen`` (start = until the child exists; stop = SIGTERM
until reaped). The difference is the price of the detached shim that lets
instances outlive the agent; it counts in the deploy overhead of issue 5
(target: under 0.5 s per step).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from immute.core.instances import InstanceLabels, InstanceSpec
from immute.runtimes.process import ProcessRuntime

WORKER = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "time.sleep(60)\n"
)


async def through_runtime(runs: int, state_dir: Path) -> tuple[list[float], list[float]]:
    runtime = ProcessRuntime(state_dir)
    starts, stops = [], []
    for i in range(runs):
        labels = InstanceLabels(f"bench-{i}", "bench", "worker", "v1", "sha256:bench")
        spec = InstanceSpec(labels=labels, root_dir=state_dir, argv=(sys.executable, "-c", WORKER))
        began = time.perf_counter()
        await runtime.start(spec)
        starts.append(time.perf_counter() - began)
        await asyncio.sleep(0.1)
        began = time.perf_counter()
        await runtime.stop(labels.instance_id)
        stops.append(time.perf_counter() - began)
        await runtime.remove(labels.instance_id)
    return starts, stops


def bare_popen(runs: int) -> tuple[list[float], list[float]]:
    starts, stops = [], []
    for _ in range(runs):
        began = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", WORKER], start_new_session=True)
        starts.append(time.perf_counter() - began)
        time.sleep(0.1)
        began = time.perf_counter()
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
        stops.append(time.perf_counter() - began)
    return starts, stops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        runtime_start, runtime_stop = asyncio.run(through_runtime(args.runs, Path(state)))
    popen_start, popen_stop = bare_popen(args.runs)
    print(f"{'median over ' + str(args.runs) + ' runs':<24} {'start s':>8} {'stop s':>8}")
    for name, starts, stops in (
        ("ProcessRuntime", runtime_start, runtime_stop),
        ("bare Popen", popen_start, popen_stop),
    ):
        print(f"{name:<24} {statistics.median(starts):>8.3f} {statistics.median(stops):>8.3f}")
    extra = statistics.median(runtime_start) - statistics.median(popen_start)
    print(f"runtime start costs {extra * 1000:.0f} ms more than a bare Popen")


if __name__ == "__main__":
    main()
