"""A tiny web app for immute's demo: answers every path with its release's
greeting, and /healthz once it has started. Standard library only."""

from __future__ import annotations

import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GREETING = (Path(__file__).parent / "greeting.txt").read_text().strip()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The stdlib's backlog of 5 drops connections when a router opens many at once.
    request_queue_size = 128


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered: head and body leave in one write after the handler returns, so a
    # crash never leaves a response half sent (which no router may retry).
    wbufsize = -1

    def do_GET(self) -> None:
        body = f"{GREETING} from {os.environ.get('IMMUTE_INSTANCE', 'hello')}\n".encode()
        if self.path == "/healthz":
            body = b"ok\n"
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("x-release", os.environ.get("IMMUTE_RELEASE", ""))
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()


def main() -> None:
    server = Server(("127.0.0.1", int(os.environ["PORT"])), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"hello: {GREETING!r} listening on 127.0.0.1:{os.environ['PORT']}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
