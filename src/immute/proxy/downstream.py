"""Client connections: parse requests with httptools, one exchange answered at a time.

Pipelined requests queue behind the current one (reading pauses meanwhile), so
responses go back in order. Malformed input gets 400, oversized heads 431, a
head that arrives too slowly 408; each closes only the offending connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools

from immute.proxy.exchange import Exchange
from immute.proxy.http1 import DROPPED, Special, record, simple_response

if TYPE_CHECKING:
    from immute.proxy.router import Router
    from immute.proxy.tunnel import Tunnel


class HeadTooLarge(Exception):
    """The request head passed the size or count limit."""


class ClientConn:
    """asyncio's protocol for one client connection. Not a subclass of
    `asyncio.Protocol`, so that mypyc compiles it as a native class (see
    setup.py): event loops only call its methods."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.config = router.config
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.current: Exchange | None = None
        self.parsing: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.tunnel: Tunnel | None = None
        self.writing_paused = False
        self.closed = False
        self._pauses: set[str] = set()
        self.peer_bytes = b""
        # The request head being parsed; an exchange takes these over.
        self.head_url = b""
        self.head_lines: list[bytes] = []
        self.head_special: Special = {}
        self._head_bytes = 0
        self._head_count = 0
        self.out: list[bytes] = []
        self.corked = False
        self.head_deadline = 0.0
        self.linger_until = 0.0
        self.idle_since = router.clock
        self._upgrade_tail = b""

    # asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else "unix"
        self.peer_bytes = self.peer.encode()
        self.router.client_opened(self)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.from_client(data)
            return
        if self.closed:
            return
        if self.parsing is None and not self.head_deadline:
            # A new request head starts in this data: it has until then to arrive.
            self.head_deadline = self.router.clock + self.config.header_timeout
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgrade_tail = data[exc.args[0] :]
            self.pause("upgrade")
        except httptools.HttpParserCallbackError as exc:
            too_large = isinstance(exc.__context__, HeadTooLarge)
            self.reject(431 if too_large else 400)
        except httptools.HttpParserError:
            self.reject(400)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.router.client_closed(self)
        if self.tunnel is not None:
            self.tunnel.client_lost()
        for exchange in (self.current, self.parsing, *self.queue):
            if exchange is not None:
                exchange.abandon()
        self.queue.clear()

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.tunnel is not None:
            self.tunnel.upstream.pause_reading()
            return
        exchange = self.current
        if exchange is not None and exchange.conn is not None and exchange.conn.transport:
            exchange.conn.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.tunnel is not None:
            self.tunnel.upstream.resume_reading()
            return
        exchange = self.current
        if exchange is not None and exchange.conn is not None and exchange.conn.transport:
            exchange.conn.transport.resume_reading()

    # httptools callbacks ----------------------------------------------------
    def on_url(self, url: bytes) -> None:
        self.head_url += url
        self._head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower not in self.router.watched:
            self.head_lines.append(b"%s: %s\r\n" % (name, value))
        else:
            special = self.head_special
            if lower in special:
                record(special, lower, value)
            else:
                special[lower] = value
            if lower not in DROPPED:
                self.head_lines.append(b"%s: %s\r\n" % (name, value))
        self._head_count += 1
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self.config.max_header_bytes or (
            self._head_count > self.config.max_headers
        ):
            raise HeadTooLarge

    def on_headers_complete(self) -> None:
        self.head_deadline = 0.0
        if self._head_bytes > self.config.max_header_bytes:
            raise HeadTooLarge
        method = self.parser.get_method()
        exchange = Exchange(self, method)
        self.head_url, self.head_lines, self.head_special = b"", [], {}
        self._head_bytes = self._head_count = 0
        self.parsing = exchange
        if method == b"CONNECT":
            raise ValueError("CONNECT is not proxied")
        if self.current is None:
            self.current = exchange
            exchange.start()
        else:
            self.queue.append(exchange)
            self.pause("pipeline")

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.request_body(body)

    def on_message_complete(self) -> None:
        exchange = self.parsing
        if exchange is not None:
            if exchange.chunked_request:
                exchange.request_complete()
            else:
                exchange.body_done = True
            self.parsing = None

    # Called by exchanges and tunnels -----------------------------------------
    def write(self, data: bytes) -> None:
        if self.corked:
            self.out.append(data)
        elif self.transport is not None and not self.closed:
            self.transport.write(data)

    def flush(self) -> None:
        """End a cork: what one upstream read produced goes out as one client write
        (writes are gathered while `corked` is set)."""
        self.corked = False
        out = self.out
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            if self.transport is not None and not self.closed:
                self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def pause(self, reason: str) -> None:
        if not self._pauses and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self._pauses.add(reason)

    def resume(self, reason: str) -> None:
        if reason not in self._pauses:
            return
        self._pauses.discard(reason)
        if not self._pauses and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def reject(self, status: int) -> None:
        """Answer a request the proxy will not forward, then close this connection only."""
        self.router.stats.rejected += 1
        if self.current is None or not self.current.responded:
            self.write(simple_response(status))
        if self.current is not None:
            self.current.abandon()
        self._linger()

    def _linger(self) -> None:
        """Close after an error answer without a reset, which could destroy the answer
        before the client reads it: send FIN, ignore input, close fully later."""
        self.closed = True
        self.head_deadline = 0.0
        transport = self.transport
        if transport is None or not transport.can_write_eof():
            self.close()
            return
        transport.write_eof()
        if self._pauses:
            self._pauses.clear()
            transport.resume_reading()
        self.linger_until = self.router.clock + 5.0

    def exchange_done(self, exchange: Exchange, *, keep_alive: bool) -> None:
        if exchange is not self.current:
            return
        self.current = None
        self.idle_since = self.router.clock
        if not keep_alive or self.closed:
            if exchange.body_done or self.closed:
                self.closed = True
                self.close()
            else:
                self._linger()  # the client is still sending a body we will not read
            return
        if self.queue:
            self.current = self.queue.popleft()
            if not self.queue:
                self.resume("pipeline")
            self.current.start()

    def start_tunnel(self, tunnel: Tunnel, *, upstream_tail: bytes) -> None:
        self.current = None
        self.tunnel = tunnel
        if upstream_tail:
            tunnel.from_upstream(upstream_tail)
        if self._upgrade_tail:
            tunnel.from_client(self._upgrade_tail)
            self._upgrade_tail = b""
        self.resume("upgrade")

    def expire(self, now: float) -> None:
        """Sweeper: a slow request head gets 408; an idle keep-alive connection closes."""
        if self.linger_until:
            if now > self.linger_until:
                self.close()
        elif self.head_deadline and now > self.head_deadline:
            self.router.stats.rejected += 1
            self.write(simple_response(408))
            if self.current is not None:
                self.current.abandon()
            self._linger()
        elif self.current is None and self.tunnel is None and not self.queue:
            idle_limit = self.router.idle_limit()
            if now - self.idle_since > idle_limit:
                self.closed = True
                self.close()
