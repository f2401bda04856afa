"""Connections to targets: one exchange at a time, pooled per target when idle."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import httptools

from immute.proxy.http1 import Headers

if TYPE_CHECKING:
    from immute.proxy.exchange import Exchange
    from immute.proxy.table import LiveTarget
    from immute.proxy.tunnel import Tunnel


class UpstreamConn(asyncio.Protocol):
    """Parses responses with httptools and hands each part to the attached exchange."""

    def __init__(self, target: LiveTarget) -> None:
        self.target = target
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.tunnel: Tunnel | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._headers: Headers = []
        self._reason = b""
        self._done = False
        self._skip_body = False
        self._keep_alive = False

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def attach(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self._headers = []
        self._done = False
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
            # A response nobody asked for: the connection cannot be trusted.
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            exchange.upstream_upgraded(self, data[exc.args[0] :])
            return
        except httptools.HttpParserError:
            self.close()
            exchange.upstream_failed(self)
            return
        if self._done:
            self._done = False
            if self._skip_body:
                self.parser = httptools.HttpResponseParser(self)
            self.exchange = None
            exchange.response_complete(self, keep_alive=self._keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.tunnel is not None:
            self.tunnel.upstream_lost()
        elif self.exchange is not None:
            exchange, self.exchange = self.exchange, None
            exchange.upstream_failed(self)

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.pause("upstream")

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.resume("upstream")

    # httptools callbacks
    def on_status(self, reason: bytes) -> None:
        self._reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        headers, self._headers = self._headers, []
        assert self.exchange is not None
        self.exchange.response_head(status, self._reason, headers)
        if self._skip_body and status >= 200:
            self._keep_alive = self.parser.should_keep_alive()
            self._done = True

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None and not self._skip_body:
            self.exchange.response_body(body)

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is not None and not exchange.interim:
            if not self._done:
                self._keep_alive = self.parser.should_keep_alive()
            self._done = True
        elif exchange is not None:
            exchange.interim = False
