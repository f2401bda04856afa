"""Running a plan: each step journaled before and after it runs, and on any
failure an abort that plans the way back to the previous release.

A deploy and its abort are the same machinery: ``converge`` observes what runs,
plans from there to a desired release and executes the steps. That is also how
an interrupted deploy is resumed after an agent restart.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from immute.agent.canary import CanaryJudge
from immute.agent.instances import Instances
from immute.agent.releases import ReleaseContext
from immute.core.planning import (
    Analyse,
    Desired,
    RunReleaseCommand,
    SetWeights,
    Start,
    Step,
    Stop,
    Switch,
    plan,
)
from immute.core.spec import Strategy
from immute.errors import DeployError
from immute.store.journal import DeployKind


class Emit(Protocol):
    """Reports a deploy's progress: ``step``, ``info``, ``log``, ``error``, ``done``, ``failed``."""

    def __call__(self, text: str, kind: str = "step") -> None: ...


ABORT_STRATEGY = Strategy.model_validate(
    {"type": "rolling", "max_surge": "100%", "max_unavailable": 0}
)


@dataclass
class Deploy:
    """One deploy, rollback or restart being carried out."""

    id: int
    kind: DeployKind
    target: ReleaseContext
    previous: ReleaseContext | None
    emit: Emit


class Executor:
    def __init__(self, instances: Instances, *, judge: CanaryJudge) -> None:
        self.instances = instances
        self.judge = judge
        self.store = instances.store

    def observed(self) -> dict[str, dict[str, int]]:
        """Instances that count per process and release: routed ones and unrouted
        new ones. Those kept on timed standby (for a rollback) are left to their
        timer, and a rollback to them promotes them first."""
        counts: dict[str, dict[str, int]] = {}
        for record in self.instances.records():
            if record.state == "ready" or (record.state == "standby" and not record.standby_until):
                per = counts.setdefault(record.process, {})
                per[f"v{record.release}"] = per.get(f"v{record.release}", 0) + 1
        return counts

    def plan_for(
        self, target: ReleaseContext, *, strategy: Strategy, release_command: bool
    ) -> list[Step]:
        desired = Desired(
            release=target.name,
            instances=target.instance_counts(),
            routed=target.routed(),
            release_command=release_command and target.spec.release_command is not None,
        )
        return plan(desired, self.observed(), strategy)

    async def converge(
        self, deploy: Deploy, *, strategy: Strategy, release_command: bool, journal: bool = True
    ) -> None:
        """Take what runs to ``deploy.target``; raise DeployError when a step fails.

        Each step is journaled before and after it runs, unless ``journal`` is
        False (the supervisor's own repairs are not deploys).
        """
        await self._promote_standby(deploy.target)
        steps = self.plan_for(deploy.target, strategy=strategy, release_command=release_command)
        for step in steps:
            seq = self.store.journal.step_started(deploy.id, step.describe()) if journal else 0
            deploy.emit(step.describe())
            started = time.monotonic()
            try:
                await self._run(step, deploy, strategy)
            except (DeployError, OSError) as exc:
                if journal:
                    self.store.journal.step_finished(deploy.id, seq, f"failed: {exc}")
                raise
            if journal:
                took = time.monotonic() - started
                self.store.journal.step_finished(deploy.id, seq, f"ok in {took:.2f}s")

    async def replace_all(self, deploy: Deploy) -> None:
        """``immute restart``: a fresh instance for every one of the release, one at
        a time, each ready and routed before the one it replaces is drained."""
        target = deploy.target
        deadline = target.spec.strategy.progress_deadline / 1000
        drain = target.spec.router.drain / 1000
        for record in list(self.instances.records()):
            if record.release != target.number or record.state != "ready":
                continue
            description = f"replace {record.id}"
            seq = self.store.journal.step_started(deploy.id, description)
            deploy.emit(description)
            fresh = await self.instances.start(record.process, target, deadline=deadline)
            if target.process(record.process).routed:
                await self.instances.promote([fresh])
            else:
                self.store.fleet.set_state([fresh], "ready")
            await self.instances.retire([record], drain=drain)
            self.store.journal.step_finished(deploy.id, seq, "ok")

    async def _promote_standby(self, target: ReleaseContext) -> None:
        """Standby instances running the target's image and config rejoin the route
        at once: a rollback within the standby or bake time is a flip, not a rollout."""
        running = await self.instances.observed_running()
        same = self._same_build(target)
        standby = [
            r
            for r in self.instances.records()
            if r.release in same and r.state == "standby" and r.standby_until and r.id in running
        ]
        if standby:
            self.store.fleet.adopt([r.id for r in standby], target.number)
            await self.instances.promote([r.id for r in standby])

    def _same_build(self, target: ReleaseContext) -> set[int]:
        """Releases whose instances are interchangeable with the target's."""
        return {
            r.number
            for r in self.store.releases.all(self.instances.app)
            if r.image_digest == target.image_digest and r.config_digest == target.config_digest
        }

    async def _run(self, step: Step, deploy: Deploy, strategy: Strategy) -> None:
        target = deploy.target
        deadline = strategy.progress_deadline / 1000
        if isinstance(step, Start):
            await self._start(step, target, deadline=deadline)
        elif isinstance(step, Stop):
            await self._stop(step, drain=target.spec.router.drain / 1000)
        elif isinstance(step, Switch):
            await self._switch(step)
        elif isinstance(step, SetWeights):
            await self._set_weights(step)
        elif isinstance(step, Analyse):
            verdict = await self.judge.analyse(
                self.instances.service(step.process),
                step.release,
                pause=step.pause / 1000,
                analysis=strategy.analysis,
            )
            deploy.emit(verdict, "info")
        elif isinstance(step, RunReleaseCommand):
            await self._release_command(target, deadline=deadline)

    async def _start(self, step: Start, target: ReleaseContext, *, deadline: float) -> None:
        started = await asyncio.gather(
            *(
                self.instances.start(step.process, target, deadline=deadline)
                for _ in range(step.count)
            ),
            return_exceptions=True,
        )
        failures = [s for s in started if isinstance(s, BaseException)]
        ok = [s for s in started if isinstance(s, str)]
        if failures:
            for instance_id in ok:
                await self.instances.destroy(instance_id)
            first = failures[0]
            if isinstance(first, DeployError):
                raise first
            raise DeployError(f"starting {step.process} failed: {first}") from first
        if step.route and target.process(step.process).routed:
            await self.instances.promote(ok)

    async def _stop(self, step: Stop, *, drain: float) -> None:
        number = int(step.release.removeprefix("v"))
        candidates = [
            r
            for r in self.instances.records(step.process)
            if r.release == number
            and (r.state == "ready" or (r.state == "standby" and not r.standby_until))
        ]
        # Unrouted (standby) instances go first: stopping them costs no traffic.
        candidates.sort(key=lambda r: r.state != "standby")
        await self.instances.retire(
            candidates[: step.count], drain=drain, standby=step.standby / 1000
        )

    async def _switch(self, step: Switch) -> None:
        number = int(step.release.removeprefix("v"))
        records = self.instances.records(step.process)
        self.instances.shares.pop(step.process, None)
        to_route = [
            r.id for r in records if r.release == number and r.state in ("ready", "standby")
        ]
        away = [r.id for r in records if r.release != number and r.state == "ready"]
        self.store.fleet.set_state(away, "standby")
        self.store.fleet.set_state(to_route, "ready")
        await self.instances.route(step.process)

    async def _set_weights(self, step: SetWeights) -> None:
        shares = {int(release.removeprefix("v")): weight for release, weight in step.weights}
        self.instances.shares[step.process] = shares
        joining = [
            r.id
            for r in self.instances.records(step.process)
            if r.release in shares and r.state == "standby"
        ]
        self.store.fleet.set_state(joining, "ready")
        await self.instances.route(step.process)

    async def _release_command(self, target: ReleaseContext, *, deadline: float) -> None:
        await self.instances.run_once(target, deadline=deadline)
