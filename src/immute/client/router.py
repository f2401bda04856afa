"""What `immute router ...` calls: run a router, or drive one over its admin socket."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from immute.admin_socket import JSONObject, call
from immute.core.routes import (
    DEFAULT_SERVICE,
    Route,
    check_service,
    parse_target,
    route_to_json,
    split_address,
)
from immute.errors import UsageError


def serve(
    *,
    listen: str,
    admin: Path,
    metrics: str | None,
    state: Path | None,
    access_log: Path | None,
    hold_timeout: float,
) -> None:
    """Become the router process (exec), so signals and exit codes are its own."""
    split_address(listen)
    argv = [sys.executable, "-m", "immute.proxy", "--listen", listen, "--admin", str(admin)]
    if metrics:
        split_address(metrics)
        argv += ["--metrics", metrics]
    if state:
        argv += ["--state", str(state)]
    if access_log:
        argv += ["--access-log", str(access_log)]
    argv += ["--hold-timeout", str(hold_timeout)]
    sys.stdout.flush()
    os.execv(sys.executable, argv)


def set_targets(admin: Path, service: str | None, specs: Sequence[str], *, release: str) -> None:
    if not specs:
        raise UsageError("give at least one HOST:PORT[=WEIGHT]")
    name = check_service(service or DEFAULT_SERVICE)
    targets = tuple(parse_target(spec, release=release) for spec in specs)
    body = route_to_json(Route(service=name, targets=targets))
    del body["paused"]
    asyncio.run(call(admin, "PUT", f"/services/{name}", body))


@dataclass(frozen=True)
class Drained:
    address: str
    cut: int
    seconds: float


def drain(
    admin: Path, service: str | None, addresses: Sequence[str], *, deadline: float
) -> list[Drained]:
    name = check_service(service or DEFAULT_SERVICE)
    for address in addresses:
        split_address(address)

    async def drain_all() -> list[JSONObject]:
        body = [{"address": a, "deadline": deadline} for a in addresses]
        calls = [call(admin, "POST", f"/services/{name}/drain", b) for b in body]
        return list(await asyncio.gather(*calls))

    return [
        Drained(str(r["address"]), cast(int, r["cut"]), cast(float, r["seconds"]))
        for r in asyncio.run(drain_all())
    ]


def status(admin: Path) -> JSONObject:
    return asyncio.run(call(admin, "GET", "/state"))


def pause(admin: Path, service: str | None, *, paused: bool) -> None:
    name = check_service(service or DEFAULT_SERVICE)
    action = "pause" if paused else "resume"
    asyncio.run(call(admin, "POST", f"/services/{name}/{action}"))
