"""Zero downtime under load: wrk through the router during deploy/rollback cycles.

Run: .venv/bin/python bench/zero_downtime.py [--runtime process|docker] [--cycles 10]
     [--connections 64]

Deploys ``examples/hello`` (as processes, or with ``--runtime docker`` as
containers on a Debian base image made by ``docker_base.py``; a scratch copy,
its own state directory and router port on 127.0.0.1), starts ``wrk -t2 -c64``
against the router with a long duration, then runs ``--cycles`` times: deploy
with a changed greeting (rolling, max_surge 1) and ``immute rollback`` (a flip
to the previous release kept on standby by ``bake``). When the cycles are done,
wrk is stopped with SIGINT, which makes it print its usual summary. Printed:
total requests, non-2xx responses (counted by ``count_status.lua``, since wrk's
own line only counts status >= 400), socket errors as wrk reports them
(connect/read/write/timeout), and requests per ``x-release`` header. Target:
non-2xx 0 and socket errors 0. Exits 1 if either is not 0. Everything is
stopped at the end, even on failure.

wrk is installed with apt-get when missing and running as root.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from scratch_app import ScratchApp

HERE = Path(__file__).resolve().parent
WRK_MAX_SECONDS = 1800
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass
class WrkReport:
    requests: int = 0
    seconds: float = 0.0
    non_2xx: int = 0
    wrk_non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    releases: dict[str, int] = field(default_factory=dict)


def find_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is not installed; install it (Debian: apt-get install wrk) and rerun")
    print("installing wrk with apt-get", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, check=False).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], check=False)
        subprocess.run(install, check=False)
    return shutil.which("wrk") or sys.exit("wrk could not be installed with apt-get")


def parse_wrk(output: str) -> WrkReport:
    report = WrkReport(socket_errors={"connect": 0, "read": 0, "write": 0, "timeout": 0})
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m|h)", output)
    if total is None:
        sys.exit(f"could not read wrk's summary:\n{output}")
    report.requests = int(total.group(1))
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[total.group(3)]
    report.seconds = float(total.group(2)) * unit
    errors = SOCKET_ERRORS.search(output)
    if errors:
        report.socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
        )
    status = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    report.wrk_non_2xx_3xx = int(status.group(1)) if status else 0
    lua = re.search(r"^lua non2xx (\d+)$", output, re.MULTILINE)
    if lua is None:
        sys.exit(f"count_status.lua printed nothing:\n{output}")
    report.non_2xx = int(lua.group(1))
    for name, count in re.findall(r"^lua release (\S+) (\d+)$", output, re.MULTILINE):
        report.releases[name] = int(count)
    return report


def start_wrk(wrk: str, port: int, *, connections: int, timeout: str) -> subprocess.Popen[str]:
    argv = [
        wrk,
        "-t2",
        f"-c{connections}",
        f"-d{WRK_MAX_SECONDS}s",
        f"--timeout={timeout}",
        "--latency",
        "-s",
        str(HERE / "count_status.lua"),
        f"http://127.0.0.1:{port}/",
    ]
    print("$ " + " ".join(argv), flush=True)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_wrk(process: subprocess.Popen[str]) -> str:
    """SIGINT makes wrk stop and print its summary; a stuck one is killed."""
    process.send_signal(signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


def cycles(app: ScratchApp, count: int) -> list[tuple[float, float]]:
    """``count`` deploys and rollbacks; the seconds each took, CLI start to end."""
    times = []
    for i in range(1, count + 1):
        began = time.monotonic()
        app.deploy(f"Hello, cycle {i}")
        deployed = time.monotonic()
        app.run_or_exit("rollback", "--json")
        rolled = time.monotonic()
        times.append((deployed - began, rolled - deployed))
        print(
            f"cycle {i}: deploy {deployed - began:.2f}s, rollback {rolled - deployed:.2f}s",
            flush=True,
        )
    return times


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full
    (this network namespace, every process): SYNs dropped this way are retried
    after 1 s, 3 s..., which shows as latency spikes and wrk timeouts."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    for names, values in itertools.pairwise(lines):
        if names[0] == "TcpExt:" and values[0] == "TcpExt:" and "ListenOverflows" in names:
            return int(values[names.index("ListenOverflows")])
    return 0


def report(
    wrk: WrkReport, times: list[tuple[float, float]], *, connections: int, overflows: int
) -> bool:
    errors = sum(wrk.socket_errors.values())
    detail = ", ".join(f"{name} {n}" for name, n in wrk.socket_errors.items())
    print()
    print(f"cycles of deploy + rollback: {len(times)}")
    print(f"  deploy   median {_median([d for d, _ in times]):.2f}s")
    print(f"  rollback median {_median([r for _, r in times]):.2f}s")
    print(f"wrk, 2 threads, {connections} connections, {wrk.seconds:.1f}s:")
    print(f"  requests        {wrk.requests}  ({wrk.requests / max(wrk.seconds, 1e-9):.0f}/s)")
    print(
        f"  non-2xx         {wrk.non_2xx}  (target 0; wrk's non-2xx/3xx line: "
        f"{wrk.wrk_non_2xx_3xx})"
    )
    print(f"  socket errors   {errors}  ({detail}; target 0)")
    print(f"  listen queue overflows on this host during the run: {overflows}")
    print("  by x-release    " + ", ".join(f"{k} {v}" for k, v in sorted(wrk.releases.items())))
    ok = wrk.non_2xx == 0 and errors == 0
    print("PASS" if ok else "FAIL", "(machine: 2 cores shared with other work; wrk runs here too)")
    return ok


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runtime", choices=["process", "docker"], default="process")
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--timeout", default="2s", help="wrk's request timeout (its default)")
    args = parser.parse_args()
    if args.connections < 64:
        parser.error("--connections: at least 64")
    if not 1 <= args.cycles <= 100:
        parser.error("--cycles: 1 to 100")
    wrk_path = find_wrk()
    with ScratchApp(runtime=args.runtime) as app:
        app.deploy("Hello, v1")
        print(f"v1 deployed, router on 127.0.0.1:{app.port}", flush=True)
        overflows = listen_overflows()
        wrk = start_wrk(wrk_path, app.port, connections=args.connections, timeout=args.timeout)
        try:
            time.sleep(1.0)
            times = cycles(app, args.cycles)
            time.sleep(1.0)
        finally:
            output = stop_wrk(wrk)
            with contextlib.suppress(ProcessLookupError):
                wrk.kill()
        print(output, end="")
        overflows = listen_overflows() - overflows
        ok = report(parse_wrk(output), times, connections=args.connections, overflows=overflows)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
