"""`python -m immute.proxy --listen HOST:PORT --admin PATH`: the router process itself.

The builtin router adapter starts this in its own session so that it outlives
whatever started it; `immute router serve` runs the same in the foreground.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from immute.core.routes import split_address
from immute.errors import ImmuteError
from immute.proxy.config import ProxyConfig
from immute.proxy.server import default_state_path, serve


def parse_config(argv: list[str]) -> ProxyConfig:
    parser = argparse.ArgumentParser(prog="python -m immute.proxy")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--admin", required=True, type=Path)
    parser.add_argument("--metrics")
    parser.add_argument("--state", type=Path)
    parser.add_argument("--access-log", type=Path)
    parser.add_argument("--header-timeout", type=float, default=10.0)
    parser.add_argument("--hold-timeout", type=float, default=10.0)
    parser.add_argument("--keepalive-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    return ProxyConfig(
        listen=split_address(args.listen),
        admin=args.admin,
        state=args.state or default_state_path(args.admin),
        metrics=split_address(args.metrics) if args.metrics else None,
        access_log=args.access_log,
        header_timeout=args.header_timeout,
        hold_timeout=args.hold_timeout,
        keepalive_timeout=args.keepalive_timeout,
    )


def main() -> int:
    try:
        serve(parse_config(sys.argv[1:]))
    except ImmuteError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
