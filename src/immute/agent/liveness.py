"""Liveness: a monitor per routed instance whose process asks for one; an
instance that stops answering is reported so the supervisor replaces it."""

from __future__ import annotations

import asyncio

from immute.agent.health import HealthMonitor, target_for
from immute.agent.releases import ReleaseContext
from immute.core.health import HealthState, HealthStatus, probe_of
from immute.core.instances import InstanceInfo
from immute.runtimes.base import Runtime
from immute.store.fleet import InstanceRecord


class LivenessWatch:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.monitors: dict[str, asyncio.Task[HealthState]] = {}
        self.unhealthy: set[str] = set()

    def sync(
        self,
        records: list[InstanceRecord],
        running: dict[str, InstanceInfo],
        release: ReleaseContext,
    ) -> set[str]:
        """Watch exactly the ready instances of ``release`` that have a liveness probe;
        return those found unhealthy since the last call."""
        wanted = {
            r.id: r
            for r in records
            if r.state == "ready"
            and r.release == release.number
            and r.id in running
            and release.spec.processes.get(r.process) is not None
            and release.process(r.process).health.liveness is not None
        }
        for gone in set(self.monitors) - set(wanted):
            self.monitors.pop(gone).cancel()
        for instance_id, record in wanted.items():
            if instance_id not in self.monitors:
                self.monitors[instance_id] = asyncio.create_task(
                    self._watch(running[instance_id], record, release)
                )
        found, self.unhealthy = self.unhealthy, set()
        return found

    async def _watch(
        self, info: InstanceInfo, record: InstanceRecord, release: ReleaseContext
    ) -> HealthState:
        process = release.process(record.process)
        liveness = process.health.liveness
        assert liveness is not None
        check, policy = probe_of(liveness, routed=bool(process.routed))
        # A live instance has passed readiness: it starts out healthy here.
        monitor = HealthMonitor(check, target_for(self.runtime, info), policy=policy)
        monitor.state = HealthState(status=HealthStatus.HEALTHY)

        async def changed(state: HealthState) -> None:
            if state.status is HealthStatus.UNHEALTHY:
                self.unhealthy.add(record.id)

        monitor.on_change = changed
        return await monitor.run()

    def stop(self) -> None:
        for task in self.monitors.values():
            task.cancel()
        self.monitors.clear()
        self.unhealthy.clear()
