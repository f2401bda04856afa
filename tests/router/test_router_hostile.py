"""Malformed and hostile input is refused on its own connection; others are not disturbed."""

from __future__ import annotations

import asyncio

import pytest
from router_helpers import Load, Procs, RouterProc, during_load

pytestmark = pytest.mark.anyio


async def exchange_raw(router: RouterProc, data: bytes, *, pause: float = 0.0) -> bytes:
    """Send `data` (in slow pieces when `pause`) while collecting all that comes back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
    received = bytearray()

    async def read_all() -> None:
        try:
            while chunk := await reader.read(65536):
                received.extend(chunk)
        except ConnectionResetError:
            pass

    reading = asyncio.ensure_future(read_all())
    pieces = [data[i : i + 4] for i in range(0, len(data), 4)] if pause else [data]
    try:
        for piece in pieces:
            if reading.done():
                break
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(pause)
    except ConnectionError:
        pass
    await asyncio.wait_for(reading, 30)
    writer.close()
    return bytes(received)


HOSTILE = {
    "bad request line": (b"GET / HTTP/9\r\n\r\n", b"400"),
    "garbage": (b"\x00\x01\x02 nonsense\r\n\r\n", b"400"),
    "header flood": (
        b"GET / HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-%d: y\r\n" % i for i in range(500)),
        b"431",
    ),
    "huge header": (b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
    "invalid chunk size": (
        b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n",
        b"400",
    ),
    "content-length and transfer-encoding": (
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n"
        b"transfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
        b"400",
    ),
    "two different content-lengths": (
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\nabcd",
        b"400",
    ),
    "obsolete line folding": (b"GET / HTTP/1.1\r\nhost: x\r\nx-a: b\r\n c\r\n\r\n", b"400"),
}


async def test_hostile_inputs_are_refused_without_disturbing_other_clients(procs: Procs) -> None:
    backend = procs.backend("app")
    router = procs.router("--header-timeout", "1")
    await router.api.set_targets("web", [backend.target()])
    answers: dict[str, bytes] = {}

    async def attack(load: Load) -> None:
        for name, (data, _) in HOSTILE.items():
            answers[name] = await exchange_raw(router, data)
        answers["slowloris"] = await exchange_raw(
            router, b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 400, pause=0.05
        )

    load = await during_load(router.url, attack, workers=4, warmup=50)
    for name, (_, status) in HOSTILE.items():
        assert answers[name].startswith(b"HTTP/1.1 " + status), name
    assert answers["slowloris"].startswith(b"HTTP/1.1 408")
    assert load.failures == []
    assert load.ok >= 50
    state = await router.api.status()
    assert state["rejected"] == len(HOSTILE) + 1


async def test_connect_method_is_refused(procs: Procs) -> None:
    backend = procs.backend("app")
    router = procs.router()
    await router.api.set_targets("web", [backend.target()])
    answer = await exchange_raw(router, b"CONNECT example.test:443 HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
