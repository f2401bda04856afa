"""The admin API (JSON over HTTP on a unix socket): routes, weights, drain, pause, state.

GET    /state                      every service, target and counter
PUT    /services/NAME              replace the service (targets, hosts, sticky)
PATCH  /services/NAME/weights      {"weights": {"HOST:PORT": N}}
POST   /services/NAME/drain        {"address": "HOST:PORT", "deadline": SECONDS}
POST   /services/NAME/pause        hold new requests until resume
POST   /services/NAME/resume
DELETE /services/NAME
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from immute.core.routes import check_service, route_from_json, route_to_json, target_to_json
from immute.errors import RouteError
from immute.proxy.control_http import ControlRequest, ControlResponse
from immute.proxy.router import Router
from immute.proxy.table import LiveService

_Action = Callable[[Router, LiveService | None, str, object], Awaitable[ControlResponse]]


async def handle(router: Router, request: ControlRequest) -> ControlResponse:
    try:
        return await _dispatch(router, request)
    except RouteError as exc:
        return ControlResponse.of(400, {"error": str(exc)})
    except json.JSONDecodeError as exc:
        return ControlResponse.of(400, {"error": f"request body: invalid JSON: {exc.msg}"})


async def _dispatch(router: Router, request: ControlRequest) -> ControlResponse:
    parts = [p for p in request.path.split("?")[0].split("/") if p]
    if request.method == "GET" and parts == ["state"]:
        return ControlResponse.of(200, state(router))
    if len(parts) < 2 or parts[0] != "services":
        return ControlResponse.of(404, {"error": f"no such endpoint {request.path}"})
    name = check_service(parts[1])
    action = _ACTIONS.get((request.method, tuple(parts[2:])))
    if action is None:
        return ControlResponse.of(
            404, {"error": f"no such endpoint {request.method} {request.path}"}
        )
    service = router.table.services.get(name)
    if service is None and request.method != "PUT":
        return ControlResponse.of(404, {"error": f"no service {name!r}"})
    return await action(router, service, name, request.json())


async def _put(router: Router, _: LiveService | None, name: str, body: object) -> ControlResponse:
    route = route_from_json(name, body)
    router.table.apply(route)
    return ControlResponse.of(200, route_to_json(router.table.services[name].describe()))


async def _weights(
    router: Router, svc: LiveService | None, name: str, body: object
) -> ControlResponse:
    weights = body.get("weights") if isinstance(body, dict) else None
    if not isinstance(weights, dict) or not all(
        isinstance(w, int) and not isinstance(w, bool) and w >= 0 for w in weights.values()
    ):
        raise RouteError('weights: expected {"HOST:PORT": WEIGHT, ...}')
    assert svc is not None
    unknown = set(weights) - {t.address for t in svc.targets}
    if unknown:
        raise RouteError(f"weights: {sorted(unknown)[0]} is not a target of {name}")
    router.table.set_weights(name, weights)
    return ControlResponse.of(200, route_to_json(svc.describe()))


async def _pause(router: Router, _: LiveService | None, name: str, __: object) -> ControlResponse:
    router.table.set_paused(name, True)
    return ControlResponse.of(200, {"service": name, "paused": True})


async def _resume(router: Router, _: LiveService | None, name: str, __: object) -> ControlResponse:
    router.table.set_paused(name, False)
    return ControlResponse.of(200, {"service": name, "paused": False})


async def _delete(router: Router, _: LiveService | None, name: str, __: object) -> ControlResponse:
    router.table.remove_service(name)
    return ControlResponse.of(200, {"service": name, "deleted": True})


async def _drain(
    router: Router, svc: LiveService | None, name: str, body: object
) -> ControlResponse:
    data = body if isinstance(body, dict) else {}
    address, deadline = data.get("address"), data.get("deadline", 30)
    if not isinstance(deadline, int | float) or isinstance(deadline, bool) or deadline < 0:
        raise RouteError("deadline: expected a number of seconds")
    assert svc is not None
    target = next((t for t in svc.targets if t.address == address), None)
    if target is None:
        raise RouteError(f"address: {address!r} is not a target of {name}")
    return ControlResponse.of(200, await drain(router, svc, target.address, float(deadline)))


async def drain(
    router: Router, service: LiveService, address: str, deadline: float
) -> dict[str, object]:
    """Take no new requests on the target, let in-flight work finish until the deadline,
    then cut what remains (WebSockets get 1001); return once nothing is left."""
    target = next(t for t in service.targets if t.address == address)
    started = time.monotonic()
    router.table.start_drain(service, target)
    cut = 0
    try:
        await asyncio.wait_for(target.when_empty(), deadline)
    except TimeoutError:
        if target.state != "ready":  # not put back into service meanwhile
            cut = target.cut_all()
            await target.when_empty()
    router.table.finish_drain(service, target)
    return {
        "service": service.name,
        "address": address,
        "cut": cut,
        "seconds": round(time.monotonic() - started, 3),
    }


def state(router: Router) -> dict[str, object]:
    services: dict[str, object] = {}
    for name, service in router.table.services.items():
        targets = []
        for target in service.targets:
            entry = target_to_json(target.describe())
            entry.update(
                inflight=len(target.inflight),
                idle_connections=len(target.idle),
                requests=target.requests,
                failures=target.failures,
            )
            targets.append(entry)
        services[name] = {
            **route_to_json(service.describe()),
            "targets": targets,
            "retries": service.retries,
            "held": service.held,
            "hold_timeouts": service.hold_timeouts,
        }
    stats = router.stats
    host, port = router.config.listen
    return {
        "listen": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "hold_timeout": router.config.hold_timeout,
        "services": services,
        "connections": len(router.clients),
        "requests": stats.requests,
        "retries": stats.retries,
        "rejected": stats.rejected,
    }


_ACTIONS: dict[tuple[str, tuple[str, ...]], _Action] = {
    ("PUT", ()): _put,
    ("DELETE", ()): _delete,
    ("PATCH", ("weights",)): _weights,
    ("POST", ("drain",)): _drain,
    ("POST", ("pause",)): _pause,
    ("POST", ("resume",)): _resume,
}
