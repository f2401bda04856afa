"""Starting, checking, routing and stopping instances: the agent's hands.

Every change is recorded in the store before it is made (an instance is
``starting`` before its runtime starts it), so a restarted agent can always
tell what it may have left behind. The route of a process is derived from the
store: the ready instances, weighted by the canary shares when there are some.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets as random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from immute.agent.health import HealthMonitor, target_for
from immute.agent.releases import ReleaseContext
from immute.core.commands import expand_argv
from immute.core.health import HealthStatus, probe_of
from immute.core.instances import (
    InstanceInfo,
    InstanceLabels,
    InstanceSpec,
    InstanceState,
    Mount,
)
from immute.core.routes import MAX_WEIGHT, Target
from immute.errors import DeployError, ImmuteError
from immute.images.archive import export_image
from immute.images.host_run import HostRun, host_run, image_run
from immute.images.store import ImageStore
from immute.routers.base import Router
from immute.runtimes.base import Runtime
from immute.runtimes.ports import free_port
from immute.store.fleet import InstanceRecord
from immute.store.state import Store

Emit = Callable[[str], None]
LOG_TAIL = 12


@dataclass
class LogHooks:
    """Where instance output goes: the agent's log shipper follows each instance."""

    follow: Callable[[str], None] = lambda _id: None
    flush: Callable[[str], Awaitable[None]] = field(default=lambda _id: asyncio.sleep(0))


