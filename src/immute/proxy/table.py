"""The live route table: targets with their pools and in-flight work, per service.

Values from `immute.core.routes` describe what the table should be; this module
keeps what a running proxy needs beside them: idle upstream connections,
in-flight exchanges and tunnels (for draining), requests held while a service
has no ready target, and counters.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from immute.core.routes import (
    Route,
    RouteTable,
    Sticky,
    Target,
    TargetState,
    cumulative,
    pick_sticky,
    pick_weighted,
    service_for_host,
    split_address,
)

if TYPE_CHECKING:
    from immute.proxy.upstream import UpstreamConn


class Cuttable(Protocol):
    """In-flight work on a target that a drain deadline can end."""

    def cut(self) -> None: ...


class Waiter(Protocol):
    """A request held until its service has a ready target."""

    def wake(self) -> None: ...


class LiveTarget:
    """One target as the proxy sees it; kept across set swaps while its address stays."""

    def __init__(self, target: Target) -> None:
        self.address = target.address
        self.host, self.port = split_address(target.address)
        self.weight = target.weight
        self.release = target.release
        self.state: TargetState | str = target.state
        self.idle: list[UpstreamConn] = []
        self.inflight: set[Cuttable] = set()
        self.ejected_until = 0.0
        self.requests = 0
        self.failures = 0
        self._empty: list[asyncio.Future[None]] = []
        self.on_empty: Callable[[], None] | None = None

    @property
    def takes_new(self) -> bool:
        return self.state == "ready"

    def describe(self) -> Target:
        state: TargetState = "draining" if self.state != "ready" else "ready"
        return Target(self.address, self.weight, state, self.release)

    def close_idle(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()

    def begin(self, work: Cuttable) -> None:
        self.inflight.add(work)

    def end(self, work: Cuttable) -> None:
        self.inflight.discard(work)
        if self.inflight:
            return
        if self._empty:
            waiters, self._empty = self._empty, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        if self.on_empty is not None:
            on_empty, self.on_empty = self.on_empty, None
            on_empty()

    def when_empty(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.inflight:
            self._empty.append(fut)
        else:
            fut.set_result(None)
        return fut

    def cut_all(self) -> int:
        work = list(self.inflight)
        for item in work:
            item.cut()
        return len(work)


class LiveService:
    def __init__(self, route: Route) -> None:
        self.name = route.service
        self.hosts = route.hosts
        self.sticky: Sticky | None = route.sticky
        self.paused = route.paused
        self.targets: list[LiveTarget] = []
        self.ready: list[LiveTarget] = []
        self._cumulative: list[int] = []
        self.only: LiveTarget | None = None
        self.held = 0
        self.retries = 0
        self.hold_timeouts = 0

    def reindex(self) -> None:
        self.ready = [t for t in self.targets if t.takes_new and t.weight > 0]
        self._cumulative = cumulative([t.weight for t in self.ready])
        # The common case, decided once per table change instead of per request.
        self.only = self.ready[0] if len(self.ready) == 1 and not self.paused else None

    def pick(
        self, now: float, *, sticky_key: str | None, exclude: Iterable[LiveTarget]
    ) -> LiveTarget | None:
        """A ready target by weight (or by sticky key), skipping `exclude` and, while
        others remain, targets recently ejected for refusing connections."""
        ready = self.ready
        if self.paused or not ready:
            return None
        if len(ready) == 1 and not exclude and sticky_key is None:
            return ready[0]
        excluded = set(exclude)
        if sticky_key is not None:
            return self._pick_sticky(sticky_key, now, excluded)
        if not excluded:
            choice = self.ready[pick_weighted(self._cumulative, random.random())]
            if choice.ejected_until <= now:
                return choice
        candidates = [t for t in self.ready if t not in excluded]
        healthy = [t for t in candidates if t.ejected_until <= now] or candidates
        if not healthy:
            return None
        index = pick_weighted(cumulative([t.weight for t in healthy]), random.random())
        return healthy[index]

    def _pick_sticky(self, key: str, now: float, excluded: set[LiveTarget]) -> LiveTarget | None:
        candidates = [t for t in self.ready if t not in excluded]
        release = self.release_for(key, candidates)
        same = [t for t in candidates if t.release == release] or candidates
        if not same:
            return None
        healthy = [t for t in same if t.ejected_until <= now] or same
        return healthy[pick_weighted(cumulative([t.weight for t in healthy]), random.random())]

    @staticmethod
    def release_for(key: str, candidates: list[LiveTarget]) -> str | None:
        weights: dict[str, int] = {}
        for target in candidates:
            weights[target.release] = weights.get(target.release, 0) + target.weight
        return key if key in weights else pick_sticky(weights, key)

    def describe(self) -> Route:
        return Route(
            service=self.name,
            targets=tuple(t.describe() for t in self.targets),
            hosts=self.hosts,
            sticky=self.sticky,
            paused=self.paused,
        )


class LiveTable:
    """Every service, the host index, and the requests held for lack of a target."""

    def __init__(self, on_change: Callable[[RouteTable], None]) -> None:
        self.services: dict[str, LiveService] = {}
        self._hosts: dict[str, tuple[str, ...]] = {}
        self._held: set[Waiter] = set()
        self._on_change = on_change
        self.lone: LiveService | None = None

    def resolve(self, host: str) -> LiveService | None:
        if self.lone is not None:
            return self.lone
        name = service_for_host(self._hosts, host)
        return self.services.get(name) if name else None

    def hold(self, waiter: Waiter) -> None:
        self._held.add(waiter)

    def release(self, waiter: Waiter) -> None:
        self._held.discard(waiter)

    def describe(self) -> RouteTable:
        return RouteTable(routes={n: s.describe() for n, s in self.services.items()})

    def apply(self, route: Route) -> None:
        """Replace a service's whole target set at once; targets that leave finish
        their in-flight work but take nothing new, and their idle connections close."""
        service = self.services.get(route.service) or LiveService(route)
        service.hosts, service.sticky, service.paused = route.hosts, route.sticky, route.paused
        old = {t.address: t for t in service.targets}
        fresh = []
        for target in route.targets:
            live = old.pop(target.address, None) or LiveTarget(target)
            live.weight, live.release, live.state = target.weight, target.release, target.state
            live.on_empty = None
            fresh.append(live)
            if live.state != "ready":
                live.close_idle()
        for gone in old.values():
            gone.close_idle()
            if gone.inflight:
                # Still busy: it stays listed (and drainable) until its work ends.
                gone.state = "draining"
                gone.on_empty = lambda t=gone: self.finish_drain(service, t)
                fresh.append(gone)
            else:
                gone.state = "removed"
        service.targets = fresh
        service.reindex()
        self.services[route.service] = service
        self._changed()

    def remove_service(self, name: str) -> bool:
        service = self.services.pop(name, None)
        if service is None:
            return False
        for target in service.targets:
            target.state = "removed"
            target.close_idle()
        service.reindex()
        self._changed()
        return True

    def set_paused(self, name: str, paused: bool) -> None:
        self.services[name].paused = paused
        self.services[name].reindex()
        self._changed()

    def set_weights(self, name: str, weights: dict[str, int]) -> None:
        service = self.services[name]
        for target in service.targets:
            target.weight = weights.get(target.address, target.weight)
        service.reindex()
        self._changed()

    def start_drain(self, service: LiveService, target: LiveTarget) -> None:
        target.state = "draining"
        target.close_idle()
        service.reindex()
        self._changed()

    def finish_drain(self, service: LiveService, target: LiveTarget) -> None:
        if target in service.targets and target.state == "draining":
            service.targets.remove(target)
            target.state = "removed"
            service.reindex()
            self._changed()

    def _changed(self) -> None:
        self._hosts = {n: s.hosts for n, s in self.services.items()}
        self.lone = next(iter(self.services.values())) if len(self.services) == 1 else None
        self._on_change(self.describe())
        held, self._held = self._held, set()
        for waiter in held:
            waiter.wake()
