"""HTTP/1.1 proxying semantics, checked byte for byte against a real backend."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest
from router_helpers import KeepAliveClient, Procs, RouterProc

from immute.core.routes import Sticky

pytestmark = pytest.mark.anyio


async def raw(router: RouterProc, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
    writer.write(data)
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return answer


async def test_forwarding_headers_and_hop_by_hop_removal(procs: Procs) -> None:
    backend = procs.backend("app")
    router = procs.router()
    await router.api.set_targets("web", [backend.target()])
    answer = await raw(
        router,
        b"GET /headers HTTP/1.1\r\nhost: shop.test\r\nx-forwarded-for: 10.0.0.9\r\n"
        b"x-forwarded-proto: https\r\nconnection: close, x-secret\r\nx-secret: 1\r\n"
        b"keep-alive: timeout=5\r\nx-request-id: req-42\r\nx-kept: yes\r\n\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    seen = set(body.split(b"\n"))
    assert b"x-forwarded-for: 10.0.0.9, 127.0.0.1" in seen
    assert b"x-forwarded-proto: http" in seen
    assert b"x-forwarded-host: shop.test" in seen
    assert b"x-request-id: req-42" in seen
    assert b"x-kept: yes" in seen
    assert b"host: shop.test" in seen
    assert not any(line.startswith((b"x-secret", b"keep-alive", b"connection")) for line in seen)
    assert b"x-request-id: req-42" in head.lower()
    assert b"connection: close" in head.lower()


async def test_request_id_is_generated_when_absent(procs: Procs) -> None:
    backend = procs.backend("app")
    router = procs.router()
    await router.api.set_targets("web", [backend.target()])
    answer = await raw(router, b"GET /headers HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    ids = [line for line in answer.split(b"\n") if line.lower().startswith(b"x-request-id")]
    assert len(ids) == 2 and ids[0].strip() == ids[1].strip()


async def test_large_chunked_body_streams_both_ways(procs: Procs) -> None:
    backend = procs.backend("app")
    router = procs.router()
    await router.api.set_targets("web", [backend.target()])
    payload = os.urandom(3 * 1024 * 1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
    writer.write(b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
    for i in range(0, len(payload), 100_000):
        piece = payload[i : i + 100_000]
        writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    echoed = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            break
        echoed.extend(data[:-2])
    assert bytes(echoed) == payload
    writer.close()


async def test_head_http10_and_expect_continue(procs: Procs) -> None:
    backend = procs.backend("app")
    router = procs.router()
    await router.api.set_targets("web", [backend.target()])
    client = KeepAliveClient("127.0.0.1", router.port)
    assert await client.request("HEAD", "/") == (200, b"")
    assert await client.request("GET", "/") == (200, b"app"), "connection usable after HEAD"
    await client.close()
    old = await raw(router, b"GET / HTTP/1.0\r\n\r\n")
    assert old.startswith(b"HTTP/1.1 200") and old.endswith(b"\r\n\r\napp")
    reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
    writer.write(
        b"POST /echo HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n"
    )
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"hello")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert await reader.readuntil(b"0\r\n\r\n") == b"5\r\nhello\r\n0\r\n\r\n"
    writer.close()


async def test_hosts_choose_the_service_and_a_lone_service_takes_all(procs: Procs) -> None:
    shop, blog = procs.backend("shop"), procs.backend("blog")
    router = procs.router()
    await router.api.set_targets("shop", [shop.target()], hosts=["shop.test"])
    lone = await raw(router, b"GET / HTTP/1.1\r\nhost: any.test\r\nconnection: close\r\n\r\n")
    assert lone.endswith(b"shop")
    await router.api.set_targets("blog", [blog.target()], hosts=["blog.test"])
    for host, expected in ((b"shop.test", b"shop"), (b"BLOG.test:8080", b"blog")):
        answer = await raw(
            router, b"GET / HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n" % host
        )
        assert answer.endswith(expected)
    unknown = await raw(router, b"GET / HTTP/1.1\r\nhost: other.test\r\n\r\n")
    assert unknown.startswith(b"HTTP/1.1 404")


async def test_request_is_held_until_a_target_appears_then_503(procs: Procs) -> None:
    backend = procs.backend("late")
    router = procs.router("--hold-timeout", "1")
    await router.api.set_targets("web", [])
    client = KeepAliveClient("127.0.0.1", router.port)
    held = asyncio.ensure_future(client.request("GET", "/"))
    await asyncio.sleep(0.2)
    assert not held.done()
    await router.api.set_targets("web", [backend.target()])
    assert await held == (200, b"late")
    await router.api.pause("web")
    answer = await raw(router, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 503")
    assert b"retry-after: 1" in answer.lower()
    await router.api.resume("web")
    assert await client.request("GET", "/") == (200, b"late")
    await client.close()


async def test_canary_weights_and_sticky_cookie(procs: Procs) -> None:
    stable, canary = procs.backend("stable"), procs.backend("canary")
    router = procs.router()
    targets = [stable.target(9, "v1"), canary.target(1, "v2")]
    await router.api.set_targets("web", targets, sticky=Sticky("cookie", "release"))
    first = await raw(router, b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    cookie = next(line for line in first.split(b"\r\n") if line.startswith(b"set-cookie"))
    release = cookie.split(b"=", 1)[1].split(b";")[0]
    expected = b"stable" if release == b"v1" else b"canary"
    for _ in range(20):
        again = await raw(
            router,
            b"GET / HTTP/1.1\r\nhost: x\r\ncookie: a=b; release=%s\r\nconnection: close\r\n\r\n"
            % release,
        )
        assert again.endswith(expected)
        assert b"set-cookie" not in again
    pinned = await raw(
        router, b"GET / HTTP/1.1\r\nhost: x\r\ncookie: release=v2\r\nconnection: close\r\n\r\n"
    )
    assert pinned.endswith(b"canary")
    await router.api.set_targets("web", [stable.target(9, "v1"), canary.target(1, "v2")])
    client = KeepAliveClient("127.0.0.1", router.port)
    counts = {b"stable": 0, b"canary": 0}
    for _ in range(400):
        counts[(await client.request("GET", "/"))[1]] += 1
    await client.close()
    assert counts[b"canary"] > 0 and counts[b"stable"] > 4 * counts[b"canary"]


async def test_sticky_header_and_weight_changes(procs: Procs) -> None:
    v1, v2 = procs.backend("one"), procs.backend("two")
    router = procs.router()
    await router.api.set_targets(
        "web", [v1.target(1, "v1"), v2.target(1, "v2")], sticky=Sticky("header", "x-user")
    )
    for user in (b"ana", b"bo", b"cy"):
        answers = {
            (await raw(router, b"GET / HTTP/1.1\r\nx-user: %s\r\nconnection: close\r\n\r\n" % user))
            .rsplit(b"\n", 1)[-1]
            .split(b"\r\n\r\n")[-1]
            for _ in range(5)
        }
        assert len(answers) == 1, f"user {user!r} moved between releases"
    await router.api.set_weights("web", {v1.address: 0})
    client = KeepAliveClient("127.0.0.1", router.port)
    bodies = {(await client.request("GET", "/"))[1] for _ in range(30)}
    await client.close()
    assert bodies == {b"two"}


async def test_answer_before_the_body_ended_reaches_the_client(procs: Procs) -> None:
    """A 503 for a held upload arrives intact although the client is still sending."""
    router = procs.router("--hold-timeout", "0.5")
    await router.api.set_targets("web", [])
    reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
    writer.write(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n")
    answer = bytearray()

    async def read_all() -> None:
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                answer.extend(chunk)

    # Keep sending past the hold limit before reading, as an uploading client does.
    with contextlib.suppress(ConnectionError):
        for _ in range(150):
            writer.write(b"x" * 16384)
            await writer.drain()
            await asyncio.sleep(0.005)
    await asyncio.wait_for(read_all(), 30)
    writer.close()
    assert bytes(answer).startswith(b"HTTP/1.1 503")
