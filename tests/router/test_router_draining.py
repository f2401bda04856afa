"""Draining: in-flight work finishes until the deadline, then is cut; WebSockets get 1001."""

from __future__ import annotations

import asyncio

import pytest
from router_helpers import KeepAliveClient, Procs
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.anyio


async def test_drain_returns_after_the_slow_request_finished(procs: Procs) -> None:
    slow, other = procs.backend("slow"), procs.backend("other")
    router = procs.router()
    await router.api.set_targets("web", [slow.target()])
    client = KeepAliveClient("127.0.0.1", router.port)
    in_flight = asyncio.ensure_future(client.request("GET", "/slow?s=1"))
    await asyncio.sleep(0.3)
    await router.api.set_targets("web", [slow.target(), other.target()])
    result = await router.api.drain("web", slow.address, deadline=30)
    assert in_flight.done(), "drain returned while a request was still in flight"
    assert in_flight.result() == (200, b"slow")
    assert result.cut == 0
    fresh = KeepAliveClient("127.0.0.1", router.port)
    assert await fresh.request("GET", "/") == (200, b"other")
    state = await router.api.status()
    addresses = [t["address"] for t in state["services"]["web"]["targets"]]  # type: ignore[index]
    assert addresses == [other.address]
    await client.close()
    await fresh.close()


async def test_drain_cuts_in_flight_work_at_the_deadline(procs: Procs) -> None:
    slow = procs.backend("slow")
    router = procs.router()
    await router.api.set_targets("web", [slow.target()])
    client = KeepAliveClient("127.0.0.1", router.port)
    in_flight = asyncio.ensure_future(client.request("GET", "/slow?s=60"))
    await asyncio.sleep(0.3)
    result = await router.api.drain("web", slow.address, deadline=0.5)
    assert result.cut == 1
    status, _ = await in_flight
    assert status == 502
    await client.close()


async def test_websocket_survives_a_swap_and_gets_1001_at_the_drain_deadline(
    procs: Procs,
) -> None:
    ws_a, ws_b = procs.backend("a", ws=True), procs.backend("b", ws=True)
    router = procs.router()
    await router.api.set_targets("web", [ws_a.target()])
    async with connect(f"ws://127.0.0.1:{router.port}/ws") as ws:
        await ws.send("before")
        assert await ws.recv() == "before"
        await router.api.set_targets("web", [ws_b.target()])
        await ws.send("after swap")
        assert await ws.recv() == "after swap"
        state = await router.api.status()
        targets = state["services"]["web"]["targets"]  # type: ignore[index]
        assert {t["address"]: t["state"] for t in targets} == {
            ws_b.address: "ready",
            ws_a.address: "draining",
        }
        result = await router.api.drain("web", ws_a.address, deadline=0.3)
        assert result.cut == 1
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    async with connect(f"ws://127.0.0.1:{router.port}/ws") as ws:
        await ws.send("new")
        assert await ws.recv() == "new"
