"""The agent: one long-running control plane per app state directory.

It serves the API on a unix socket, drives the router process and the
instances, runs deploys, rollbacks and restarts, and supervises what runs. It is
never in the request path: the router and the instances keep serving while it
is stopped, killed or upgraded, and a new agent re-adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from immute.agent.canary import CanaryJudge
from immute.agent.deploys import ABORT_STRATEGY, Deploy, Emit, Executor
from immute.agent.instances import Instances, LogHooks
from immute.agent.liveness import LivenessWatch
from immute.agent.releases import ReleaseContext
from immute.agent.runtime_set import RuntimeSet
from immute.agent.secret_values import SecretValues
from immute.core.release import Release, ReleaseStatus
from immute.core.routes import split_address
from immute.core.spec import Spec
from immute.errors import AgentError, DeployError, ImmuteError, NotFoundError
from immute.images.prune import prune as prune_images
from immute.images.store import ImageStore
from immute.proxy.sockets import resolved
from immute.routers.builtin import BuiltinRouter, start_router
from immute.runtimes.ports import free_port
from immute.store.journal import DeployKind
from immute.store.locks import pid_alive
from immute.store.state import Store

log = logging.getLogger("immute.agent")

SOCKET_NAME = "agent.sock"
ROUTER_SOCKET = "router.sock"
SUPERVISE_EVERY_S = 1.0
MAX_BACKOFF_S = 30.0


@contextlib.contextmanager
def single_agent(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's agent lock for the process's life (one agent per app)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "agent.lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AgentError(f"an agent already runs for {state_dir}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


class Agent:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.store = Store.open(state_dir)
        self.images = ImageStore(state_dir / "images")
        self.router = BuiltinRouter(state_dir / ROUTER_SOCKET)
        self.secrets = SecretValues()
        self.metrics_address: str | None = None
        self.events: dict[int, list[dict[str, Any]]] = {}
        self.deploy_task: asyncio.Task[None] | None = None
        self.current: Deploy | None = None
        self.stopping = asyncio.Event()
        # Set by `immute down`: supervision stops before anything is stopped.
        self.quiet = asyncio.Event()
        self.backoff: dict[str, float] = {}
        # Deploys and the supervisor's repairs never interleave.
        self.busy = asyncio.Lock()
        self._instances: Instances | None = None
        self.runtime = RuntimeSet(state_dir)
        self.logs = LogHooks()
        self._liveness: LivenessWatch | None = None

    # -- what the agent manages --------------------------------------------------

    def app(self) -> str | None:
        releases = self.store.releases.all(limit=1)
        return releases[0].app if releases else None

    def instances(self) -> Instances:
        if self._instances is None:
            app = self.app()
            if app is None:
                raise NotFoundError("nothing deployed yet")
            self._instances = Instances(
                app=app,
                store=self.store,
                runtime=self.runtime,
                router=self.router,
                images=self.images,
                secrets=self.secrets.values,
                logs=self.logs,
            )
        return self._instances

    def liveness(self, instances: Instances) -> LivenessWatch:
        if self._liveness is None:
            self._liveness = LivenessWatch(instances.runtime)
        return self._liveness

    def executor(self) -> Executor:
        return Executor(self.instances(), judge=CanaryJudge(self.metrics_address))

    def context(self, release: Release) -> ReleaseContext:
        spec = Spec.model_validate(self.store.journal.spec(release.spec_digest), strict=False)
        return ReleaseContext(release.number, release.image_digest, release.config_digest, spec)

    def active(self, app: str) -> Release | None:
        return next((r for r in self.store.releases.all(app) if r.status == "active"), None)

    async def ensure_router(self, spec: Spec, emit: Emit | None = None) -> None:
        """Start the router unless one already serves our admin socket as the spec
        says. One listening elsewhere, or holding requests for another time, is
        replaced by a new process that takes over its route table and in-flight
        work (a handover: no request lost) and listens where the spec says."""
        try:
            state = await self.router.status()
        except ImmuteError:
            state = None
        if state is not None:
            changes = router_changes(state, spec)
            if not changes:
                return
            message = f"router: {', '.join(changes)} (a new router process takes over)"
            log.info("%s", message)
            if emit is not None:
                emit(message)
        metrics = f"127.0.0.1:{free_port()}"
        process = await asyncio.to_thread(
            start_router,
            listen=spec.router.listen,
            admin=self.state_dir / ROUTER_SOCKET,
            metrics=metrics,
            log=self.state_dir / "router.log",
            extra=["--hold-timeout", str(spec.router.hold / 1000)],
        )
        (self.state_dir / "router.pid").write_text(f"{process.pid}\n")
        self.metrics_address = metrics
        self._remember_metrics()

    async def stop_router(self) -> None:
        """Stop the router this agent started (``immute down``), if it still runs."""
        path = self.state_dir / "router.pid"
        try:
            pid = int(path.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"immute.proxy" not in cmdline:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not pid_alive(pid):
                break
            await asyncio.sleep(0.05)
        path.unlink(missing_ok=True)

    def _remember_metrics(self) -> None:
        path = self.state_dir / "router.metrics"
        if self.metrics_address:
            path.write_text(self.metrics_address)
        elif path.exists():
            self.metrics_address = path.read_text().strip() or None

    # -- deploys -----------------------------------------------------------------

    def emitter(self, deploy_id: int) -> Emit:
        events = self.events.setdefault(deploy_id, [])

        def emit(text: str, kind: str = "step") -> None:
            event = {"seq": len(events), "at": time.time(), "kind": kind, "text": text}
            events.append({**event, **self.snapshot()})
            log.info("deploy %s: %s", deploy_id, text)

        return emit

    def snapshot(self) -> dict[str, Any]:
        """Routed instances per release, and each routed process's traffic split."""
        if self._instances is None:
            return {}
        instances = self._instances
        ready: dict[str, int] = {}
        split: dict[str, dict[str, float]] = {}
        for record in instances.records():
            if record.state != "ready":
                continue
            release = f"v{record.release}"
            ready[release] = ready.get(release, 0) + 1
            if record.address:
                per = split.setdefault(record.process, {})
                per[release] = per.get(release, 0) + 1
        for process, counts in split.items():
            shares = instances.shares.get(process)
            total = sum(counts.values())
            split[process] = {
                release: round(shares.get(int(release[1:]), 0.0) if shares else 100 * n / total, 1)
                for release, n in counts.items()
            }
        return {"ready": ready, "traffic": split}

    def begin(
        self, *, app: str, kind: DeployKind, target: Release, previous: Release | None
    ) -> int:
        """Start a deploy task; the caller holds the app's deploy lock."""
        deploy_id = self.store.journal.begin(
            app, kind, release=target.number, previous=previous.number if previous else None
        )
        emit = self.emitter(deploy_id)
        deploy = Deploy(
            deploy_id,
            kind,
            self.context(target),
            self.context(previous) if previous else None,
            emit,
        )
        self.current = deploy
        self.deploy_task = asyncio.create_task(self._carry_out(deploy, app, target, previous))
        return deploy_id

    async def _carry_out(
        self, deploy: Deploy, app: str, target: Release, previous: Release | None
    ) -> None:
        async with self.busy:
            await self._carry_out_alone(deploy, app, target, previous)

    async def _carry_out_alone(
        self, deploy: Deploy, app: str, target: Release, previous: Release | None
    ) -> None:
        started = time.monotonic()
        try:
            await self.ensure_router(deploy.target.spec, deploy.emit)
            executor = self.executor()  # after: its canary judge reads the router's metrics
            if deploy.kind == "restart":
                await executor.replace_all(deploy)
            else:
                await executor.converge(
                    deploy,
                    strategy=deploy.target.spec.strategy,
                    release_command=deploy.kind == "deploy",
                )
        except (DeployError, ImmuteError, OSError) as exc:
            await self._abort(deploy, app, target, previous, exc)
        else:
            await self._succeeded(deploy, app, target, previous, time.monotonic() - started)
        finally:
            self.current = None
            with contextlib.suppress(ImmuteError):
                self.store.locks.release(app, pid=os.getpid())

    async def _succeeded(
        self, deploy: Deploy, app: str, target: Release, previous: Release | None, took: float
    ) -> None:
        # Idempotent: an agent killed between these writes and the journal's
        # "done" resumes the deploy and passes here again.
        if deploy.kind != "restart":
            if self.store.releases.get(app, target.number).status == "pending":
                self.store.releases.set_status(app, target.number, "active")
            if previous is not None and previous.number != target.number:
                moved: ReleaseStatus = "rolled-back" if deploy.kind == "rollback" else "superseded"
                if self.store.releases.get(app, previous.number).status == "active":
                    self.store.releases.set_status(app, previous.number, moved)
        try:
            deploy.emit(await self.retain(app, deploy.target), "info")
        except (ImmuteError, OSError) as exc:
            deploy.emit(f"retention failed (nothing was lost): {exc}", "error")
        deploy.emit(f"{deploy.kind} of {target.name} done in {took:.2f}s", "done")
        self.store.journal.finish(deploy.id, "done")

    async def retain(self, app: str, release: ReleaseContext) -> str:
        """Prune what ``retain`` no longer keeps: old releases (never one whose
        instances run), then images no kept release or instance uses."""
        retain = release.spec.retain
        live = {r.release for r in self.store.fleet.live(app)}
        releases = self.store.releases.all(app)
        doomed = [
            r.number
            for r in releases[retain.releases :]
            if r.status not in ("active", "pending") and r.number not in live
        ]
        pruned = self.store.releases.prune(app, doomed) if doomed else []
        kept = self.store.releases.all(app)
        referenced = {r.image_digest for r in kept[: retain.images]}
        referenced |= {r.image_digest for r in kept if r.number in live or r.status == "active"}
        configs = await asyncio.to_thread(self._config_digests)
        report = await asyncio.to_thread(prune_images, self.images, referenced)
        gone = {configs[d] for d in report.images if d in configs}
        engine = await self.runtime.forget_images(gone) if gone else []
        cutoff = datetime.now(UTC) - timedelta(milliseconds=retain.logs)
        lines = self.store.logs.prune(cutoff, app=app)
        return (
            f"retention: {len(pruned)} releases, {len(report.images)} images "
            f"({report.freed_bytes // 1024} KiB), {lines} log lines pruned"
            + (f"; {len(engine)} images removed from the engine" if engine else "")
        )

    def _config_digests(self) -> dict[str, str]:
        """Manifest digest -> config digest (the engine's image ID) of stored images."""
        return {
            i.digest: self.images.manifest(i.digest).config.digest for i in self.images.images()
        }

    async def _abort(
        self,
        deploy: Deploy,
        app: str,
        target: Release,
        previous: Release | None,
        exc: BaseException,
    ) -> None:
        deploy.emit(f"failed: {exc}", "error")
        for line in getattr(exc, "log_tail", []):
            deploy.emit(line, "log")
        way_back = deploy.previous or (deploy.target if deploy.kind == "restart" else None)
        try:
            if way_back is not None:
                deploy.emit(f"returning all traffic to {way_back.name}", "step")
                await self.ensure_router(way_back.spec, deploy.emit)
                back = Deploy(deploy.id, deploy.kind, way_back, None, deploy.emit)
                await self.executor().converge(back, strategy=ABORT_STRATEGY, release_command=False)
            else:
                await self._stop_release(target.number)
        except (ImmuteError, OSError) as again:
            deploy.emit(f"the way back failed too: {again}", "error")
        if deploy.kind != "restart":
            self.store.releases.set_status(app, target.number, "failed")
        self.store.journal.finish(deploy.id, "failed", reason=str(exc))
        deploy.emit(f"{deploy.kind} of {target.name} failed: {exc}", "failed")

    async def _stop_release(self, number: int) -> None:
        instances = self.instances()
        await instances.retire([r for r in instances.records() if r.release == number], drain=30)

    def stop_soon(self) -> None:
        """Exit once the answer to the current API call has gone out."""
        asyncio.get_running_loop().call_later(0.2, self.stopping.set)

    # -- start-up and supervision ------------------------------------------------

    async def recover(self) -> None:
        """Adopt what a previous agent left: forget the dead, stop the half-started,
        stop strangers, make every route point at live instances only, and resume
        an interrupted deploy."""
        self._remember_metrics()
        app = self.app()
        if app is None:
            return
        active = self.active(app)
        running_deploy = self.store.journal.running(app)
        # The router as the deploy being resumed left it, else as the active release has it.
        spec_release = (
            self.store.releases.get(app, running_deploy.release) if running_deploy else active
        )
        if spec_release is not None:
            try:
                await self.ensure_router(self.context(spec_release).spec)
            except ImmuteError as exc:
                log.warning("router: %s", exc)  # it keeps serving as it is
        instances = self.instances()
        running = await instances.observed_running()
        records = instances.records()
        for record in records:
            if record.id not in running or record.state in ("starting", "stopping"):
                await instances.destroy(record.id)
        known = {r.id for r in records}
        for stranger in set(running) - known:
            await instances.runtime.stop(stranger)
            await instances.runtime.remove(stranger)
        for process in {r.process for r in records}:
            await instances.route(process)
        for record in instances.records():
            self.logs.follow(record.id)
        if running_deploy is not None:
            self._resume(
                app,
                running_deploy.id,
                running_deploy.kind,
                running_deploy.release,
                running_deploy.previous,
            )

    def _resume(
        self, app: str, deploy_id: int, kind: DeployKind, number: int, previous: int | None
    ) -> None:
        target = self.store.releases.get(app, number)
        before = self.store.releases.get(app, previous) if previous else None
        self.store.locks.acquire(app, message=f"resume {kind} of v{number}", pid=os.getpid())
        emit = self.emitter(deploy_id)
        emit(f"agent restarted: resuming the {kind} of v{number}", "info")
        deploy = Deploy(
            deploy_id, kind, self.context(target), self.context(before) if before else None, emit
        )
        self.current = deploy
        self.deploy_task = asyncio.create_task(self._carry_out(deploy, app, target, before))

    async def supervise(self) -> None:
        """Keep the active release whole: replace instances that died, stop
        standby instances whose time is up."""
        while not self.stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), SUPERVISE_EVERY_S)
            if self.current is not None or self.stopping.is_set() or self.quiet.is_set():
                continue
            try:
                async with self.busy:
                    if self.current is None and not self.quiet.is_set():
                        await self._supervise_once()
            except (ImmuteError, OSError) as exc:
                log.warning("supervision: %s", exc)

    async def _supervise_once(self) -> None:
        app = self.app()
        active = self.active(app) if app else None
        if active is None:
            return
        instances = self.instances()
        running = await instances.observed_running()
        now = time.time()
        for record in instances.records():
            if record.id not in running:
                log.warning("instance %s exited; replacing it", record.id)
                await instances.destroy(record.id)
                if record.state == "ready":
                    await instances.route(record.process)
            elif record.state == "standby" and record.standby_until and record.standby_until < now:
                await instances.destroy(record.id)
        target = self.context(active)
        unhealthy = self.liveness(instances).sync(instances.records(), running, target)
        for record in instances.records():
            if record.id in unhealthy:
                log.warning("instance %s failed its liveness probe; replacing it", record.id)
                await instances.retire([record], drain=1.0)
        if time.monotonic() < self.backoff.get("until", 0.0):
            return
        deploy = Deploy(0, "restart", target, None, _quiet)
        executor = self.executor()
        if not executor.plan_for(target, strategy=ABORT_STRATEGY, release_command=False):
            self.backoff.pop("delay", None)
            return
        try:
            await executor.converge(
                deploy, strategy=ABORT_STRATEGY, release_command=False, journal=False
            )
            self.backoff.pop("delay", None)
        except DeployError as exc:
            delay = min(MAX_BACKOFF_S, self.backoff.get("delay", 0.5) * 2)
            self.backoff.update(delay=delay, until=time.monotonic() + delay)
            log.warning("replacing instances failed (retry in %.0fs): %s", delay, exc)


def _quiet(text: str, kind: str = "step") -> None:
    log.info("supervisor: %s", text)


def router_changes(state: dict[str, object], spec: Spec) -> list[str]:
    """How the running router (its admin state) differs from what the spec asks."""
    changes = []
    running = str(state.get("listen", ""))
    if running and not _same_socket(running, spec.router.listen):
        if split_address(running)[1] == split_address(spec.router.listen)[1]:
            # Both addresses cannot be bound at once, so no handover can do it.
            raise DeployError(
                f"router.listen: {running} -> {spec.router.listen} keeps the port, which "
                "cannot be handed over without refusing connections; run `immute down` first"
            )
        changes.append(f"listen {running} -> {spec.router.listen}")
    hold = state.get("hold_timeout")
    if isinstance(hold, int | float) and hold != spec.router.hold / 1000:
        changes.append(f"hold {hold:g}s -> {spec.router.hold / 1000:g}s")
    return changes


def _same_socket(one: str, other: str) -> bool:
    """Whether two HOST:PORT addresses name one listening socket."""
    first, second = split_address(one), split_address(other)
    return first == second or bool(resolved(first) & resolved(second))
