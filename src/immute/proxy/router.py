"""The proxy's shared state: route table, upstream pools, counters, the sweeper."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from immute.core.routes import RouteTable
from immute.proxy.config import ProxyConfig
from immute.proxy.http1 import REQUEST_WATCHED
from immute.proxy.table import LiveTable, LiveTarget
from immute.proxy.upstream import UpstreamConn

if TYPE_CHECKING:
    from immute.proxy.downstream import ClientConn
    from immute.proxy.exchange import Exchange

_MAX_REQUEST_ID = 128


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    rejected: int = 0
    held: int = 0


Observer = Callable[["Exchange", str, float], None]


class Router:
    def __init__(self, config: ProxyConfig, *, on_change: Callable[[RouteTable], None]) -> None:
        self.config = config
        # Coarse time for deadlines counted in seconds; refreshed by the sweeper.
        self.clock = time.monotonic()
        self.table = LiveTable(self._table_changed)
        self._on_change = on_change
        self.watched = REQUEST_WATCHED
        self.stats = Stats()
        self.clients: set[ClientConn] = set()
        self.closing = False
        self.observers: list[Observer] = []
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex().encode()
        self._empty: asyncio.Event | None = None

    def request_id(self, incoming: bytes | None) -> bytes:
        """The client's id when it is short printable ASCII, else a new one: a random
        per-process prefix and a counter are as unique as a UUID and far cheaper."""
        if (
            incoming
            and len(incoming) <= _MAX_REQUEST_ID
            and incoming.isascii()
            and incoming.decode().isprintable()
        ):
            return incoming
        return b"%s-%d" % (self._id_prefix, next(self._ids))

    def _table_changed(self, table: RouteTable) -> None:
        sticky = {r.sticky.name.lower().encode() for r in table.routes.values() if r.sticky}
        self.watched = REQUEST_WATCHED | sticky
        self._on_change(table)

    async def connect(self, target: LiveTarget) -> UpstreamConn:
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: cast(asyncio.Protocol, UpstreamConn(target)), target.host, target.port
            ),
            self.config.connect_timeout,
        )
        return cast(UpstreamConn, conn)

    def pool_return(self, conn: UpstreamConn) -> None:
        target = conn.target
        idle = target.idle
        if conn.closed or target.state != "ready" or len(idle) >= self.config.pool_max_idle:
            conn.close()
            return
        conn.idle_since = self.clock
        idle.append(conn)

    def client_opened(self, client: ClientConn) -> None:
        self.clients.add(client)
        client.head_deadline = self.clock + self.config.header_timeout

    def client_closed(self, client: ClientConn) -> None:
        self.clients.discard(client)
        if not self.clients and self._empty is not None:
            self._empty.set()

    def idle_limit(self) -> float:
        # While handing over, idle connections close quickly so clients reconnect
        # to the new process; a response in flight is never cut for it.
        return 0.5 if self.closing else self.config.keepalive_timeout

    def sweep(self) -> None:
        now = self.clock = time.monotonic()
        for client in list(self.clients):
            client.expire(now)
            exchange = client.current
            if exchange is not None:
                exchange.hold_expired(now)
        for service in self.table.services.values():
            for target in service.targets:
                self._expire_idle(target, now)

    def _expire_idle(self, target: LiveTarget, now: float) -> None:
        limit = self.config.pool_idle_timeout
        keep = [c for c in target.idle if c.usable and now - c.idle_since < limit]
        for conn in target.idle:
            if conn not in keep:
                conn.close()
        target.idle = keep

    async def wind_down(self, deadline: float) -> None:
        """Stop reusing client connections; return when they are all gone or at deadline."""
        self.closing = True
        if not self.clients:
            return
        self._empty = asyncio.Event()
        try:
            await asyncio.wait_for(self._empty.wait(), deadline)
        except TimeoutError:
            for client in list(self.clients):
                if client.tunnel is not None:
                    client.tunnel.cut()  # WebSockets get 1001, going away
                else:
                    client.close()
