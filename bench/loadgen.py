"""A small HTTP/1.1 load generator that counts every failed request.

Keep-alive connections to one address on 127.0.0.1, each sending GETs back to
back; a request whose connection breaks is counted as a socket error and the
connection is reopened. Used by the tests, ``make demo`` and the benchmarks.
Bounded: it stops after ``duration`` seconds or on ``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int = 0
    non_2xx: int = 0
    socket_errors: int = 0
    by_release: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return self.non_2xx + self.socket_errors


async def _one_connection(
    host: str, port: int, result: LoadResult, stop: asyncio.Event, *, path: str, timeout: float
) -> None:
    request = f"GET {path} HTTP/1.1\r\nhost: {host}:{port}\r\n\r\n".encode()
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            reader, writer = conn
            writer.write(request)
            status, release, keep = await asyncio.wait_for(_read_response(reader), timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            result.requests += 1
            result.socket_errors += 1
            result.errors[type(exc).__name__] += 1
            if conn is not None:
                conn[1].close()
            conn = None
            await asyncio.sleep(0.01)
            continue
        result.requests += 1
        result.statuses[status] += 1
        if not 200 <= status < 300:
            result.non_2xx += 1
        result.by_release[release or "?"] += 1
        if not keep:
            writer.close()
            conn = None
    if conn is not None:
        conn[1].close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, str, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    keep = headers.get("connection", "").lower() != "close"
    return status, headers.get("x-release", ""), keep


class Load:
    """Run load in a background thread: ``with Load(port) as load: ...; load.result``."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        connections: int = 8,
        duration: float = 600.0,
        path: str = "/",
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.connections = host, port, connections
        self.duration, self.path, self.timeout = duration, path, timeout
        self.result = LoadResult()
        self.started = 0.0
        self.elapsed = 0.0
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="loadgen", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        workers = [
            asyncio.create_task(
                _one_connection(
                    self.host,
                    self.port,
                    self.result,
                    self._stop,
                    path=self.path,
                    timeout=self.timeout,
                )
            )
            for _ in range(self.connections)
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.duration)
        self._stop.set()
        await asyncio.gather(*workers, return_exceptions=True)

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> LoadResult:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=self.timeout + 5)
        self.elapsed = time.monotonic() - self.started
        return self.result

    def __exit__(self, *_: object) -> None:
        self.stop()
