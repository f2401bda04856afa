"""Deploys, rollbacks, restarts and status, as the CLI asks for them: read the
spec, build the image here, hand the release to the agent, follow it."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from immute.client.agent import AgentClient
from immute.client.specfile import DEFAULT_SPEC, read_spec, state_dir
from immute.errors import LockHeldError, UsageError

if TYPE_CHECKING:
    from immute.core.spec_loading import LoadedSpec

# Deploys import the builder, the store and pydantic inside the functions that
# need them: a rollback under pressure only talks to the agent, and starts fast.

OnEvent = Callable[[dict[str, Any]], None]


def agent_for(file: str | None) -> AgentClient:
    return AgentClient(state_dir(file).resolve())


def collect_secrets(loaded: LoadedSpec) -> dict[str, str]:
    """Values of the spec's secrets from the secrets file, then the environment.

    A missing secret is an error naming it; values never appear in messages.
    """
    from immute.agent.secret_values import read_secrets_file

    spec = loaded.spec
    found: dict[str, str] = {}
    if spec.secrets_file:
        path = Path(spec.secrets_file).expanduser()
        if path.is_file():
            found.update(read_secrets_file(path))
    found.update({name: os.environ[name] for name in spec.secrets if name in os.environ})
    missing = [name for name in spec.secrets if name not in found]
    if missing:
        where = f" or {spec.secrets_file}" if spec.secrets_file else ""
        raise UsageError(
            f"secret {', '.join(missing)} has no value: set it in the environment{where}"
        )
    return {name: found[name] for name in spec.secrets}


def source_revision(spec_path: Path) -> str | None:
    """The git commit of the spec's directory, with ``-dirty`` for uncommitted changes."""
    directory = spec_path.resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}-dirty" if dirty else head


def refuse_if_locked(file: str | None, app: str) -> None:
    """Fail at once, before building, when another deploy holds the app's lock.

    The agent takes the lock itself; this is only the early, cheap answer.
    """
    from immute.client.state import lock_status

    for lock in lock_status(file, app=app):
        if not lock.get("stale"):
            raise LockHeldError(str(lock.get("description")))


def dry_run(file: str | None, destination: str | None, *, runtime: str | None = None) -> list[str]:
    """The plan a deploy would run now, against what the agent observes."""
    from immute.core.planning import Desired, describe, plan

    loaded = read_spec(file, destination, runtime=runtime)
    client = agent_for(file)
    observed: dict[str, dict[str, int]] = {}
    if client.running():
        for row in _instances(client.call("GET", "/status")):
            if row.get("state") == "ready" or (
                row.get("state") == "standby" and not row.get("standby_until")
            ):
                per = observed.setdefault(str(row["process"]), {})
                per[str(row["release"])] = per.get(str(row["release"]), 0) + 1
    spec = loaded.spec
    desired = Desired(
        release="(new)",
        instances={n: p.instances for n, p in spec.processes.items()},
        routed=frozenset(n for n, p in spec.processes.items() if p.routed),
        release_command=spec.release_command is not None,
    )
    return describe(plan(desired, observed, spec.strategy))


def _instances(status: dict[str, object]) -> list[dict[str, Any]]:
    rows = status.get("instances")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def deploy(
    file: str | None,
    destination: str | None,
    *,
    message: str,
    offline: bool,
    progress: Callable[[str], None],
    runtime: str | None = None,
) -> tuple[AgentClient, int]:
    """Build the image, record the release with the agent, and start the deploy."""
    from immute.client.images import build_image

    loaded = read_spec(file, destination, runtime=runtime)
    secrets = collect_secrets(loaded)
    refuse_if_locked(file, loaded.spec.app)
    built = build_image(
        file, destination, offline=offline, wheelhouse=None, progress=progress, loaded=loaded
    )
    client = agent_for(file)
    client.ensure_running()
    answer = client.call(
        "POST",
        "/deploys",
        {
            "app": loaded.spec.app,
            "image_digest": built.manifest_digest,
            "config_digest": loaded.config_digest,
            "spec_digest": loaded.spec_digest,
            "spec": loaded.spec.model_dump(mode="json"),
            "source_revision": source_revision(Path(file or DEFAULT_SPEC)),
            "message": message,
            "who": f"{getpass.getuser()}@{socket.gethostname()}",
            "secrets": secrets,
        },
    )
    return client, _deploy_id(answer)


def rollback(file: str | None, to: int | None) -> tuple[AgentClient, int]:
    client = agent_for(file)
    client.ensure_running()
    return client, _deploy_id(client.call("POST", "/rollbacks", {"to": to}))


def restart(file: str | None) -> tuple[AgentClient, int]:
    client = agent_for(file)
    client.ensure_running()
    return client, _deploy_id(client.call("POST", "/restarts", {}))


def status(file: str | None) -> dict[str, Any]:
    """The agent's view. Once something was deployed, an agent that is not running
    (killed, or stopped alone) is started again: it re-adopts the instances and
    resumes an interrupted deploy."""
    client = agent_for(file)
    if not client.running():
        if not (client.state_dir / "state.db").exists():
            return {"agent": False}
        client.ensure_running()
    return {"agent": True, **client.call("GET", "/status")}


def down(file: str | None) -> int:
    """Stop every instance and the agent; instances outlive a stopped agent, so one
    is started to find them (nothing has ever run when there is no state at all)."""
    if not state_dir(file).is_dir():
        return 0
    client = agent_for(file)
    client.ensure_running()
    stopped = client.call("POST", "/down", {}).get("stopped", 0)
    return stopped if isinstance(stopped, int) else 0


def stop_agent(file: str | None) -> bool:
    client = agent_for(file)
    if not client.running():
        return False
    client.call("POST", "/shutdown", {})
    return True


def _deploy_id(answer: dict[str, object]) -> int:
    deploy_id = answer.get("deploy")
    if not isinstance(deploy_id, int):
        raise UsageError("the agent did not start a deploy")
    return deploy_id
