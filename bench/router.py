"""The builtin router against HAProxy, side by side, in one run.

Run: .venv/bin/python bench/router.py [--duration 6] [--rounds 5] [--storm 20]

Starts one fast backend (tests/router/router_backend.py) on 127.0.0.1, then measures
with wrk (-t2 -c64, keep-alive): the backend directly, through immute's router
as installed (its hot path compiled with mypyc where a compiler was at hand, see
setup.py), through HAProxy 2.6 configured equivalently (one thread, keep-alive to
the backend, X-Forwarded-For/-Proto/-Host and an X-Request-Id on both sides),
and through immute's router run as plain Python from a copy of the same source.
Runs alternate for --rounds rounds; the table shows each path's median, and the
ratios are medians of per-round ratios (each immute run against the HAProxy run
right after it), since the machine is shared and its load drifts. Then a swap
storm: wrk with 64 connections through immute while the target set is swapped
every 100 ms, counting non-2xx responses and socket errors. Installs wrk and
haproxy with apt-get when missing and running as root. Targets: immute >= 0.7x
HAProxy's requests per second, p99 <= 2x HAProxy's, and zero errors in the storm.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from compiled_router import compiled, plain_env
from immute.admin_socket import call
from immute.core.routes import Route, Target, route_to_json

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "tests" / "router" / "router_backend.py"
HAPROXY_CFG = """global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    # The same per-request work immute does: forwarding headers and a request id.
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    unique-id-format %{{+X}}o%ci%cp%fp%Ts%rt%pid
    unique-id-header X-Request-Id
    http-response set-header X-Request-Id %[unique-id]
    default_backend be
backend be
    server app 127.0.0.1:{backend}
