"""An app for a Dockerfile-built stack: answers with what the Dockerfile added to
the image, the dependency it imports, and the interpreter it runs on."""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import tinydep  # type: ignore[import-not-found]  # installed in the image only


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        facts = {
            "note": Path("/etc/immute-stack-note").read_text().strip(),
            "tinydep": tinydep.VERSION,
            "tinydep_file": tinydep.__file__,
            "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        }
        body = json.dumps(facts).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-release", os.environ.get("IMMUTE_RELEASE", ""))
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"stack app on {sys.version_info[:2]}", flush=True)
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
