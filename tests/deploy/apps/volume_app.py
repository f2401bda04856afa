"""The demo app plus state: appends to and reads a file in its volume at /data,
and says whether it can write to its own root file system. Standard library only."""

from __future__ import annotations

import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NOTES = Path("/data/notes.txt")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/write":
            with NOTES.open("a") as handle:
                handle.write(query + "\n")
        if path == "/root-write":
            body = try_write(Path(__file__).with_name("scribble.txt"))
        elif path == "/tmp-write":
            body = try_write(Path("/tmp/scribble.txt"))
        elif path == "/scratch-write":
            body = try_write(Path("/scratch/scribble.txt"))
        elif path in ("/read", "/write"):
            body = NOTES.read_text() if NOTES.exists() else ""
        else:
            body = "ok\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("x-release", os.environ.get("IMMUTE_RELEASE", ""))
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def try_write(path: Path) -> str:
    try:
        path.write_text("scribble\n")
    except OSError as exc:
        return f"refused: {exc.strerror}"
    return "written"


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"volume app on {os.environ['PORT']}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
