"""Traffic moves between targets under load with zero failed requests."""

from __future__ import annotations

import asyncio
import signal

import pytest
from router_helpers import KeepAliveClient, Load, Procs, during_load

pytestmark = pytest.mark.anyio


async def test_swap_storm_under_keepalive_load_fails_nothing(procs: Procs) -> None:
    blue, green = procs.backend("blue"), procs.backend("green")
    router = procs.router()
    api = router.api
    await api.set_targets("web", [blue.target()])
    swaps = 0

    async def storm(load: Load) -> None:
        nonlocal swaps
        sets = [[blue.target()], [green.target()], [blue.target(2), green.target(1)]]
        for i in range(300):
            await api.set_targets("web", sets[i % len(sets)])
            swaps += 1
            await asyncio.sleep(0.003)

    load = await during_load(router.url, storm, workers=16)
    assert load.failures == []
    assert swaps == 300
    assert load.bodies.get("blue", 0) > 0 and load.bodies.get("green", 0) > 0


async def test_killed_target_fails_no_idempotent_request(procs: Procs) -> None:
    first, second = procs.backend("first"), procs.backend("second")
    router = procs.router()
    await router.api.set_targets("web", [first.target(), second.target()])

    async def kill_first(load: Load) -> None:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        seen = load.ok
        for _ in range(400):
            if load.ok > seen + 500:
                break
            await asyncio.sleep(0.01)

    load = await during_load(router.url, kill_first, workers=16)
    assert load.failures == []
    state = await router.api.status()
    web = state["services"]["web"]  # type: ignore[index]
    failed = {t["address"]: t["failures"] for t in web["targets"]}
    assert failed[first.address] > 0, "the kill happened during the load"
    assert isinstance(state["retries"], int) and state["retries"] >= 1


async def test_put_on_killed_target_is_not_replayed_after_sending(procs: Procs) -> None:
    """A non-idempotent request whose fresh connection broke mid-way is not retried."""
    only = procs.backend("only")
    router = procs.router("--hold-timeout", "0.5")
    await router.api.set_targets("web", [only.target()])
    reader, writer = await asyncio.open_connection("127.0.0.1", router.port)
    writer.write(b"POST /slow?s=30 HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi")
    await writer.drain()
    await asyncio.sleep(0.3)
    only.process.send_signal(signal.SIGKILL)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502")
    writer.close()
    state = await router.api.status()
    assert state["retries"] == 0


async def test_broken_reused_connection_retries_small_bodies_only(procs: Procs) -> None:
    """A pooled connection the backend dropped as the request arrived: a POST whose
    body is still buffered goes again on a fresh connection; a large one gets 502."""
    flaky = procs.backend("flaky", drop_reused=True)
    router = procs.router()
    await router.api.set_targets("web", [flaky.target()])
    client = KeepAliveClient("127.0.0.1", router.port)

    async def retries() -> object:
        return (await router.api.status())["retries"]

    # Every request after the first on a pooled connection finds it dropped.
    assert await client.request("GET", "/") == (200, b"flaky")
    assert await retries() == 0
    assert await client.request("POST", "/", b"small body") == (200, b"flaky")
    assert await retries() == 1
    assert await client.request("GET", "/") == (200, b"flaky")
    assert await retries() == 2
    status, _ = await client.request("POST", "/", b"x" * 200_000)
    assert status == 502
    assert await retries() == 2
    await client.close()
