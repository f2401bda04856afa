"""Plans: the ordered steps that take observed instances to a desired release.

Pure. The agent observes which instances of which release are ready, asks for a
plan, journals it and executes it step by step; ``immute deploy --dry-run``
prints it. Because a plan is computed from what is observed, an interrupted
deploy is resumed by planning again from what runs now.

Rounding follows Kubernetes: ``max_surge`` rounds up, ``max_unavailable`` down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from immute.core.quantities import format_duration, resolve_count
from immute.core.spec import Strategy


@dataclass(frozen=True)
class RunReleaseCommand:
    release: str

    def describe(self) -> str:
        return f"run the release command of {self.release}"


@dataclass(frozen=True)
class Start:
    """Start instances and wait until each is ready; routed ones join the route."""

    process: str
    release: str
    count: int
    route: bool = True

    def describe(self) -> str:
        routed = "" if self.route else ", not routed yet"
        return f"start {self.count} {self.process} of {self.release}{routed}"


@dataclass(frozen=True)
class Switch:
    """Route exactly the ready instances of ``release``, in one atomic swap."""

    process: str
    release: str

    def describe(self) -> str:
        return f"switch {self.process} traffic to {self.release}"


@dataclass(frozen=True)
class SetWeights:
    """Split a routed process's requests between releases by percentage."""

    process: str
    weights: tuple[tuple[str, float], ...]

    def describe(self) -> str:
        split = ", ".join(f"{release} {weight:g}%" for release, weight in self.weights)
        return f"route {self.process}: {split}"


@dataclass(frozen=True)
class Analyse:
    """Hold the current weights for ``pause`` ms while judging the canary."""

    process: str
    release: str
    pause: int

    def describe(self) -> str:
        return f"analyse {self.release} for {format_duration(self.pause)}"


@dataclass(frozen=True)
class Stop:
    """Take instances out of the route, drain them, then stop them; with a
    ``standby`` time they stay up, unrouted, for an instant rollback until then."""

    process: str
    release: str
    count: int
    standby: int = 0

    def describe(self) -> str:
        keep = f", keep on standby for {format_duration(self.standby)}" if self.standby else ""
        return f"drain and stop {self.count} {self.process} of {self.release}{keep}"


Step = RunReleaseCommand | Start | Switch | SetWeights | Analyse | Stop


@dataclass(frozen=True)
class Desired:
    """The release to reach and, per process, how many instances and whether routed."""

    release: str
    instances: Mapping[str, int]
    routed: frozenset[str] = field(default_factory=frozenset)
    release_command: bool = False


Observed = Mapping[str, Mapping[str, int]]
"""Ready instances per process, per release: ``{"web": {"v3": 3, "v4": 1}}``."""


def plan(desired: Desired, observed: Observed, strategy: Strategy) -> list[Step]:
    """Every step from what is observed to ``desired`` under ``strategy``."""
    steps: list[Step] = []
    if desired.release_command and not _started_any(desired, observed):
        steps.append(RunReleaseCommand(desired.release))
    for process in sorted(desired.instances.keys() | observed.keys()):
        running = dict(observed.get(process, {}))
        target = desired.instances.get(process, 0)
        routed = process in desired.routed
        steps += _plan_process(process, desired.release, target, running, strategy, routed=routed)
    return steps


def _started_any(desired: Desired, observed: Observed) -> bool:
    return any(counts.get(desired.release, 0) for counts in observed.values())


def _plan_process(
    process: str,
    release: str,
    target: int,
    running: dict[str, int],
    strategy: Strategy,
    *,
    routed: bool,
) -> list[Step]:
    new = running.pop(release, 0)
    old = {r: n for r, n in sorted(running.items()) if n}
    if strategy.type == "blue-green":
        return _blue_green(process, release, target, new, old, strategy, routed=routed)
    if strategy.type == "canary" and routed and old:
        return _canary(process, release, target, new, old, strategy)
    if strategy.type == "recreate":
        return _recreate(process, release, target, new, old)
    return _rolling(process, release, target, new, old, strategy)


def _rolling(
    process: str, release: str, target: int, new: int, old: dict[str, int], strategy: Strategy
) -> list[Step]:
    surge = resolve_count(strategy.max_surge or 0, total=target, round_up=True)
    unavailable = resolve_count(strategy.max_unavailable or 0, total=target, round_up=False)
    if surge == 0 and unavailable == 0:
        surge = 1  # a rollout must progress; the spec refuses both zero, resumes may not
    steps: list[Step] = []
    if new > target:
        steps.append(Stop(process, release, new - target))
        new = target
    while new < target or old:
        up = min(target - new, target + surge - new - sum(old.values()))
        if up > 0:
            steps.append(Start(process, release, up))
            new += up
        down = min(sum(old.values()), new + sum(old.values()) - (target - unavailable))
        for old_release, count in list(old.items()):
            if down <= 0:
                break
            taken = min(count, down)
            steps.append(Stop(process, old_release, taken, standby=strategy.bake))
            down -= taken
            old[old_release] = count - taken
            if not old[old_release]:
                del old[old_release]
    return steps


def _blue_green(
    process: str,
    release: str,
    target: int,
    new: int,
    old: dict[str, int],
    strategy: Strategy,
    *,
    routed: bool,
) -> list[Step]:
    steps: list[Step] = []
    if target > new:
        steps.append(Start(process, release, target - new, route=not routed))
    elif new > target:
        steps.append(Stop(process, release, new - target))
    if routed:
        steps.append(Switch(process, release))
    standby = max(strategy.standby or 0, strategy.bake)
    steps += [Stop(process, r, n, standby=standby) for r, n in old.items()]
    return steps


def _canary(
    process: str, release: str, target: int, new: int, old: dict[str, int], strategy: Strategy
) -> list[Step]:
    steps: list[Step] = []
    stable = next(iter(old))
    for step in strategy.steps or []:
        weight = float(step.weight[:-1])
        wanted = max(1, math.ceil(target * weight / 100))
        if wanted > new:
            steps.append(Start(process, release, wanted - new, route=False))
            new = wanted
        steps.append(SetWeights(process, ((stable, 100 - weight), (release, weight))))
        steps.append(Analyse(process, release, step.pause))
    if target > new:
        steps.append(Start(process, release, target - new, route=False))
    steps.append(Switch(process, release))
    steps += [Stop(process, r, n, standby=strategy.bake) for r, n in old.items()]
    return steps


def _recreate(process: str, release: str, target: int, new: int, old: dict[str, int]) -> list[Step]:
    steps: list[Step] = [Stop(process, r, n) for r, n in old.items()]
    if target > new:
        steps.append(Start(process, release, target - new))
    elif new > target:
        steps.append(Stop(process, release, new - target))
    return steps


def describe(steps: list[Step]) -> list[str]:
    """One numbered line per step, as ``immute deploy --dry-run`` prints them."""
    return [f"{index}. {step.describe()}" for index, step in enumerate(steps, start=1)]
