"""Connections to targets: one exchange at a time, pooled per target when idle."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import TYPE_CHECKING, cast

import httptools

from immute.proxy.http1 import (
    HOP_BY_HOP,
    LAST_CHUNK,
    RESPONSE_WATCHED,
    Special,
    chunk,
    record,
)

# Status lines are regenerated rather than parsed: one callback less per
# response, and HTTP/1.1 clients must ignore reason phrases anyway (RFC 9112 4).
STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}

if TYPE_CHECKING:
    from immute.proxy.exchange import Exchange
    from immute.proxy.table import LiveTarget
    from immute.proxy.tunnel import Tunnel


class UpstreamConn:
    """Parses responses with httptools and hands each part to the attached exchange.
    A plain class, not an `asyncio.Protocol`, for mypyc (like `ClientConn`)."""

    def __init__(self, target: LiveTarget) -> None:
        self.target = target
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.tunnel: Tunnel | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._lines: list[bytes] = []
        self._special: Special = {}
        self._done = False
        self._skip_body = False
        self._keep_alive = False
        self._until_close = False

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def attach(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self._lines = []
        self._special = {}
        self._done = False
        self._until_close = False
        self._skip_body = exchange.method == b"HEAD"

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.from_upstream(data)
            return
        exchange = self.exchange
        if exchange is None:
            # Bytes nobody asked for: the connection cannot be trusted any more.
            self.close()
            return
        client = exchange.client
        client.corked = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            exchange.upstream_upgraded(self, data[exc.args[0] :])
            return
        except httptools.HttpParserError:
            self.close()
            exchange.upstream_failed(self)
            return
        finally:
            client.flush()
        if self._done:
            self._done = False
            if self._skip_body:
                self.parser = httptools.HttpResponseParser(self)
            self.exchange = None
            exchange.response_complete(self, keep_alive=self._keep_alive)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost decides

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.tunnel is not None:
            self.tunnel.upstream_lost()
            return
        exchange, self.exchange = self.exchange, None
        if exchange is None:
            return
        if self._until_close and exc is None:
            exchange.response_complete(self, keep_alive=False)
        else:
            exchange.upstream_failed(self)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.client.pause("tunnel")
        elif self.exchange is not None:
            self.exchange.client.pause("upstream")

    def resume_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.client.resume("tunnel")
        elif self.exchange is not None:
            self.exchange.client.resume("upstream")

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower in RESPONSE_WATCHED:
            special = self._special
            if lower in special:
                record(special, lower, value)
            else:
                special[lower] = value
            if lower in HOP_BY_HOP or lower == b"x-request-id":
                return
        self._lines.append(b"%s: %s\r\n" % (name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        special = self._special
        line = STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status
        self.exchange.response_head(status, line, self._lines, special)  # type: ignore[union-attr]
        if status < 200:
            self._lines, self._special = [], {}
            return
        if self._skip_body:
            self._keep_alive = self.parser.should_keep_alive()
            self._done = True
        elif status not in (204, 304):
            framed = special.get(b"content-length") or special.get(b"transfer-encoding")
            self._until_close = framed is None

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        if exchange is not None and not self._skip_body:
            exchange.client.write(chunk(body) if exchange.chunked_response else body)

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is not None and exchange.interim:
            exchange.interim = False
        elif exchange is not None:
            if not self._done:
                self._keep_alive = self.parser.should_keep_alive()
            self._done = True
            if exchange.chunked_response:
                # Inside the cork, so that the end goes out with the last data.
                exchange.chunked_response = False
                exchange.client.write(LAST_CHUNK)
