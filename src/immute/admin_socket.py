"""JSON over HTTP/1.1 on a unix socket: how the router's admin API is called.

Shared by the CLI's client and the builtin router adapter, which may not import
each other; it depends on nothing but the error tree.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import cast

from immute.errors import RouteError, RouterError

JSONObject = dict[str, object]


async def call(socket_path: Path, method: str, path: str, body: object = None) -> JSONObject:
    """One request, one connection; a 4xx/5xx answer raises RouteError with its message."""
    payload = json.dumps(body).encode() if body is not None else b""
    try:
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise RouterError(f"no router answers on {socket_path}") from exc
    except PermissionError as exc:
        raise RouterError(f"{socket_path}: permission denied") from exc
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nhost: router\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
            + payload
        )
        raw = await reader.read()
    finally:
        writer.close()
    return parse_response(raw, f"{method} {path}")


def parse_response(raw: bytes, what: str) -> JSONObject:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise RouterError(f"{what}: the router sent no valid response")
    status = int(status_line[1])
    try:
        value = json.loads(body) if body else {}
    except json.JSONDecodeError as exc:
        raise RouterError(f"{what}: the router sent invalid JSON") from exc
    if status >= 400:
        message = value.get("error", f"HTTP {status}") if isinstance(value, dict) else status
        raise RouteError(f"router: {message}")
    if not isinstance(value, dict):
        raise RouterError(f"{what}: expected a JSON object")
    return cast(JSONObject, value)
