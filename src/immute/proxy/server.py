"""The router process: listeners, admin API, metrics, persistence, handover, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import signal
import socket
from pathlib import Path
from typing import cast

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from immute.core.routes import RouteTable, table_from_json, table_to_json
from immute.proxy import admin
from immute.proxy.config import ProxyConfig
from immute.proxy.control_http import ControlRequest, ControlResponse, start_control_server
from immute.proxy.downstream import ClientConn
from immute.proxy.observe import AccessLog, Metrics
from immute.proxy.persistence import Persister, load_table, save_table
from immute.proxy.router import Router
from immute.proxy.sockets import (
    DONE,
    TAKEOVER,
    listener_at,
    request_takeover,
    send_listeners,
    tcp_listener,
    unix_listener,
)


class RouterProcess:
    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.persister = Persister(config.state)
        self.router = Router(config, on_change=self._persist)
        self.metrics = Metrics(self.router)
        self.router.observers.append(self.metrics.observe)
        self.access_log = AccessLog(config.access_log) if config.access_log else None
        if self.access_log is not None:
            self.router.observers.append(self.access_log.observe)
        self.listeners: list[socket.socket] = []
        self.servers: list[asyncio.AbstractServer] = []
        self.control: list[asyncio.AbstractServer] = []
        self.stop = asyncio.Event()
        self._restoring = False

    def _persist(self, table: RouteTable) -> None:
        if not self._restoring:
            self.persister.changed(table)

    def restore(self, table: RouteTable) -> None:
        self._restoring = True
        try:
            for route in table.routes.values():
                # Draining targets had their in-flight work in another process.
                ready = tuple(t for t in route.targets if t.state == "ready")
                self.router.table.apply(dataclasses.replace(route, targets=ready))
        finally:
            self._restoring = False
        save_table(self.config.state, self.router.table.describe())

    async def start(self) -> None:
        inherited = request_takeover(self.config.handover_path)
        handover_conn = None
        if inherited is not None:
            handover_conn, got = inherited
            self.listeners = self._listeners_from(got.listeners)
            self.restore(table_from_json(got.state["table"], where="handover"))
        else:
            self.listeners = [tcp_listener(self.config.listen)]
            if self.config.metrics is not None:
                self.listeners.append(tcp_listener(self.config.metrics))
            self.restore(load_table(self.config.state))
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: cast(asyncio.Protocol, ClientConn(self.router)), sock=self.listeners[0]
        )
        self.servers.append(server)
        if len(self.listeners) > 1:
            # With the proxy's servers, not the control ones: a handover closes those
            # first, and the metrics listener must still be open to be handed over.
            self.servers.append(await start_control_server(self._metrics, sock=self.listeners[1]))
        await self._start_control()
        if handover_conn is not None:
            handover_conn.sendall(DONE)
            handover_conn.close()

    def _listeners_from(self, inherited: list[socket.socket]) -> list[socket.socket]:
        """The old process's listeners, except where this one was given another
        address (`--listen`, `--metrics`): that address is bound instead, and the old
        one stops accepting when the handover completes (the old process then closes
        its servers). A listener not named again (no `--metrics`) is kept."""
        listeners = [listener_at(inherited[0], self.config.listen)]
        metrics = self.config.metrics
        if len(inherited) > 1:
            listeners.append(
                inherited[1] if metrics is None else listener_at(inherited[1], metrics)
            )
        elif metrics is not None:
            listeners.append(tcp_listener(metrics))
        return listeners

    async def _start_control(self) -> None:
        admin_sock = unix_listener(self.config.admin)
        self.control.append(await start_control_server(self._admin, sock=admin_sock))
        handover_sock = unix_listener(self.config.handover_path)
        self.control.append(await asyncio.start_unix_server(self._handover, sock=handover_sock))

    async def _admin(self, request: ControlRequest) -> ControlResponse:
        return await admin.handle(self.router, request)

    async def _metrics(self, request: ControlRequest) -> ControlResponse:
        body = generate_latest(self.metrics.registry)
        return ControlResponse(200, body, CONTENT_TYPE_LATEST)

    async def _handover(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Give the listening sockets and the table to a new process, then wind down."""
        try:
            if await reader.readline() != TAKEOVER:
                return
            for control in self.control:
                control.close()
            state = {"table": table_to_json(self.router.table.describe())}
            fileno = writer.get_extra_info("socket").fileno()
            with socket.socket(fileno=os.dup(fileno)) as raw:
                raw.setblocking(True)
                await asyncio.to_thread(send_listeners, raw, self.listeners, state)
            if await reader.readline() == DONE:
                self.stop.set()
            else:
                await self._start_control()
        finally:
            writer.close()

    async def run(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        sweeper = asyncio.ensure_future(self._housekeeping())
        # Startup objects (modules, prometheus, config) never die: keep them out of
        # every future collection so that full collections stay short (p99).
        gc.collect()
        gc.freeze()
        host, port = self.listeners[0].getsockname()[:2]
        print(f"immute router listening on {host}:{port}", flush=True)
        await self.stop.wait()
        for server in self.servers:
            server.close()
        for control in self.control:
            control.close()
        await self.router.wind_down(self.config.handover_timeout)
        sweeper.cancel()
        await self.persister.flush()
        for listener in self.listeners:
            listener.close()
        if self.access_log is not None:
            self.access_log.close()

    async def _housekeeping(self) -> None:
        interval = min(1.0, self.config.header_timeout / 4, self.config.hold_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            self.router.sweep()
            if self.access_log is not None:
                self.access_log.flush()


def serve(config: ProxyConfig) -> None:
    """Run the router in this process until SIGTERM, SIGINT or a handover."""
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(RouterProcess(config).run())


def default_state_path(admin_path: Path) -> Path:
    return admin_path.with_name(admin_path.name + ".routes.json")
