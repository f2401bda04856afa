"""A small HTTP/1.1 backend for router tests and benchmarks (127.0.0.1 only).

    GET  /            200 "NAME"           (fixed, fast)
    GET  /slow?s=N    200 after N seconds
    GET  /headers     the request headers it received, one per line
    POST /echo        the request body back, chunked, as it streams in
    GET  /ws          WebSocket echo (with --ws)

With --drop-reused it closes a connection, unanswered, at its second request.

Run: python tests/router/router_backend.py --port N --name NAME [--ws]
Prints "ready PORT" once listening.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast
from urllib.parse import parse_qs, urlsplit

import httptools


class Backend(asyncio.Protocol):
    def __init__(self, name: bytes, *, drop_reused: bool = False) -> None:
        self.name = name
        self.drop_reused = drop_reused
        self.served = 0
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url
        self.headers: list[bytes] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append(name.lower() + b": " + value)
        if name.lower() == b"expect" and value.lower() == b"100-continue":
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_headers_complete(self) -> None:
        if urlsplit(self.url).path == b"/echo":
            self.streaming = True
            self._write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self.streaming:
            self._write(b"%x\r\n%b\r\n" % (len(body), body))

    def on_message_complete(self) -> None:
        self.served += 1
        if self.drop_reused and self.served > 1 and self.transport is not None:
            # Like a server whose keep-alive timeout fired as this request came in.
            self.transport.close()
            return
        url = urlsplit(self.url)
        keep = self.parser.should_keep_alive()
        if self.streaming:
            self.streaming = False
            self._write(b"0\r\n\r\n")
        elif url.path == b"/slow":
            delay = float(parse_qs(url.query.decode()).get("s", ["1"])[0])
            asyncio.get_running_loop().call_later(delay, self._respond, keep)
        else:
            self._respond(keep)

    def _respond(self, keep: bool) -> None:
        body = self.name
        if urlsplit(self.url).path == b"/headers":
            body = b"\n".join(self.headers)
        connection = b"keep-alive" if keep else b"close"
        self._write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
            b"connection: %s\r\n\r\n%s" % (len(body), connection, body)
        )
        if not keep and self.transport is not None:
            self.transport.close()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve_ws(port: int, name: str) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", port) as server:
        print(f"ready {port}", flush=True)
        await server.serve_forever()


async def serve_http(port: int, name: str, *, drop_reused: bool = False) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Backend(name.encode(), drop_reused=drop_reused), "127.0.0.1", port
    )
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="backend")
    parser.add_argument("--ws", action="store_true")
    parser.add_argument("--drop-reused", action="store_true")
    args = parser.parse_args()
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        if args.ws:
            runner.run(serve_ws(args.port, args.name))
        else:
            runner.run(serve_http(args.port, args.name, drop_reused=args.drop_reused))


if __name__ == "__main__":
    main()
