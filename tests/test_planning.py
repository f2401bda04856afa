"""The planner: strategy arithmetic and invariants, checked on simulated counts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from immute.core.planning import (
    Analyse,
    Desired,
    RunReleaseCommand,
    SetWeights,
    Start,
    Step,
    Stop,
    Switch,
    describe,
    plan,
)
from immute.core.quantities import resolve_count
from immute.core.spec import Strategy


def rolling(surge: int | str, unavailable: int | str, bake: str = "0s") -> Strategy:
    return Strategy.model_validate(
        {"type": "rolling", "max_surge": surge, "max_unavailable": unavailable, "bake": bake}
    )


def simulate(steps: list[Step], counts: dict[str, int]) -> list[dict[str, int]]:
    """Apply Start/Stop steps to per-release counts; return the counts after each."""
    history = []
    for step in steps:
        if isinstance(step, Start):
            counts[step.release] = counts.get(step.release, 0) + step.count
        elif isinstance(step, Stop):
            counts[step.release] -= step.count
            assert counts[step.release] >= 0
        history.append(dict(counts))
    return history


def test_rolling_three_instances_with_default_surge_goes_one_by_one() -> None:
    steps = plan(
        Desired("v2", {"web": 3}, frozenset({"web"})), {"web": {"v1": 3}}, rolling("25%", 0)
    )
    assert describe(steps) == [
        "1. start 1 web of v2",
        "2. drain and stop 1 web of v1",
        "3. start 1 web of v2",
        "4. drain and stop 1 web of v1",
        "5. start 1 web of v2",
        "6. drain and stop 1 web of v1",
    ]


def test_rolling_with_unavailability_only_stops_before_starting() -> None:
    steps = plan(Desired("v2", {"web": 2}), {"web": {"v1": 2}}, rolling(0, 1))
    assert steps == [
        Stop("web", "v1", 1),
        Start("web", "v2", 1),
        Stop("web", "v1", 1),
        Start("web", "v2", 1),
    ]


def test_release_command_runs_first_and_only_before_any_new_instance() -> None:
    desired = Desired("v2", {"web": 1}, frozenset({"web"}), release_command=True)
    assert plan(desired, {"web": {"v1": 1}}, rolling(1, 0))[0] == RunReleaseCommand("v2")
    resumed = plan(desired, {"web": {"v1": 1, "v2": 1}}, rolling(1, 0))
    assert not any(isinstance(s, RunReleaseCommand) for s in resumed)


def test_resume_plans_only_what_is_left() -> None:
    steps = plan(Desired("v2", {"web": 3}), {"web": {"v1": 1, "v2": 2}}, rolling(1, 0))
    assert steps == [Start("web", "v2", 1), Stop("web", "v1", 1)]


def test_blue_green_starts_unrouted_switches_once_and_keeps_standby() -> None:
    strategy = Strategy.model_validate({"type": "blue-green", "standby": "5m"})
    steps = plan(Desired("v2", {"web": 3}, frozenset({"web"})), {"web": {"v1": 3}}, strategy)
    assert steps == [
        Start("web", "v2", 3, route=False),
        Switch("web", "v2"),
        Stop("web", "v1", 3, standby=300_000),
    ]


def test_rollback_to_a_standby_set_is_a_flip() -> None:
    strategy = Strategy.model_validate({"type": "blue-green", "standby": "5m"})
    steps = plan(
        Desired("v1", {"web": 3}, frozenset({"web"})), {"web": {"v1": 3, "v2": 3}}, strategy
    )
    assert steps[0] == Switch("web", "v1")
    assert not any(isinstance(s, Start) for s in steps)


def test_canary_walks_the_weights_with_analysis() -> None:
    strategy = Strategy.model_validate(
        {"type": "canary", "steps": [{"weight": "10%", "pause": "5s"}, {"weight": "50%"}]}
    )
    steps = plan(Desired("v2", {"web": 4}, frozenset({"web"})), {"web": {"v1": 4}}, strategy)
    assert steps == [
        Start("web", "v2", 1, route=False),
        SetWeights("web", (("v1", 90.0), ("v2", 10.0))),
        Analyse("web", "v2", 5000),
        Start("web", "v2", 1, route=False),
        SetWeights("web", (("v1", 50.0), ("v2", 50.0))),
        Analyse("web", "v2", 30_000),
        Start("web", "v2", 2, route=False),
        Switch("web", "v2"),
        Stop("web", "v1", 4),
    ]


def test_recreate_stops_everything_first() -> None:
    strategy = Strategy.model_validate({"type": "recreate"})
    steps = plan(Desired("v2", {"web": 2}), {"web": {"v1": 2}}, strategy)
    assert steps == [Stop("web", "v1", 2), Start("web", "v2", 2)]


def test_a_removed_process_is_stopped() -> None:
    steps = plan(Desired("v2", {"web": 1}), {"web": {"v1": 1}, "worker": {"v1": 2}}, rolling(1, 0))
    assert steps[-1] == Stop("worker", "v1", 2)


sizes = st.integers(min_value=0, max_value=12)
quantity = st.one_of(st.integers(0, 5), st.integers(0, 100).map(lambda p: f"{p}%"))


@settings(deadline=None)
@given(sizes, sizes, quantity, quantity)
def test_rolling_respects_surge_and_unavailability(
    target: int, before: int, surge: int | str, unavailable: int | str
) -> None:
    max_surge = resolve_count(surge, total=target, round_up=True)
    max_unavailable = resolve_count(unavailable, total=target, round_up=False)
    if max_surge == 0 and max_unavailable == 0:
        max_surge = 1
    steps = plan(
        Desired("v2", {"web": target}), {"web": {"v1": before}}, rolling(surge, unavailable)
    )
    assert len(steps) <= 2 * (target + before) + 2
    history = simulate(steps, {"v1": before})
    final = history[-1] if history else {"v1": before}
    assert final.get("v2", 0) == target
    assert final.get("v1", 0) == 0
    for counts in history:
        total = counts.get("v1", 0) + counts.get("v2", 0)
        assert total <= max(before, target + max_surge)
        assert total >= min(before, target - max_unavailable)


@settings(deadline=None)
@given(sizes, st.sampled_from(["rolling", "blue-green", "canary", "recreate"]))
def test_every_strategy_ends_on_the_desired_counts(target: int, kind: str) -> None:
    strategy = Strategy.model_validate({"type": kind})
    if kind == "rolling":
        strategy = rolling("25%", 0)
    steps = plan(Desired("v2", {"web": target}, frozenset({"web"})), {"web": {"v1": 3}}, strategy)
    final = simulate(steps, {"v1": 3})[-1]
    assert final.get("v2", 0) == target
    assert final["v1"] == 0
