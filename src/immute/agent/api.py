"""The agent's API: JSON over HTTP on its unix socket (mode 0600).

| method and path                     | what it does                                  |
| ----------------------------------- | --------------------------------------------- |
| GET  /ping                          | the agent's pid: it is up and answering       |
| GET  /status                        | active release, deploy, instances, routes     |
| POST /deploys                       | record a release and deploy it                |
| POST /rollbacks                     | roll back, by default to the previous release |
| POST /restarts                      | replace every instance of the active release  |
| GET  /deploys/ID?after=N&wait=S     | a deploy's events after N, waiting up to S s  |
| POST /down                          | stop every instance and the agent             |
| POST /shutdown                      | stop the agent alone                          |
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from immute.agent.daemon import Agent
from immute.core.release import Release
from immute.errors import ImmuteError, LockHeldError, NotFoundError, UsageError
from immute.proxy.control_http import ControlRequest, ControlResponse

MAX_WAIT_S = 25.0


async def handle(agent: Agent, request: ControlRequest) -> ControlResponse:
    url = urlsplit(request.path)
    parts = [p for p in url.path.split("/") if p]
    try:
        body = request.json() if request.method == "POST" else {}
        if not isinstance(body, dict):
            raise UsageError("expected a JSON object")
        return ControlResponse.of(
            200, await _dispatch(agent, request.method, parts, url.query, body)
        )
    except LockHeldError as exc:
        return ControlResponse.of(409, {"error": str(exc), "exit_code": exc.exit_code})
    except NotFoundError as exc:
        return ControlResponse.of(404, {"error": str(exc), "exit_code": exc.exit_code})
    except ImmuteError as exc:
        return ControlResponse.of(400, {"error": str(exc), "exit_code": exc.exit_code})


async def _dispatch(
    agent: Agent, method: str, parts: list[str], query: str, body: dict[str, Any]
) -> dict[str, Any]:
    if (method, parts) == ("GET", ["ping"]):
        return {"pid": os.getpid()}
    if (method, parts) == ("GET", ["status"]):
        return await status(agent)
    if (method, parts) == ("POST", ["deploys"]):
        return deploy(agent, body)
    if (method, parts) == ("POST", ["rollbacks"]):
        return rollback(agent, body)
    if (method, parts) == ("POST", ["restarts"]):
        return restart(agent)
    if method == "GET" and len(parts) == 2 and parts[0] == "deploys" and parts[1].isdigit():
        options = parse_qs(query)
        after = int(options.get("after", ["0"])[0])
        wait = min(MAX_WAIT_S, float(options.get("wait", ["0"])[0]))
        return await events(agent, int(parts[1]), after=after, wait=wait)
    if (method, parts) == ("POST", ["down"]):
        return await down(agent)
    if (method, parts) == ("POST", ["shutdown"]):
        agent.stop_soon()
        return {"stopping": True}
    raise NotFoundError(f"no such API call: {method} /{'/'.join(parts)}")


def _text(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise UsageError(f"{key}: expected a string")
    return value


def _lock(agent: Agent, app: str, message: str) -> None:
    agent.store.locks.acquire(app, message=message, pid=os.getpid())


def deploy(agent: Agent, body: dict[str, Any]) -> dict[str, Any]:
    app = _text(body, "app")
    known = agent.app()
    if known is not None and known != app:
        raise UsageError(f"this state directory belongs to {known}, not {app}")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise UsageError("spec: expected the normalised spec")
    given = body.get("secrets") or {}
    if not isinstance(given, dict):
        raise UsageError("secrets: expected an object")
    message = _text(body, "message", "")
    _lock(agent, app, f"deploy by {_text(body, 'who', 'someone')}: {message}".rstrip(": "))
    try:
        agent.secrets.update(
            {str(k): str(v) for k, v in given.items()}, secrets_file=spec.get("secrets_file")
        )
        agent.store.journal.save_spec(_text(body, "spec_digest"), spec)
        previous = agent.active(app)
        release = agent.store.releases.create(
            app,
            image_digest=_text(body, "image_digest"),
            config_digest=_text(body, "config_digest"),
            spec_digest=_text(body, "spec_digest"),
            source_revision=body.get("source_revision") or None,
            message=message,
        )
        deploy_id = agent.begin(app=app, kind="deploy", target=release, previous=previous)
    except BaseException:
        agent.store.locks.release(app, pid=os.getpid())
        raise
    return {"deploy": deploy_id, "release": release.number}


def rollback(agent: Agent, body: dict[str, Any]) -> dict[str, Any]:
    app = agent.app()
    if app is None:
        raise NotFoundError("nothing deployed yet: there is nothing to roll back")
    active = agent.active(app)
    wanted = body.get("to")
    target = _rollback_target(agent, app, active, wanted if isinstance(wanted, int) else None)
    _lock(agent, app, f"rollback to {target.name}")
    try:
        release = agent.store.releases.create(
            app,
            image_digest=target.image_digest,
            config_digest=target.config_digest,
            spec_digest=target.spec_digest,
            source_revision=target.source_revision,
            message=f"rollback to {target.name}",
            rollback_of=target.number,
        )
        deploy_id = agent.begin(app=app, kind="rollback", target=release, previous=active)
    except BaseException:
        agent.store.locks.release(app, pid=os.getpid())
        raise
    return {"deploy": deploy_id, "release": release.number, "to": target.number}


def _rollback_target(agent: Agent, app: str, active: Release | None, wanted: int | None) -> Release:
    if wanted is not None:
        target = agent.store.releases.get(app, wanted)
        if target.status in ("failed", "pending"):
            raise UsageError(f"{target.name} is {target.status}: roll back to a release that ran")
        if active is not None and target.number == active.number:
            raise UsageError(f"{target.name} is already the active release")
        return target
    before = [
        r
        for r in agent.store.releases.all(app)
        if r.status in ("superseded", "rolled-back")
        and (active is None or r.number < active.number)
        and (
            active is None
            or r.image_digest != active.image_digest
            or r.config_digest != active.config_digest
        )
    ]
    if not before:
        raise NotFoundError("no earlier successful release to roll back to")
    return before[0]


def restart(agent: Agent) -> dict[str, Any]:
    app = agent.app()
    active = agent.active(app) if app else None
    if app is None or active is None:
        raise NotFoundError("no active release to restart")
    _lock(agent, app, f"restart of {active.name}")
    try:
        deploy_id = agent.begin(app=app, kind="restart", target=active, previous=active)
    except BaseException:
        agent.store.locks.release(app, pid=os.getpid())
        raise
    return {"deploy": deploy_id, "release": active.number}


async def events(agent: Agent, deploy_id: int, *, after: int, wait: float) -> dict[str, Any]:
    record = agent.store.journal.get(deploy_id)
    give_up = time.monotonic() + wait
    while True:
        record = agent.store.journal.get(deploy_id)
        known = agent.events.get(deploy_id)
        if known is None:
            known = [
                {
                    "seq": i,
                    "at": 0,
                    "kind": "step",
                    "text": f"{s.step} ({s.outcome or 'interrupted'})",
                }
                for i, s in enumerate(agent.store.journal.steps(deploy_id))
            ]
        fresh = known[after:]
        if fresh or record.status != "running" or time.monotonic() >= give_up:
            break
        await asyncio.sleep(0.05)
    return {
        "deploy": record.id,
        "kind": record.kind,
        "release": record.release,
        "status": record.status,
        "reason": record.reason,
        "events": fresh,
        "next": after + len(fresh),
    }


async def status(agent: Agent) -> dict[str, Any]:
    app = agent.app()
    if app is None:
        return {"app": None, "active": None, "deploy": None, "instances": [], "routes": {}}
    active = agent.active(app)
    instances = agent.instances()
    running = await instances.observed_running()
    now = time.time()
    rows = [
        {
            "id": r.id,
            "process": r.process,
            "release": f"v{r.release}",
            "state": r.state,
            "running": r.id in running,
            "address": r.address,
            "age": round(now - running[r.id].started_at, 1) if r.id in running else None,
            "standby_until": r.standby_until,
        }
        for r in instances.records()
    ]
    try:
        routes = await agent.router.status()
    except ImmuteError as exc:
        routes = {"error": str(exc)}
    current = agent.current
    return {
        "app": app,
        "active": active.name if active else None,
        "deploy": {"id": current.id, "kind": current.kind, "release": current.target.name}
        if current
        else None,
        "instances": rows,
        "routes": routes,
    }


async def down(agent: Agent) -> dict[str, Any]:
    """Stop the supervisor and any deploy first, so nothing is started while
    everything is being stopped; then the instances, the router and the agent."""
    agent.quiet.set()
    if agent.deploy_task is not None:
        agent.deploy_task.cancel()
    app = agent.app()
    stopped = 0
    async with agent.busy:
        if app is not None:
            instances = agent.instances()
            records = instances.records()
            await instances.retire(records, drain=5)
            stopped = len(records)
            running = agent.store.journal.running(app)
            if running is not None:
                agent.store.journal.finish(running.id, "failed", reason="stopped by immute down")
        await agent.stop_router()
    agent.stop_soon()
    return {"stopped": stopped}
