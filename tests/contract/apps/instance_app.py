"""A small app the runtime and health tests start as an instance, stdlib only.

On 127.0.0.1:$PORT:
  GET /          200, JSON with its pid, $GREETING and the names in its environment
  GET /say?TEXT  prints TEXT to stdout, then as /
  GET /exit?N    exits with status N right after answering
  GET /ready     503 until READY_AFTER seconds have passed since start, then 200
Says on stdout and stderr that it started. On SIGTERM says so and exits 0,
unless IGNORE_SIGTERM is set. Exits with status 3 after DIE_AFTER seconds if set.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/ready":
            ready = time.monotonic() - STARTED >= float(os.environ.get("READY_AFTER", "0"))
            self.answer(200 if ready else 503, {"ready": ready})
            return
        if path == "/say":
            print(query, flush=True)
        self.answer(
            200,
            {"pid": os.getpid(), "greeting": os.environ.get("GREETING"), "env": sorted(os.environ)},
        )
        if path == "/exit":
            threading.Timer(0.05, os._exit, [int(query)]).start()

    def answer(self, status: int, value: object) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        print("got SIGTERM", flush=True)
        threading.Thread(target=server.shutdown).start()

    if os.environ.get("IGNORE_SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, on_sigterm)
    if "DIE_AFTER" in os.environ:
        threading.Timer(float(os.environ["DIE_AFTER"]), os._exit, [3]).start()
    print(f"listening on {os.environ['PORT']}", flush=True)
    print("this goes to stderr", file=sys.stderr, flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
