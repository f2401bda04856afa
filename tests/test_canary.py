"""Canary arithmetic: quantiles from cumulative buckets, windows, verdicts."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from immute.core.canary import ReleaseSample, judge, window

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, math.inf)


def sample(latencies: list[float], errors: int = 0) -> ReleaseSample:
    buckets = tuple((b, sum(1 for x in latencies if x <= b)) for b in BOUNDS)
    return ReleaseSample(len(latencies), errors, buckets)


def test_quantile_interpolates_inside_the_bucket() -> None:
    fast = sample([0.004] * 50 + [0.008] * 50)
    assert 0.0098 < fast.quantile(0.99) <= 0.01
    assert fast.quantile(0.5) <= 0.005


def test_quantile_beyond_the_last_finite_bound_is_infinite() -> None:
    assert sample([5.0] * 10).quantile(0.99) == math.inf


@settings(deadline=None)
@given(st.lists(st.floats(0.0, 0.3), min_size=1, max_size=200), st.floats(0.01, 1.0))
def test_quantile_never_undershoots_the_bucket_below(latencies: list[float], q: float) -> None:
    value = sample(latencies).quantile(q)
    ordered = sorted(latencies)
    true = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
    lower = max([b for b in BOUNDS if b < true], default=0.0)
    assert value >= lower


def test_errors_fail_the_canary_and_few_requests_are_inconclusive() -> None:
    stable = sample([0.01] * 100)
    broken = sample([0.01] * 100, errors=10)
    verdict = judge(broken, stable, max_error_rate=0.01, max_p99_ratio=2, min_requests=20)
    assert not verdict.ok and "5xx rate 10.0%" in verdict.reason
    few = judge(
        sample([0.01] * 5, errors=5), stable, max_error_rate=0.01, max_p99_ratio=2, min_requests=20
    )
    assert few.ok and few.reason.startswith("inconclusive")


def test_slow_canary_fails_only_when_latency_is_judged() -> None:
    stable = sample([0.004] * 100)
    slow = sample([0.2] * 100)
    now = judge(slow, stable, max_error_rate=0.01, max_p99_ratio=2, min_requests=20, latency=False)
    assert now.ok
    end = judge(slow, stable, max_error_rate=0.01, max_p99_ratio=2, min_requests=20)
    assert not end.ok and "p99" in end.reason


def test_window_subtracts_the_earlier_scrape() -> None:
    before = {"v2": sample([0.01] * 10, errors=1)}
    after = {"v2": sample([0.01] * 30, errors=4)}
    delta = window(before, after, "v2")
    assert (delta.requests, delta.errors) == (20, 3)
    assert delta.buckets[-1] == (math.inf, 20)
