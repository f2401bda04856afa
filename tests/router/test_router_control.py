"""The router as a process: admin socket, metrics, persistence, access log, handover."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from router_helpers import KeepAliveClient, Load, Procs, during_load, free_port, wait_until

from immute.errors import RouteError

pytestmark = pytest.mark.anyio


async def test_admin_socket_is_owner_only_and_rejects_bad_requests(procs: Procs) -> None:
    router = procs.router()
    assert stat.S_IMODE(router.admin.stat().st_mode) == 0o600
    with pytest.raises(RouteError, match=r"web\.targets\[0\]\.weight"):
        await router.api.request(
            "PUT", "/services/web", {"targets": [{"address": "a:1", "weight": -1}]}
        )
    with pytest.raises(RouteError, match="unknown key 'colour'"):
        await router.api.request("PUT", "/services/web", {"colour": "blue"})
    with pytest.raises(RouteError, match="no service 'nope'"):
        await router.api.drain("nope", "127.0.0.1:1", deadline=1)
    state = await router.api.status()
    assert state["services"] == {}


async def test_metrics_and_access_log(procs: Procs) -> None:
    backend = procs.backend("app")
    metrics_port = free_port()
    log = procs.tmp / "access.jsonl"
    router = procs.router("--metrics", f"127.0.0.1:{metrics_port}", "--access-log", str(log))
    await router.api.set_targets("web", [backend.target(release="v7")])
    client = KeepAliveClient("127.0.0.1", router.port)
    for _ in range(5):
        assert (await client.request("GET", "/"))[0] == 200
    await client.close()
    scraper = KeepAliveClient("127.0.0.1", metrics_port)
    status, text = await scraper.request("GET", "/metrics")
    await scraper.close()
    assert status == 200
    assert 'immute_router_requests_total{release="v7",service="web",status="2xx"} 5.0' in (
        text.decode()
    )
    assert 'immute_router_request_duration_seconds_count{release="v7",service="web"} 5.0' in (
        text.decode()
    )
    assert "immute_router_retries_total" in text.decode()
    await wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 5)
    record = json.loads(log.read_text().splitlines()[0])
    assert record["status"] == 200 and record["release"] == "v7" and record["service"] == "web"


async def test_route_table_survives_a_restart(procs: Procs) -> None:
    backend = procs.backend("app")
    router = procs.router()
    await router.api.set_targets("web", [backend.target(3, "v1")], hosts=["web.test"])
    router.process.send_signal(signal.SIGTERM)
    assert router.process.wait(timeout=30) == 0
    again = procs.router(admin=router.admin)
    state = await again.api.status()
    web = state["services"]["web"]  # type: ignore[index]
    assert web["hosts"] == ["web.test"]
    assert [(t["address"], t["weight"], t["release"]) for t in web["targets"]] == [
        (backend.address, 3, "v1")
    ]
    client = KeepAliveClient("127.0.0.1", again.port)
    assert await client.request("GET", "/") == (200, b"app")
    await client.close()


async def test_new_router_process_takes_over_under_load(procs: Procs) -> None:
    blue, green = procs.backend("blue"), procs.backend("green")
    old = procs.router()
    await old.api.set_targets("web", [blue.target(), green.target(2)])
    listen = f"127.0.0.1:{old.port}"

    async def replace(load: Load) -> None:
        new = await asyncio.to_thread(procs.router, admin=old.admin, listen=listen)
        assert await asyncio.to_thread(old.process.wait, 60) == 0
        seen = load.ok
        await wait_until(lambda: load.ok > seen + 200)
        state = await new.api.status()
        web = state["services"]["web"]  # type: ignore[index]
        assert {(t["address"], t["weight"]) for t in web["targets"]} == {
            (blue.address, 1),
            (green.address, 2),
        }
        assert isinstance(state["requests"], int) and state["requests"] > 0

    load = await during_load(old.url, replace, workers=16)
    assert load.failures == []


async def test_new_router_process_with_another_listen_address_moves_there(procs: Procs) -> None:
    """The listen address moves; the metrics listener, not named again, is handed over."""
    backend = procs.backend("app")
    metrics = free_port()
    old = procs.router("--metrics", f"127.0.0.1:{metrics}")
    await old.api.set_targets("web", [backend.target()])
    new = await asyncio.to_thread(procs.router, admin=old.admin)
    assert new.port != old.port
    assert await asyncio.to_thread(old.process.wait, 60) == 0
    client = KeepAliveClient("127.0.0.1", new.port)
    assert await client.request("GET", "/") == (200, b"app")
    await client.close()
    scraped = KeepAliveClient("127.0.0.1", metrics)
    status, body = await scraped.request("GET", "/metrics")
    await scraped.close()
    assert status == 200 and b'immute_router_requests_total{release="app"' in body
    state = await new.api.status()
    assert state["listen"] == f"127.0.0.1:{new.port}"
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", old.port)


def test_cli_set_status_and_drain(procs: Procs, tmp_path: Path) -> None:
    backend = procs.backend("app")
    router = procs.router()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "immute", "router", *args, "--admin", str(router.admin)]
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)

    assert cli("set", f"{backend.address}=5", "--release", "v2").returncode == 0
    shown = cli("status", "--json")
    assert shown.returncode == 0
    target = json.loads(shown.stdout)["services"]["default"]["targets"][0]
    assert (target["address"], target["weight"], target["release"]) == (backend.address, 5, "v2")
    table = cli("status")
    assert table.returncode == 0 and backend.address in table.stdout
    assert f"listening on 127.0.0.1:{router.port}  hold 10.0s" in table.stdout
    bad = cli("set", "127.0.0.1:http")
    assert (
        bad.returncode == 2 and bad.stderr.strip() == "error: '127.0.0.1:http': expected HOST:PORT"
    )
    drained = cli("drain", backend.address, "--deadline", "5", "--json")
    assert drained.returncode == 0
    assert json.loads(drained.stdout)["cut"] == 0
    assert json.loads(cli("status", "--json").stdout)["services"]["default"]["targets"] == []
    gone = subprocess.run(
        [sys.executable, "-m", "immute", "router", "status", "--admin", str(tmp_path / "x.sock")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert gone.returncode == 1 and "no router answers" in gone.stderr


async def test_old_process_finishes_a_slow_request_after_handover(procs: Procs) -> None:
    app = procs.backend("app")
    old = procs.router()
    await old.api.set_targets("web", [app.target()])
    client = KeepAliveClient("127.0.0.1", old.port)
    # Long enough to still be in flight once the new process has started.
    slow = asyncio.ensure_future(client.request("GET", "/slow?s=5"))
    await asyncio.sleep(0.3)
    listen = f"127.0.0.1:{old.port}"
    new = await asyncio.to_thread(procs.router, admin=old.admin, listen=listen)
    assert not slow.done()
    assert old.process.poll() is None, "the old process waits for its in-flight request"
    assert await slow == (200, b"app")
    assert await asyncio.to_thread(old.process.wait, 60) == 0
    fresh = KeepAliveClient("127.0.0.1", new.port)
    assert await fresh.request("GET", "/") == (200, b"app")
    await fresh.close()
    await client.close()


def test_cli_serve_runs_the_router_until_sigterm(tmp_path: Path) -> None:
    admin = tmp_path / "admin.sock"
    port = free_port()
    argv = [sys.executable, "-m", "immute", "router", "serve", "--listen", f"127.0.0.1:{port}"]
    process = subprocess.Popen([*argv, "--admin", str(admin)], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert (
            process.stdout.readline().decode().strip()
            == f"immute router listening on 127.0.0.1:{port}"
        )
        shown = subprocess.run(
            [sys.executable, "-m", "immute", "router", "status", "--admin", str(admin), "--json"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert json.loads(shown.stdout)["services"] == {}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
