"""Canary analysis as arithmetic: compare the canary's error rate and p99 latency
with the stable release's, from counters the router exposes. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ReleaseSample:
    """Counters of one release over the analysis window (deltas, not totals)."""

    requests: int
    errors: int
    buckets: Sequence[tuple[float, int]]
    """Cumulative histogram: (upper bound in seconds, requests at or below it)."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def quantile(self, q: float) -> float:
        """The q-quantile, interpolated linearly inside its bucket as Prometheus's
        ``histogram_quantile`` does (inf when it lies beyond the last finite bound)."""
        total = self.buckets[-1][1] if self.buckets else 0
        if total == 0:
            return 0.0
        rank = q * total
        lower_bound, lower_count = 0.0, 0
        for bound, count in self.buckets:
            if count >= rank:
                if math.isinf(bound):
                    return math.inf
                inside = count - lower_count
                fraction = (rank - lower_count) / inside if inside else 1.0
                return lower_bound + (bound - lower_bound) * fraction
            lower_bound, lower_count = bound, count
        return math.inf


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


def judge(
    canary: ReleaseSample,
    stable: ReleaseSample | None,
    *,
    max_error_rate: float,
    max_p99_ratio: float,
    min_requests: int,
    latency: bool = True,
) -> Verdict:
    """Fail when the canary errs too often or (with ``latency``) is much slower than stable.

    With fewer than ``min_requests`` canary requests there is no evidence
    either way, and the step passes as ``inconclusive``.
    """
    if canary.requests < min_requests:
        return Verdict(True, f"inconclusive: {canary.requests} canary requests")
    if canary.error_rate > max_error_rate:
        return Verdict(
            False,
            f"canary 5xx rate {canary.error_rate:.1%} exceeds {max_error_rate:.1%} "
            f"({canary.errors} of {canary.requests})",
        )
    p99 = canary.quantile(0.99)
    if latency and stable is not None and stable.requests >= min_requests:
        stable_p99 = stable.quantile(0.99)
        if stable_p99 > 0 and p99 > stable_p99 * max_p99_ratio:
            return Verdict(
                False,
                f"canary p99 {p99 * 1000:.0f}ms exceeds {max_p99_ratio:g}x stable "
                f"{stable_p99 * 1000:.0f}ms",
            )
    errors = f"{canary.errors}/{canary.requests} errors"
    return Verdict(True, f"canary healthy: {errors}, p99 {p99 * 1000:.0f}ms")


def window(
    before: Mapping[str, ReleaseSample], after: Mapping[str, ReleaseSample], release: str
) -> ReleaseSample:
    """The counters of ``release`` accumulated between two scrapes."""
    end = after.get(release, ReleaseSample(0, 0, ()))
    start = before.get(release, ReleaseSample(0, 0, ()))
    starts = dict(start.buckets)
    buckets = tuple((bound, count - starts.get(bound, 0)) for bound, count in end.buckets)
    return ReleaseSample(end.requests - start.requests, end.errors - start.errors, buckets)
