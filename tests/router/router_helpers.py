"""Starting backends and routers, and a load generator that counts every failure."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httptools

from immute.core.routes import Target
from immute.routers.builtin import BuiltinRouter, start_router

BACKEND = Path(__file__).with_name("router_backend.py")


@dataclass
class Backend:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def target(self, weight: int = 1, release: str = "") -> Target:
        return Target(self.address, weight, "ready", release or self.name)


def start_backend(name: str, *, ws: bool = False, drop_reused: bool = False) -> Backend:
    argv = [sys.executable, str(BACKEND), "--name", name, *(["--ws"] if ws else [])]
    if drop_reused:
        argv.append("--drop-reused")
    if ws:
        argv += ["--port", str(free_port())]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    assert line.startswith("ready "), f"backend {name} did not start"
    return Backend(name, int(line.split()[1]), process)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RouterProc:
    process: subprocess.Popen[bytes]
    port: int
    admin: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> BuiltinRouter:
        return BuiltinRouter(self.admin)


def start_router_proc(
    admin: Path, *, listen: str = "", extra: Sequence[str] = (), log: Path | None = None
) -> RouterProc:
    listen = listen or f"127.0.0.1:{free_port()}"
    process = start_router(listen=listen, admin=admin, extra=extra, log=log)
    return RouterProc(process, int(listen.rsplit(":", 1)[1]), admin)


@dataclass
class Load:
    """Counts of a load run: every request is either ok or a failure, with its reason."""

    ok: int = 0
    failures: list[str] = field(default_factory=list)
    bodies: dict[str, int] = field(default_factory=dict)


class _Response:
    def __init__(self, *, head_only: bool) -> None:
        self.head_only = head_only
        self.status = 0
        self.body = b""
        self.done = False
        self.keep_alive = True

    def on_headers_complete(self) -> None:
        self.done = self.head_only

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


class KeepAliveClient:
    """One HTTP/1.1 connection reused for every request, as browsers and SDKs do;
    reconnects only when the server said `Connection: close`."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        length = f"content-length: {len(body)}\r\n" if body or method != "GET" else ""
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\n{length}\r\n"
        self.writer.write(head.encode() + body)
        response = _Response(head_only=method == "HEAD")
        parser = httptools.HttpResponseParser(response)
        try:
            while not response.done:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("server closed the connection without a response")
                parser.feed_data(data)
            response.status = parser.get_status_code()
            response.keep_alive = parser.should_keep_alive()
        except BaseException:
            await self.close()
            raise
        if not response.keep_alive:
            await self.close()
        return response.status, response.body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def run_load(
    url: str,
    load: Load,
    *,
    workers: int,
    stop: asyncio.Event,
    max_requests: int = 200_000,
    path: str = "/",
    method: str = "GET",
) -> None:
    """Keep-alive clients hammering `url` until `stop` is set (or the request cap)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)

    async def worker() -> None:
        client = KeepAliveClient(host, int(port))
        body = b"x" * 10 if method != "GET" else b""
        while not stop.is_set() and load.ok + len(load.failures) < max_requests:
            try:
                status, text = await client.request(method, path, body)
            except (OSError, httptools.HttpParserError) as exc:
                load.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if status != 200:
                load.failures.append(f"HTTP {status}: {text[:80]!r}")
            else:
                load.ok += 1
                name = text.decode()
                load.bodies[name] = load.bodies.get(name, 0) + 1
        await client.close()

    await asyncio.gather(*(worker() for _ in range(workers)))


async def during_load(
    url: str,
    action: Callable[[Load], Awaitable[None]],
    *,
    workers: int = 16,
    warmup: int = 200,
    path: str = "/",
    method: str = "GET",
) -> Load:
    """Run `action` once the load has `warmup` answers, then stop the load."""
    load = Load()
    stop = asyncio.Event()
    task = asyncio.ensure_future(
        run_load(url, load, workers=workers, stop=stop, path=path, method=method)
    )
    try:
        await wait_until(lambda: load.ok >= warmup or task.done())
        await action(load)
    finally:
        stop.set()
        await task
    return load


async def wait_until(check: Callable[[], bool], *, attempts: int = 800) -> None:
    """Poll `check` every 25 ms, at most `attempts` times (a bound, not a timing claim)."""
    for _ in range(attempts):
        if check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("condition not reached")


@dataclass
class Procs:
    tmp: Path
    started: list[subprocess.Popen[bytes]]

    def backend(self, name: str, *, ws: bool = False, drop_reused: bool = False) -> Backend:
        backend = start_backend(name, ws=ws, drop_reused=drop_reused)
        self.started.append(backend.process)
        return backend

    def router(self, *extra: str, admin: Path | None = None, listen: str = "") -> RouterProc:
        router = start_router_proc(
            admin or self.tmp / "admin.sock", listen=listen, extra=extra, log=self.tmp / "r.log"
        )
        self.started.append(router.process)
        return router
