"""Reading the router's own metrics to judge a canary while its weight holds."""

from __future__ import annotations

import asyncio
import math
import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

from immute.core.canary import ReleaseSample, judge, window
from immute.core.spec import Analysis
from immute.errors import DeployError

CHECK_EVERY_S = 1.0


class CanaryJudge:
    """Scrapes ``http://METRICS/metrics`` of the router (on 127.0.0.1)."""

    def __init__(self, metrics_address: str | None) -> None:
        self.metrics_address = metrics_address

    async def analyse(
        self, service: str, release: str, *, pause: float, analysis: Analysis | None
    ) -> str:
        """Hold for ``pause`` seconds; raise DeployError as soon as the canary fails.

        Returns the final verdict, for the deploy's report.
        """
        if analysis is None or self.metrics_address is None:
            await asyncio.sleep(pause)
            return "no analysis configured"
        before = await asyncio.to_thread(self.scrape, service)
        stable = _stable(before, release)
        waited = 0.0
        # Errors are judged every second, so a broken canary is pulled at once;
        # latency only over the whole pause, where one slow second weighs little.
        while waited < pause:
            step = min(CHECK_EVERY_S, pause - waited)
            await asyncio.sleep(step)
            waited += step
            now = await asyncio.to_thread(self.scrape, service)
            verdict = judge(
                window(before, now, release),
                window(before, now, stable) if stable else None,
                max_error_rate=float(analysis.max_error_rate[:-1]) / 100,
                max_p99_ratio=analysis.max_p99_ratio,
                min_requests=analysis.min_requests,
                latency=waited >= pause,
            )
            if not verdict.ok:
                raise DeployError(f"canary analysis failed: {verdict.reason}")
            reason = verdict.reason
        return reason

    def scrape(self, service: str) -> dict[str, ReleaseSample]:
        url = f"http://{self.metrics_address}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
        return parse_samples(text, service)


def parse_samples(text: str, service: str) -> dict[str, ReleaseSample]:
    """Per-release request, 5xx and latency counters of one service."""
    requests: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    buckets: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("service") != service:
                continue
            release = labels.get("release", "")
            if sample.name == "immute_router_requests_total":
                requests[release] += int(sample.value)
                if labels.get("status") == "5xx":
                    errors[release] += int(sample.value)
            elif sample.name == "immute_router_request_duration_seconds_bucket":
                bound = math.inf if labels["le"] == "+Inf" else float(labels["le"])
                buckets[release].append((bound, int(sample.value)))
    return {
        release: ReleaseSample(requests[release], errors[release], tuple(sorted(buckets[release])))
        for release in set(requests) | set(buckets)
    }


def _stable(samples: dict[str, ReleaseSample], canary: str) -> str | None:
    others = sorted((s.requests, r) for r, s in samples.items() if r != canary)
    return others[-1][1] if others else None
