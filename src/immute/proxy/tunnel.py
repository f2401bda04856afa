"""Upgrade tunnels (WebSocket and others): bytes both ways after a 101.

For WebSocket tunnels the proxy tracks frame boundaries in each direction so
that, at a drain deadline, it can slip a close frame (1001, going away) between
two frames instead of into the middle of one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from immute.proxy.downstream import ClientConn
    from immute.proxy.table import LiveTarget
    from immute.proxy.upstream import UpstreamConn

GOING_AWAY = 1001


class FrameBoundary:
    """Follows WebSocket frame headers in a byte stream; knows when it sits between frames."""

    __slots__ = ("head", "remaining")

    def __init__(self) -> None:
        self.head = bytearray()
        self.remaining = 0

    @property
    def between_frames(self) -> bool:
        return not self.remaining and not self.head

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            if self.remaining:
                step = min(self.remaining, n - i)
                self.remaining -= step
                i += step
                continue
            self.head.append(data[i])
            i += 1
            size = _header_size(self.head)
            if size and len(self.head) == size:
                self.remaining = _payload_length(self.head)
                self.head.clear()


def _header_size(head: bytearray) -> int:
    if len(head) < 2:
        return 0
    short = head[1] & 0x7F
    extra = 2 if short == 126 else 8 if short == 127 else 0
    return 2 + extra + (4 if head[1] & 0x80 else 0)


def _payload_length(head: bytearray) -> int:
    short = head[1] & 0x7F
    if short == 126:
        return int.from_bytes(head[2:4], "big")
    if short == 127:
        return int.from_bytes(head[2:10], "big")
    return short


def close_frame(code: int, *, masked: bool) -> bytes:
    """A close frame; frames a client sends must be masked (RFC 6455 5.3)."""
    payload = code.to_bytes(2, "big")
    if not masked:
        return bytes([0x88, len(payload)]) + payload
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x88, 0x80 | len(payload)]) + mask + body


class Tunnel:
    def __init__(
        self,
        client: ClientConn,
        upstream: UpstreamConn,
        *,
        websocket: bool,
        target: LiveTarget | None,
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.target = target
        self.to_client = FrameBoundary() if websocket else None
        self.to_upstream = FrameBoundary() if websocket else None
        self.closing = False
        self._pending_close_client = False
        self._pending_close_upstream = False
        upstream.tunnel = self

    def from_client(self, data: bytes) -> None:
        if self._pending_close_upstream:
            return
        if self.to_upstream is not None:
            self.to_upstream.feed(data)
        self.upstream.write(data)

    def from_upstream(self, data: bytes) -> None:
        if self._pending_close_client:
            return
        if self.to_client is not None:
            self.to_client.feed(data)
        self.client.write(data)

    def cut(self) -> None:
        """Drain deadline: WebSocket peers get close 1001, other tunnels just close."""
        if self.closing:
            return
        self.closing = True
        if self.to_client is not None and self.to_client.between_frames:
            self.client.write(close_frame(GOING_AWAY, masked=False))
        if self.to_upstream is not None and self.to_upstream.between_frames:
            self.upstream.write(close_frame(GOING_AWAY, masked=True))
        self._pending_close_client = self._pending_close_upstream = True
        self.close()

    def close(self) -> None:
        self.upstream.close()
        self.client.close()
        self._ended()

    def upstream_lost(self) -> None:
        self.client.close()
        self._ended()

    def client_lost(self) -> None:
        self.upstream.close()
        self._ended()

    def _ended(self) -> None:
        if self.target is not None:
            target, self.target = self.target, None
            target.end(self)