class Instances:
    def __init__(
        self,
        *,
        app: str,
        store: Store,
        runtime: Runtime,
        router: Router,
        images: ImageStore,
        secrets: Callable[[], Mapping[str, str]],
        logs: LogHooks | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.runtime = runtime
        self.router = router
        self.images = images
        self.secrets = secrets
        self.logs = logs or LogHooks()
        self.shares: dict[str, dict[int, float]] = {}

    def service(self, process: str) -> str:
        return f"{self.app}-{process}"

    def records(self, process: str | None = None) -> list[InstanceRecord]:
        return [r for r in self.store.fleet.live(self.app) if process in (None, r.process)]

    async def start(self, process: str, release: ReleaseContext, *, deadline: float) -> str:
        """Start one instance and wait until it is ready; it is left unrouted (standby).

        Raises DeployError naming the instance, why it failed and its last log
        lines; the failed instance is destroyed first.
        """
        spec = release.process(process)
        instance_id = f"{self.app}-{process}-{release.name}-{random.token_hex(3)}"
        port = free_port() if spec.routed else None
        self.store.fleet.add(
            id=instance_id, app=self.app, process=process, release=release.number, port=port
        )
        try:
            info = await self._launch(instance_id, process, release, port)
        except ImmuteError as exc:
            await self.destroy(instance_id)
            raise DeployError(f"{instance_id} could not start: {exc}") from exc
        self.logs.follow(instance_id)
        await self._wait_ready(info, process, release, deadline=deadline)
        self.store.fleet.set_state([instance_id], "standby")
        return instance_id

    async def _launch(
        self,
        instance_id: str,
        process: str,
        release: ReleaseContext,
        port: int | None,
        *,
        argv: list[str] | None = None,
    ) -> InstanceInfo:
        run, extra = await self._placement(process, release)
        env = dict(run.env)
        env.update(release.spec.env)
        available = self.secrets()
        env.update({name: available[name] for name in release.spec.secrets if name in available})
        if port is not None:
            env["PORT"] = str(port)
        env.update(
            IMMUTE_APP=self.app,
            IMMUTE_RELEASE=release.name,
            IMMUTE_PROCESS=process or "release",
            IMMUTE_INSTANCE=instance_id,
        )
        spec = release.process(process) if argv is None else None
        labels = InstanceLabels(
            instance_id=instance_id,
            app=self.app,
            process=process or "release",
            release=release.name,
            image_digest=release.image_digest,
            config_digest=release.config_digest,
        )
        return await self.runtime.start(
            InstanceSpec(
                labels=labels,
                root_dir=run.root,
                argv=tuple(expand_argv(spec.command if spec else argv or [], env)),
                workdir=run.workdir,
                env=env,
                port=port,
                stop_grace=spec.grace / 1000 if spec else 10.0,
                **extra,
            )
        )

    async def _placement(
        self, process: str, release: ReleaseContext
    ) -> tuple[HostRun, dict[str, Any]]:
        """How the image runs on the release's runtime, and what only containers need.

        The process runtime runs on the host stack (image paths rebased onto the
        materialised root); a container sees the image's own paths."""
        digest = release.image_digest
        if release.spec.runtime == "process":
            # The host stack: the image's own PATH first, then the host's for its tools.
            host = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
            return await asyncio.to_thread(host_run, self.images, digest, host_env=host), {}
        run = await asyncio.to_thread(image_run, self.images, digest)
        spec = release.spec
        resources = spec.processes[process].resources if process in spec.processes else None
        mounts = tuple(
            Mount(volume_name(self.app, name), v.path, bind=v.bind, read_only=v.read_only)
            for name, v in sorted(spec.volumes.items())
            if not v.processes or process in v.processes
        )
        return run, {
            "runtime": spec.runtime,
            "image_id": self.images.manifest(digest).config.digest,
            "image_export": functools.partial(export_image, self.images, digest),
            "scratch": tuple(spec.scratch),
            "mounts": mounts,
            "cpus": resources.cpus if resources else None,
            "memory": resources.memory if resources else None,
        }

    async def _wait_ready(
        self, info: InstanceInfo, process: str, release: ReleaseContext, *, deadline: float
    ) -> None:
        spec = release.process(process)
        check, policy = probe_of(spec.health.readiness, routed=bool(spec.routed))
        monitor = HealthMonitor(check, target_for(self.runtime, info), policy=policy)
        state = await monitor.wait_healthy(deadline=deadline)
        if state.status is HealthStatus.HEALTHY:
            return
        tail = await self.log_tail(info.instance_id)
        await self.destroy(info.instance_id)
        reason = state.last_detail or "no readiness within the deadline"
        raise DeployError(f"{info.instance_id} never became ready: {reason}", log_tail=tail)

    async def log_tail(self, instance_id: str) -> list[str]:
        """The last lines an instance wrote (for failure reports)."""
        lines: list[str] = []
        cursor = ""
        with contextlib.suppress(ImmuteError):
            for _ in range(100):
                batch = await self.runtime.read_logs(instance_id, cursor=cursor, limit=1000)
                lines = (lines + [line.text for line in batch.lines])[-LOG_TAIL:]
                if not batch.lines:
                    break
                cursor = batch.cursor
        return lines

    async def run_once(self, release: ReleaseContext, *, deadline: float) -> None:
        """Run the release command from the new image with the new config, to its end.

        Raises DeployError with its exit code and last lines unless it exits 0.
        """
        command = release.spec.release_command or []
        instance_id = f"{self.app}-release-{release.name}-{random.token_hex(3)}"
        self.store.fleet.add(
            id=instance_id, app=self.app, process="release", release=release.number, port=None
        )
        try:
            await self._launch(instance_id, "", release, None, argv=command)
        except ImmuteError as exc:
            await self.destroy(instance_id)
            raise DeployError(f"the release command could not start: {exc}") from exc
        self.logs.follow(instance_id)
        code = await self._wait_exit(instance_id, deadline=deadline)
        tail = await self.log_tail(instance_id)
        await self.destroy(instance_id)
        if code != 0:
            status = "did not finish in time" if code is None else f"exited with code {code}"
            raise DeployError(f"the release command {status}", log_tail=tail)

    async def _wait_exit(self, instance_id: str, *, deadline: float) -> int | None:
        give_up = time.monotonic() + deadline
        while time.monotonic() < give_up:
            for info in await self.runtime.observe():
                if info.instance_id == instance_id and info.state is InstanceState.EXITED:
                    return info.exit_code if info.exit_code is not None else -1
            await asyncio.sleep(0.1)
        return None

    async def route(self, process: str) -> None:
        """Point the router at exactly the ready instances of ``process``."""
        ready = [r for r in self.records(process) if r.state == "ready" and r.address]
        shares = self.shares.get(process)
        targets = [
            Target(r.address or "", _weight(r, ready, shares), "ready", f"v{r.release}")
            for r in ready
        ]
        await self.router.set_targets(self.service(process), targets)

    async def promote(self, ids: list[str]) -> None:
        """Standby instances join the route of their process."""
        self.store.fleet.set_state(ids, "ready")
        for process in {r.process for r in self.records() if r.id in ids}:
            await self.route(process)

    async def retire(
        self, records: list[InstanceRecord], *, drain: float, standby: float = 0
    ) -> None:
        """Take instances out of the route, let their requests finish, then stop them;
        with ``standby`` seconds they keep running, unrouted, until then."""
        # Instances switched away from are no longer in the route but may still
        # finish requests: drain every instance with an address, routed or not.
        routed = [r for r in records if r.state == "ready"]
        await asyncio.gather(
            *(self._drain(r, deadline=drain) for r in records if r.address),
            return_exceptions=True,
        )
        until = time.time() + standby if standby else None
        self.store.fleet.set_state(
            [r.id for r in records], "standby" if until else "stopping", standby_until=until
        )
        for process in {r.process for r in routed}:
            await self.route(process)
        if until is None:
            await asyncio.gather(*(self.destroy(r.id) for r in records))

    async def _drain(self, record: InstanceRecord, *, deadline: float) -> None:
        with contextlib.suppress(ImmuteError):
            await self.router.drain(
                self.service(record.process), record.address or "", deadline=deadline
            )

    async def destroy(self, instance_id: str) -> None:
        """Stop an instance, keep its last words in the log store, forget it."""
        self.store.fleet.set_state([instance_id], "stopping")
        await self.runtime.stop(instance_id)
        await self.logs.flush(instance_id)
        await self.runtime.remove(instance_id)
        self.store.fleet.set_state([instance_id], "gone")

    async def observed_running(self) -> dict[str, InstanceInfo]:
        return {
            info.instance_id: info
            for info in await self.runtime.observe()
            if info.state is InstanceState.RUNNING
        }


def volume_name(app: str, volume: str) -> str:
    """The engine's name of an app's volume: the same for every release."""
    return f"immute-{app}-{volume}"


def _weight(
    record: InstanceRecord, ready: list[InstanceRecord], shares: dict[int, float] | None
) -> int:
    """Equal weights, or each release's share split evenly across its instances."""
    if not shares:
        return 100
    peers = sum(1 for r in ready if r.release == record.release)
    share = shares.get(record.release, 0.0)
    return max(0, min(MAX_WEIGHT, round(share * 100 / max(peers, 1))))