"""


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    requests: int
    cpu_us: float = 0.0  # CPU time of the proxy per request: steadier than req/s here


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ensure_tools() -> None:
    missing = [tool for tool in ("wrk", "haproxy") if not find(tool)]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing {', '.join(missing)}: install the Debian packages wrk and haproxy")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def find(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/usr/bin/{tool}") if os.path.exists(p)), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, *, duration: int, connections: int = 64, threads: int = 2) -> WrkResult:
    argv = [find("wrk") or "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s"]
    out = subprocess.run(
        [*argv, "--latency", url], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        rps,
        p50,
        p99,
        int(non2xx.group(1)) if non2xx else 0,
        sum(int(n) for n in errors.groups()) if errors else 0,
        int(total.group(1)) if total else 0,
    )


def start(
    argv: list[str], *, ready: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if ready not in line:
        process.kill()
        sys.exit(f"{argv[0]} did not start: {line!r}")
    return process


def set_targets(admin: Path, addresses: list[str]) -> None:
    targets = tuple(Target(a, release=f"r{i}") for i, a in enumerate(addresses))
    body = route_to_json(Route(service="web", targets=targets))
    asyncio.run(call(admin, "PUT", "/services/web", body))


def storm(admin: Path, sets: list[list[str]], stop: threading.Event) -> int:
    """Swap on a fixed 100 ms grid, so the time a swap takes does not stretch it."""
    swaps = 0
    next_at = time.monotonic() + 0.1
    while not stop.wait(max(0.0, next_at - time.monotonic())):
        set_targets(admin, sets[swaps % len(sets)])
        swaps += 1
        next_at += 0.1
    return swaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--storm", type=int, default=20)
    args = parser.parse_args()
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="immute-bench-"))
    python = sys.executable
    procs: list[subprocess.Popen[bytes]] = []
    try:
        names = ("backend", "spare", "immute", "haproxy", "immute-py")
        ports = {name: free_port() for name in names}
        for name in ("backend", "spare"):
            argv = [python, str(BACKEND), "--port", str(ports[name]), "--name", name]
            procs.append(start(argv, ready="ready"))
        backend = f"127.0.0.1:{ports['backend']}"
        pids: dict[str, int] = {}
        # immute-py: the plain-Python router, beside the compiled one it is compared with.
        routers = {"immute": None, "immute-py": plain_env(tmp)} if compiled() else {"immute": None}
        for name, env in routers.items():
            admin = tmp / f"{name}.sock"
            argv = [python, "-m", "immute.proxy", "--listen", f"127.0.0.1:{ports[name]}"]
            procs.append(start([*argv, "--admin", str(admin)], ready="listening", env=env))
            pids[name] = procs[-1].pid
            set_targets(admin, [backend])
        cfg = tmp / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(port=ports["haproxy"], backend=ports["backend"]))
        procs.append(subprocess.Popen([find("haproxy") or "haproxy", "-f", str(cfg)]))
        pids["haproxy"] = procs[-1].pid
        time.sleep(1.0)
        if not compiled():
            print("immute's router is plain Python in this install (see setup.py)")
        report(ports, args, pids=pids)
        print_storm(tmp / "immute.sock", ports, backend, args.storm)
    finally:
        for process in procs:
            process.kill()
            process.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def report(ports: dict[str, int], args: argparse.Namespace, *, pids: dict[str, int]) -> None:
    # Each immute run comes right before the HAProxy run it is compared with.
    paths = [("direct", "backend"), ("immute", "immute"), ("haproxy", "haproxy")]
    if "immute-py" in pids:
        paths.append(("immute-py", "immute-py"))
    urls = {name: f"http://127.0.0.1:{ports[key]}/" for name, key in paths}
    runs: dict[str, list[WrkResult]] = {name: [] for name in urls}
    for _ in range(args.rounds):
        for name, url in urls.items():
            wrk(url, duration=1)  # warm pools and caches
            before = cpu_seconds(pids[name]) if name in pids else 0.0
            result = wrk(url, duration=args.duration)
            if name in pids and result.requests:
                used = cpu_seconds(pids[name]) - before
                result.cpu_us = used / result.requests * 1e6
            runs[name].append(result)
    print(f"wrk -t2 -c64 -d{args.duration}s, median of {args.rounds} alternating rounds")
    print(
        f"{'path':<10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU us/req':>11}"
    )
    for name, results in runs.items():
        cpu = median([r.cpu_us for r in results])
        errors = sum(r.non2xx + r.socket_errors for r in results)
        print(
            f"{name:<10} {median([r.rps for r in results]):>10.0f} "
            f"{median([r.p50_ms for r in results]):>8.2f} "
            f"{median([r.p99_ms for r in results]):>8.2f} {errors:>7} "
            + (f"{cpu:>11.1f}" if cpu else f"{'-':>11}")
        )
    # Ratios pair each immute run with the HAProxy run right after it, so that
    # load from other processes, which drifts over minutes, cancels out.
    pairs = list(zip(runs["immute"], runs["haproxy"], strict=True))
    rps_ratios = [i.rps / h.rps for i, h in pairs]
    p99_ratios = [i.p99_ms / h.p99_ms for i, h in pairs]
    cpu_ratios = [i.cpu_us / h.cpu_us for i, h in pairs if i.cpu_us and h.cpu_us]
    print(f"per-round immute/haproxy throughput: {' '.join(f'{r:.2f}' for r in rps_ratios)}")
    rps_ratio, p99_ratio = median(rps_ratios), median(p99_ratios)
    print(
        f"immute/haproxy throughput {rps_ratio:.2f}x (target >= 0.70x) "
        f"{'ok' if rps_ratio >= 0.7 else 'BELOW TARGET'}"
    )
    print(
        f"immute/haproxy p99        {p99_ratio:.2f}x (target <= 2.00x) "
        f"{'ok' if p99_ratio <= 2.0 else 'ABOVE TARGET'}"
    )
    if cpu_ratios:
        print(f"immute/haproxy CPU per request {median(cpu_ratios):.2f}x")
    if "immute-py" in runs:
        plain = list(zip(runs["immute"], runs["immute-py"], runs["haproxy"], strict=True))
        print(
            "immute as plain Python: throughput "
            f"{median([p.rps / h.rps for _, p, h in plain]):.2f}x HAProxy's; "
            "compiled/plain CPU per request "
            f"{median([i.cpu_us / p.cpu_us for i, p, _ in plain if p.cpu_us]):.2f}x"
        )


def print_storm(admin: Path, ports: dict[str, int], backend: str, seconds: int) -> None:
    spare = f"127.0.0.1:{ports['spare']}"
    stop = threading.Event()
    swaps: list[int] = []
    sets = [[spare], [backend], [backend, spare]]
    thread = threading.Thread(target=lambda: swaps.append(storm(admin, sets, stop)))
    thread.start()
    try:
        result = wrk(f"http://127.0.0.1:{ports['immute']}/", duration=seconds, connections=64)
    finally:
        stop.set()
        thread.join()
    print(f"swap storm: wrk -c64 -d{seconds}s through immute, target set swapped every 100 ms")
    print(
        f"  swaps {swaps[0]}, requests/s {result.rps:.0f}, non-2xx {result.non2xx}, "
        f"socket errors {result.socket_errors} (target: 0 and 0)"
    )


if __name__ == "__main__":
    main()
