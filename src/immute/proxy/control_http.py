"""A tiny HTTP/1.1 server for control traffic (admin API, metrics): one request
per connection. Coroutines are fine here; this is never the request path."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

log = logging.getLogger(__name__)

_MAX_HEAD = 64 * 1024
_MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True)
class ControlRequest:
    method: str
    path: str
    body: bytes

    def json(self) -> object:
        return json.loads(self.body) if self.body else {}


@dataclass(frozen=True)
class ControlResponse:
    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def of(cls, status: int, value: object) -> ControlResponse:
        return cls(status, json.dumps(value, sort_keys=True).encode() + b"\n")


Handler = Callable[[ControlRequest], Awaitable[ControlResponse]]


async def _read_request(reader: asyncio.StreamReader) -> ControlRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    if length > _MAX_BODY:
        return None
    body = await reader.readexactly(length) if length else b""
    return ControlRequest(parts[0].upper(), parts[1], body)


async def _answer(handler: Handler, request: ControlRequest) -> ControlResponse:
    """The handler's response; a bug in it is logged and still answered (500), so
    the caller gets an error to show instead of a closed connection."""
    try:
        return await handler(request)
    except Exception as exc:
        log.exception("%s %s failed", request.method, request.path)
        error = f"internal error ({type(exc).__name__}); the server's log has the details"
        return ControlResponse.of(500, {"error": error})


def connection_handler(
    handler: Handler,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            if request is None:
                response = ControlResponse.of(400, {"error": "malformed request"})
            else:
                response = await _answer(handler, request)
            phrase = HTTPStatus(response.status).phrase
            writer.write(
                f"HTTP/1.1 {response.status} {phrase}\r\n"
                f"content-type: {response.content_type}\r\n"
                f"content-length: {len(response.body)}\r\nconnection: close\r\n\r\n".encode()
                + response.body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return serve


async def start_control_server(handler: Handler, *, sock: socket.socket) -> asyncio.Server:
    """Serve `handler` on an already bound, listening socket (unix or TCP)."""
    serve = connection_handler(handler)
    if sock.family == socket.AF_UNIX:
        return await asyncio.start_unix_server(serve, sock=sock, limit=_MAX_HEAD)
    return await asyncio.start_server(serve, sock=sock, limit=_MAX_HEAD)
