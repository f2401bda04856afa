"""The builtin router: immute's own proxy process, driven over its admin socket."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

from immute.admin_socket import JSONObject, call
from immute.core.routes import Route, Sticky, Target, route_to_json
from immute.errors import RouterError, failure_line
from immute.routers.base import DrainResult


class BuiltinRouter:
    """Talks to a running router process at `admin` (a unix socket, mode 0600)."""

    def __init__(self, admin: Path) -> None:
        self.admin = admin

    async def request(self, method: str, path: str, body: object = None) -> JSONObject:
        """One admin API call; raises RouteError for a refused request."""
        return await call(self.admin, method, path, body)

    async def set_targets(
        self,
        service: str,
        targets: Sequence[Target],
        *,
        hosts: Sequence[str] = (),
        sticky: Sticky | None = None,
    ) -> None:
        route = Route(service=service, targets=tuple(targets), hosts=tuple(hosts), sticky=sticky)
        body = route_to_json(route)
        del body["paused"]
        await self.request("PUT", f"/services/{service}", body)

    async def set_weights(self, service: str, weights: Mapping[str, int]) -> None:
        await self.request("PATCH", f"/services/{service}/weights", {"weights": dict(weights)})

    async def drain(self, service: str, address: str, *, deadline: float) -> DrainResult:
        body = {"address": address, "deadline": deadline}
        reply = await self.request("POST", f"/services/{service}/drain", body)
        return DrainResult(
            service=service,
            address=address,
            cut=cast(int, reply["cut"]),
            seconds=cast(float, reply["seconds"]),
        )

    async def pause(self, service: str) -> None:
        await self.request("POST", f"/services/{service}/pause")

    async def resume(self, service: str) -> None:
        await self.request("POST", f"/services/{service}/resume")

    async def status(self) -> JSONObject:
        return await self.request("GET", "/state")


def router_argv(
    *, listen: str, admin: Path, metrics: str | None = None, extra: Sequence[str] = ()
) -> list[str]:
    argv = [sys.executable, "-m", "immute.proxy", "--listen", listen, "--admin", str(admin)]
    if metrics:
        argv += ["--metrics", metrics]
    return [*argv, *extra]


def start_router(
    *,
    listen: str,
    admin: Path,
    metrics: str | None = None,
    log: Path | None = None,
    extra: Sequence[str] = (),
    timeout: float = 15.0,
) -> subprocess.Popen[bytes]:
    """Start a router process in its own session, so it outlives its starter, and
    wait until it listens. If one already serves `admin`, the new one takes over."""
    argv = router_argv(listen=listen, admin=admin, metrics=metrics, extra=extra)
    logged = log.stat().st_size if log is not None and log.exists() else 0
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log else subprocess.DEVNULL
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=out,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = process.stdout.readline()
    if not line.startswith(b"immute router listening") or time.monotonic() > deadline:
        process.kill()
        process.wait()
        if log is None:
            raise RouterError("the router did not start")
        with log.open("rb") as written:
            written.seek(logged)
            reason = failure_line(written.read().decode(errors="replace"))
        raise RouterError(f"the router did not start: {reason} (see {log})")
    return process
