"""A small app the runtime tests start as an instance, stdlib only.

Serves ``GET /`` on 127.0.0.1:$PORT with its pid and $GREETING; ``GET /say?TEXT``
prints TEXT to stdout. Says on stdout and stderr that it started. Exits 0 on
SIGTERM after saying so, unless IGNORE_SIGTERM is set.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/say?"):
            print(self.path.removeprefix("/say?"), flush=True)
        body = json.dumps({"pid": os.getpid(), "greeting": os.environ.get("GREETING")}).encode()
        self.send_response(200)
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
    print(f"listening on {os.environ['PORT']}", flush=True)
    print("this goes to stderr", file=sys.stderr, flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
