"""One request and its response: choose a target, send, retry safely, stream back.

Callbacks only (no coroutine per request): the client connection feeds the
request in, the upstream connection feeds the response in, and the exchange
decides where bytes go. The rules for retries live in `_may_retry`.
"""

from __future__ import annotations

import asyncio
import time
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING

from immute.proxy.http1 import (
    IDEMPOTENT,
    LAST_CHUNK,
    SIMPLE_CONNECTION,
    Special,
    chunk,
    forwarded,
    simple_response,
)
from immute.proxy.tunnel import Tunnel
from immute.proxy.upstream import UpstreamConn

if TYPE_CHECKING:
    from immute.proxy.downstream import ClientConn
    from immute.proxy.router import Router
    from immute.proxy.table import LiveService, LiveTarget


def cookie_value(cookies: bytes | None, name: str) -> str | None:
    if not cookies:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookies.decode("latin-1"))
    except CookieError:
        return None
    return jar[name].value if name in jar else None


class Exchange:
    """Per-request state (this is the hot path). Slots, every one set at creation:
    reads of attributes left to class-level defaults take CPython's slow path."""

    __slots__ = (
        "attempts",
        "body_done",
        "body_written",
        "chunked_request",
        "chunked_response",
        "client",
        "close_after",
        "conn",
        "done",
        "head",
        "held_until",
        "interim",
        "keep_alive",
        "lines",
        "method",
        "pending",
        "pending_size",
        "refused",
        "release",
        "replay",
        "replay_ok",
        "replay_size",
        "request_id",
        "responded",
        "response_bytes",
        "router",
        "service",
        "set_cookie",
        "special",
        "started",
        "status",
        "target",
        "tried",
        "upgrade",
        "url",
        "version",
    )

    def __init__(self, client: ClientConn, method: bytes) -> None:
        # The head the client connection collected: taken over, not copied.
        self.client = client
        self.router: Router = client.router
        self.method = method
        self.lines, self.special, self.url = client.head_lines, client.head_special, client.head_url
        parser = client.parser
        self.keep_alive = keep_alive = parser.should_keep_alive()
        if keep_alive and b"connection" not in self.special:
            # Only HTTP/1.1 keeps a connection without being asked to (llhttp
            # accepts no other version that does): spares building the string.
            self.version = "1.1"
        else:
            self.version = parser.get_http_version()
        self.upgrade = parser.should_upgrade() and method != b"CONNECT"
        encoding = self.special.get(b"transfer-encoding")
        self.chunked_request = encoding is not None and encoding.lower().endswith(b"chunked")
        self.started = time.monotonic()
        self.service: LiveService | None = None
        self.target: LiveTarget | None = None
        self.conn: UpstreamConn | None = None
        self.request_id = self.head = self.set_cookie = b""
        self.pending: list[bytes] | None = None
        self.replay: list[bytes] | None = None
        self.pending_size = self.replay_size = self.attempts = self.status = 0
        self.replay_ok = True
        self.body_written = self.body_done = self.interim = self.responded = False
        self.response_bytes = self.chunked_response = self.close_after = self.done = False
        self.held_until = 0.0
        self.tried: tuple[LiveTarget, ...] = ()
        self.refused: tuple[LiveTarget, ...] = ()
        self.release = ""

    @property
    def host(self) -> str:
        host = self.special.get(b"host")
        return host.decode("latin-1") if host else ""

    # Request side -------------------------------------------------------------
    def start(self) -> None:
        special = self.special
        self.request_id = request_id = self.router.request_id(special.get(b"x-request-id"))
        chain = special.get(b"x-forwarded-for")
        peer = self.client.peer_bytes
        lines = self.lines
        if special.get(b"connection") not in SIMPLE_CONNECTION:
            lines = forwarded(lines, special)
        extra = b""
        if self.chunked_request:
            extra = b"transfer-encoding: chunked\r\n"
        if self.upgrade:
            extra += b"connection: upgrade\r\nupgrade: %s\r\n" % special.get(b"upgrade")
        self.head = (
            b"%s %s HTTP/1.1\r\n%sx-forwarded-for: %s\r\nx-forwarded-proto: http\r\n"
            b"x-forwarded-host: %s\r\nx-request-id: %s\r\n%s\r\n"
            % (
                self.method,
                self.url,
                b"".join(lines),
                chain + b", " + peer if chain else peer,
                special.get(b"host") or b"",
                request_id,
                extra,
            )
        )
        self._route()

    def request_body(self, data: bytes) -> None:
        if not self.done:
            self._queue_body(chunk(data) if self.chunked_request else data)

    def request_complete(self) -> None:
        if self.chunked_request and not self.done:
            self._queue_body(LAST_CHUNK)
        self.body_done = True

    def _queue_body(self, framed: bytes) -> None:
        if self.replay_ok:
            if self.replay is None:
                self.replay = []
            self.replay.append(framed)
            self.replay_size += len(framed)
            if self.replay_size > self.router.config.retry_body_limit:
                self.replay, self.replay_ok = None, False
        if self.conn is not None:
            self.conn.write(framed)
            self.body_written = True
            return
        if self.pending is None:
            self.pending = []
        self.pending.append(framed)
        self.pending_size += len(framed)
        if self.pending_size > self.router.config.body_buffer_limit:
            self.client.pause("body")

    # Routing ----------------------------------------------------------------
    def _route(self) -> None:
        table = self.router.table
        service = self.service or table.lone or table.resolve(self.host)
        now = self.router.clock
        target = None
        if service is not None:
            self.service = service
            only = service.only
            if only is not None and not self.tried:
                self._attach(only)
                return
            key = self._sticky_key(service) if service.sticky is not None else None
            target = service.pick(now, sticky_key=key, exclude=self.tried)
            if target is None and self.tried:
                # A broken connection says little about its target: go back to one
                # that did not refuse us rather than hold the request.
                target = service.pick(now, sticky_key=key, exclude=self.refused)
        if target is None:
            self._hold(now)
        else:
            self._attach(target)

    def _sticky_key(self, service: LiveService) -> str | None:
        sticky = service.sticky
        if sticky is None:
            return None
        if sticky.kind == "header":
            value = self.special.get(sticky.name.lower().encode())
            return value.decode("latin-1") if value else None
        return cookie_value(self.special.get(b"cookie"), sticky.name)

    def _maybe_set_cookie(self, service: LiveService) -> None:
        sticky = service.sticky
        if sticky is None or sticky.kind != "cookie":
            return
        if cookie_value(self.special.get(b"cookie"), sticky.name) != self.release:
            name, value = sticky.name.encode(), self.release.encode()
            self.set_cookie = b"set-cookie: %s=%s; Path=/; HttpOnly\r\n" % (name, value)

    def _hold(self, now: float) -> None:
        if not self.held_until:
            self.held_until = now + self.router.config.hold_timeout
            if self.service is not None:
                self.service.held += 1
        if now >= self.held_until or (self.service is None and self.router.table.services):
            self._give_up_hold()
            return
        self.router.table.hold(self)

    def wake(self) -> None:
        if not self.done:
            self.tried = self.refused = ()
            self.service = None
            self._route()

    def hold_expired(self, now: float) -> None:
        """Sweeper: answer a request held past its limit."""
        if self.held_until and now >= self.held_until and self.target is None and not self.done:
            self.router.table.release(self)
            self._give_up_hold()

    def _give_up_hold(self) -> None:
        if self.service is None and self.router.table.services:
            self.fail(404, f"no service for host {self.host!r}")
            return
        if self.service is not None:
            self.service.hold_timeouts += 1
        retry_after = b"retry-after: %d\r\n" % self.router.config.retry_after
        self.fail(503, "no ready target", extra=[retry_after])

    def _attach(self, target: LiveTarget) -> None:
        self.target = target
        self.release = target.release
        self.attempts += 1
        self.tried = (*self.tried, target)
        target.inflight.add(self)
        target.requests += 1
        if self.service is not None and self.service.sticky is not None:
            self._maybe_set_cookie(self.service)
        idle = target.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                self._use(conn, reused=True)
                return
        task = asyncio.ensure_future(self.router.connect(target))
        task.add_done_callback(lambda fut: self._connected(target, fut))

    def _connected(self, target: LiveTarget, fut: asyncio.Future[UpstreamConn]) -> None:
        error = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if error is None:
            conn = fut.result()
            if self.done or self.target is not target:
                self.router.pool_return(conn)
            else:
                self._use(conn, reused=False)
            return
        target.failures += 1
        target.ejected_until = time.monotonic() + self.router.config.eject_seconds
        self.refused = (*self.refused, target)
        if not self.done and self.target is target:
            self._retry_or_fail(connect_failed=True)

    def _use(self, conn: UpstreamConn, *, reused: bool) -> None:
        self.conn = conn
        conn.reused = reused
        conn.attach(self)
        head = self.head
        if not self.special.get(b"host") and self.target is not None:
            head = head[:-2] + b"host: %s\r\n\r\n" % self.target.address.encode()
        body = self.replay if self.body_written and self.replay_ok else self.pending
        if body:
            conn.write(head + b"".join(body))
            self.body_written = True
        else:
            conn.write(head)
        if self.pending:
            self.pending, self.pending_size = None, 0
            self.client.resume("body")
        if self.client.writing_paused and conn.transport is not None:
            conn.transport.pause_reading()

    # Failures and retries -------------------------------------------------
    def upstream_failed(self, conn: UpstreamConn) -> None:
        if self.done or conn is not self.conn:
            return
        self.conn = None
        if self.target is not None:
            self.target.failures += 1
        if self.response_bytes:
            self.cut()
        else:
            self._retry_or_fail(connect_failed=False, reused=conn.reused)

    def _may_retry(self, *, connect_failed: bool, reused: bool) -> bool:
        """Nothing once a response began; a refused connection always (nothing was
        sent); a broken one for idempotent methods, or for any method on a reused
        connection when the whole body is still at hand."""
        if self.response_bytes or self.attempts >= self.router.config.max_attempts:
            return False
        replayable = self.replay_ok or not self.body_written
        if connect_failed or not replayable:
            return replayable
        return self.method in IDEMPOTENT or (reused and self.body_done)

    def _retry_or_fail(self, *, connect_failed: bool, reused: bool = False) -> None:
        self._leave_target()
        if self._may_retry(connect_failed=connect_failed, reused=reused):
            self.router.stats.retries += 1
            if self.service is not None:
                self.service.retries += 1
            self._route()
        else:
            self.fail(502, "upstream failed")

    def _leave_target(self) -> None:
        if self.target is not None:
            target, self.target = self.target, None
            target.end(self)

    def fail(self, status: int, message: str, *, extra: list[bytes] | None = None) -> None:
        """Answer with the proxy's own response (when nothing was sent to the client yet)."""
        if self.done:
            return
        if self.responded:
            self.cut()
            return
        self.status = status
        self.client.write(simple_response(status, message, extra=extra))
        self._finish(keep_alive=False)

    def cut(self) -> None:
        """End now: at a drain deadline, or when the upstream broke mid-response."""
        if self.done:
            return
        self.status = self.status or 502
        if not self.responded:
            self.client.write(simple_response(502, "upstream cut"))
        self._finish(keep_alive=False)

    # Response side ------------------------------------------------------------
    def response_head(
        self, status: int, status_line: bytes, headers: list[bytes], special: Special
    ) -> None:
        self.response_bytes = True
        if 100 <= status < 200 and status != 101:
            self.interim = True
            if status == 100 and self.version == "1.1":
                self.client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        self.status = status
        self.responded = True
        if special.get(b"connection") not in SIMPLE_CONNECTION:
            headers = forwarded(headers, special)
        tail = self.set_cookie
        if status == 101 and self.upgrade:
            tail += b"connection: upgrade\r\nupgrade: %s\r\n" % special.get(b"upgrade")
        else:
            tail += self._response_framing(status, special)
        self.client.write(
            b"%s%sx-request-id: %s\r\n%s\r\n"
            % (status_line, b"".join(headers), self.request_id, tail)
        )

    def _response_framing(self, status: int, special: Special) -> bytes:
        """Headers that say how the response ends and whether the connection stays."""
        framing = b""
        no_body = self.method == b"HEAD" or status in (204, 304)
        if not no_body and b"content-length" not in special:
            if self.version == "1.1":
                self.chunked_response = True
                framing = b"transfer-encoding: chunked\r\n"
            else:
                self.close_after = True
        if self.upgrade or not self.body_done or not self.keep_alive or self.router.closing:
            self.close_after = True
        if self.close_after:
            return framing + b"connection: close\r\n"
        if self.version == "1.0":
            return framing + b"connection: keep-alive\r\n"
        return framing

    def response_complete(self, conn: UpstreamConn, *, keep_alive: bool) -> None:
        if self.done:
            conn.close()
            return
        if self.chunked_response:
            self.client.write(LAST_CHUNK)
        self.conn = None
        if keep_alive and self.body_done:
            self.router.pool_return(conn)
        else:
            conn.close()
        self._finish(keep_alive=not self.close_after)

    def upstream_upgraded(self, conn: UpstreamConn, tail: bytes) -> None:
        if self.status != 101 or not self.upgrade:
            conn.close()
            self.upstream_failed(conn)
            return
        self.conn = None
        websocket = (self.special.get(b"upgrade") or b"").lower() == b"websocket"
        tunnel = Tunnel(self.client, conn, websocket=websocket, target=self.target)
        if self.target is not None:
            self.target.end(self)
            self.target.begin(tunnel)
            self.target = None
        self.done = True
        self._record()
        self.client.start_tunnel(tunnel, upstream_tail=tail)

    def _finish(self, *, keep_alive: bool) -> None:
        self.done = True
        if self.held_until:
            self.router.table.release(self)
        target = self.target
        if target is not None:
            self.target = None
            target.end(self)
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self._record()
        self.client.exchange_done(self, keep_alive=keep_alive and not self.close_after)

    def _record(self) -> None:
        router = self.router
        router.stats.requests += 1
        seconds = time.monotonic() - self.started
        for observer in router.observers:
            observer(self, self.release, seconds)

    def abandon(self) -> None:
        """The client went away: drop upstream work without answering."""
        if self.done:
            return
        self.done = True
        self.status = self.status or 499
        self.router.table.release(self)
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self._leave_target()
        self._record()
