"""The control server (agent API, router admin) over a real unix socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from immute.admin_socket import exchange
from immute.proxy.control_http import ControlRequest, ControlResponse, start_control_server
from immute.proxy.sockets import unix_listener


async def _serve_once(socket_path: Path, path: str) -> tuple[int, dict[str, object]]:
    async def handler(request: ControlRequest) -> ControlResponse:
        if request.path == "/boom":
            raise KeyError("a bug in the handler")
        return ControlResponse.of(200, {"path": request.path})

    server = await start_control_server(handler, sock=unix_listener(socket_path))
    try:
        return await exchange(socket_path, "GET", path, peer="agent")
    finally:
        server.close()
        await server.wait_closed()


def test_a_failing_handler_still_answers_500_and_the_server_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    socket_path = tmp_path / "control.sock"
    status, body = asyncio.run(_serve_once(socket_path, "/boom"))
    assert status == 500
    assert body["error"] == "internal error (KeyError); the server's log has the details"
    assert "a bug in the handler" not in str(body)
    assert "GET /boom failed" in caplog.text
    socket_path.unlink(missing_ok=True)
    assert asyncio.run(_serve_once(socket_path, "/fine")) == (200, {"path": "/fine"})
