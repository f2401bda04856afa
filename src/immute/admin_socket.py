"""JSON over HTTP/1.1 on a unix socket: how the router's admin API and the
agent's API are called (one request per connection).

Shared by the client, the builtin router adapter and the agent, which may not
import each other; it depends on nothing but the error tree.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import cast

from immute.errors import ImmuteError, RouteError, RouterError

JSONObject = dict[str, object]


class SocketUnanswered(ImmuteError):
    """Nothing listens on the socket (the peer is not running)."""


async def exchange(
    socket_path: Path, method: str, path: str, body: object = None, *, peer: str
) -> tuple[int, JSONObject]:
    """One request on its own connection; returns the status and the JSON object.

    Raises SocketUnanswered when nothing listens, ImmuteError for a garbled answer.
    """
    payload = json.dumps(body).encode() if body is not None else b""
    try:
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise SocketUnanswered(f"no {peer} answers on {socket_path}") from exc
    except PermissionError as exc:
        raise ImmuteError(f"{socket_path}: permission denied") from exc
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nhost: {peer}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
            + payload
        )
        raw = await reader.read()
    finally:
        writer.close()
    return _parse(raw, f"{method} {path}", peer=peer)


async def call(socket_path: Path, method: str, path: str, body: object = None) -> JSONObject:
    """A router admin call; a 4xx/5xx answer raises RouteError with its message."""
    try:
        status, value = await exchange(socket_path, method, path, body, peer="router")
    except SocketUnanswered as exc:
        raise RouterError(str(exc)) from exc
    if status >= 400:
        raise RouteError(f"router: {value.get('error', f'HTTP {status}')}")
    return value


def _parse(raw: bytes, what: str, *, peer: str) -> tuple[int, JSONObject]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise RouterError(f"{what}: the {peer} sent no valid response")
    try:
        value = json.loads(body) if body else {}
    except json.JSONDecodeError as exc:
        raise RouterError(f"{what}: the {peer} sent invalid JSON") from exc
    if not isinstance(value, dict):
        raise RouterError(f"{what}: expected a JSON object")
    return int(status_line[1]), cast(JSONObject, value)
