"""The health state machine, checked against properties over any sequence of results."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immute.core.health import (
    CommandCheck,
    HealthPolicy,
    HealthState,
    HealthStatus,
    HttpCheck,
    TcpCheck,
    UptimeCheck,
    probe_of,
    record_result,
    uptime_passed,
)
from immute.core.spec import Liveness, Readiness
from immute.errors import UsageError

policies = st.builds(
    HealthPolicy,
    healthy_threshold=st.integers(min_value=1, max_value=5),
    unhealthy_threshold=st.integers(min_value=1, max_value=5),
)
results = st.lists(st.booleans(), max_size=60)

# Pure and quick, but the machine is shared: a slow moment is not a failure.
relaxed = settings(deadline=None)


def run(policy: HealthPolicy, sequence: list[bool]) -> list[HealthState]:
    """The state after each result, in order."""
    states, state = [], HealthState()
    for passed in sequence:
        state = record_result(state, passed, policy=policy)
        states.append(state)
    return states


def trailing_run(sequence: list[bool], value: bool) -> int:
    count = 0
    for item in reversed(sequence):
        if item is not value:
            break
        count += 1
    return count


@relaxed
@given(policies, results)
def test_counters_are_the_trailing_runs(policy: HealthPolicy, sequence: list[bool]) -> None:
    for i, state in enumerate(run(policy, sequence)):
        prefix = sequence[: i + 1]
        assert state.passes_in_a_row == trailing_run(prefix, True)
        assert state.failures_in_a_row == trailing_run(prefix, False)


@relaxed
@given(policies, results)
def test_status_changes_only_when_a_run_reaches_its_threshold(
    policy: HealthPolicy, sequence: list[bool]
) -> None:
    before = HealthState()
    for state in run(policy, sequence):
        if state.status is not before.status:
            if state.status is HealthStatus.HEALTHY:
                assert state.passes_in_a_row == policy.healthy_threshold
            else:
                assert state.status is HealthStatus.UNHEALTHY
                assert state.failures_in_a_row == policy.unhealthy_threshold
        before = state


@relaxed
@given(policies, results)
def test_starting_until_enough_passes_in_a_row_whatever_fails(
    policy: HealthPolicy, sequence: list[bool]
) -> None:
    reached = False
    for i, state in enumerate(run(policy, sequence)):
        reached = reached or trailing_run(sequence[: i + 1], True) >= policy.healthy_threshold
        assert (state.status is HealthStatus.STARTING) is not reached


@relaxed
@given(policies, results)
def test_enough_passes_in_a_row_always_make_healthy(
    policy: HealthPolicy, sequence: list[bool]
) -> None:
    states = run(policy, sequence + [True] * policy.healthy_threshold)
    assert states[-1].status is HealthStatus.HEALTHY


@relaxed
@given(policies, results)
def test_enough_failures_in_a_row_make_a_once_healthy_instance_unhealthy(
    policy: HealthPolicy, sequence: list[bool]
) -> None:
    ready = [True] * policy.healthy_threshold
    states = run(policy, sequence + ready + [False] * policy.unhealthy_threshold)
    assert states[-1].status is HealthStatus.UNHEALTHY


@relaxed
@given(policies, st.lists(st.booleans(), min_size=1, max_size=30))
def test_a_healthy_instance_survives_fewer_failures_than_the_threshold(
    policy: HealthPolicy, noise: list[bool]
) -> None:
    """Hysteresis: one slow answer does not take a healthy instance out of the route."""
    healthy = run(policy, [True] * policy.healthy_threshold)[-1]
    state = healthy
    for passed in noise:
        state = record_result(state, passed, policy=policy)
        if state.failures_in_a_row >= policy.unhealthy_threshold:
            break
        assert state.status is HealthStatus.HEALTHY


def test_thresholds_below_one_are_refused() -> None:
    with pytest.raises(UsageError, match="at least 1"):
        HealthPolicy(healthy_threshold=0)
    with pytest.raises(UsageError, match="positive"):
        HealthPolicy(interval=0)


def test_the_reason_of_the_last_result_is_kept() -> None:
    state = record_result(HealthState(), False, policy=HealthPolicy(), detail="HTTP 503")
    assert state.last_detail == "HTTP 503"


@pytest.mark.parametrize(
    ("now", "running", "expected"),
    [(104.9, True, False), (105.0, True, True), (200.0, False, False)],
)
def test_a_worker_is_healthy_once_it_has_stayed_up_its_grace(
    now: float, running: bool, expected: bool
) -> None:
    assert uptime_passed(started_at=100.0, now=now, running=running, grace=5.0) is expected


def test_spec_sections_become_checks_and_policies() -> None:
    readiness = Readiness.model_validate({"http": "/healthz", "interval": "500ms"})
    check, policy = probe_of(readiness, routed=True)
    assert check == HttpCheck("/healthz")
    assert (policy.interval, policy.timeout, policy.healthy_threshold) == (0.5, 1.0, 2)
    liveness = Liveness.model_validate({"command": "check --now", "unhealthy_threshold": 5})
    check, policy = probe_of(liveness, routed=False)
    assert check == CommandCheck(("check", "--now"))
    assert (policy.interval, policy.unhealthy_threshold) == (10.0, 5)


def test_without_a_probe_routed_processes_get_tcp_and_workers_uptime() -> None:
    assert probe_of(Readiness(), routed=True)[0] == TcpCheck()
    assert probe_of(Readiness(), routed=False)[0] == UptimeCheck(grace=1.0)
    assert probe_of(Readiness.model_validate({"tcp": True}), routed=False)[0] == TcpCheck()
