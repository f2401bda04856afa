"""What the proxy tells the outside: Prometheus metrics and the JSON access log.

Per-request work is one dict lookup and a few integer increments; the
Prometheus families are built from those counts when scraped, so the request
path never touches prometheus_client's locks.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from immute.proxy.exchange import Exchange
    from immute.proxy.router import Router

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _ReleaseCounts:
    """What one release of one service answered: status classes and a latency histogram."""

    __slots__ = ("latency", "statuses", "total")

    def __init__(self) -> None:
        self.statuses = [0] * 10  # by status // 100; upstreams may send any 3-digit code
        self.latency = [0] * (len(BUCKETS) + 1)
        self.total = 0.0


class Metrics(Collector):
    def __init__(self, router: Router) -> None:
        self.router = router
        # Keyed by (service, release): canary analysis compares the new release's
        # p99 with the stable one's through the release label.
        self.counts: dict[tuple[str, str], _ReleaseCounts] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def observe(self, exchange: Exchange, release: str, seconds: float) -> None:
        service = exchange.service
        key = (service.name if service is not None else "", release)
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = _ReleaseCounts()
        counts.statuses[exchange.status // 100] += 1
        counts.latency[bisect.bisect_left(BUCKETS, seconds)] += 1
        counts.total += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "immute_router_requests",
            "Requests answered, by service, release and status class",
            labels=["service", "release", "status"],
        )
        latency = HistogramMetricFamily(
            "immute_router_request_duration_seconds",
            "Time from request head to end of response",
            labels=["service", "release"],
        )
        for (service, release), counts in sorted(self.counts.items()):
            for status, count in enumerate(counts.statuses):
                if count:
                    requests.add_metric([service, release, f"{status}xx"], count)
            running, buckets = 0, []
            for bound, count in zip((*BUCKETS, float("inf")), counts.latency, strict=True):
                running += count
                buckets.append((str(bound) if bound != float("inf") else "+Inf", running))
            latency.add_metric([service, release], buckets, counts.total)
        yield requests
        yield latency
        yield from self._live_families()

    def _live_families(self) -> Iterator[Metric]:
        retries = CounterMetricFamily(
            "immute_router_retries", "Requests sent again to a target", labels=["service"]
        )
        held = CounterMetricFamily(
            "immute_router_held", "Requests held for lack of a ready target", labels=["service"]
        )
        targets = GaugeMetricFamily(
            "immute_router_targets", "Targets by state", labels=["service", "state"]
        )
        for name, service in self.router.table.services.items():
            retries.add_metric([name], service.retries)
            held.add_metric([name], service.held)
            for state in ("ready", "draining"):
                count = sum(1 for t in service.targets if t.state == state)
                targets.add_metric([name, state], count)
        conns = GaugeMetricFamily("immute_router_open_connections", "Open client connections")
        conns.add_metric([], len(self.router.clients))
        rejected = CounterMetricFamily(
            "immute_router_rejected", "Requests refused as malformed, too large or too slow"
        )
        rejected.add_metric([], self.router.stats.rejected)
        yield from (retries, held, targets, conns, rejected)


class AccessLog:
    """One JSON object per answered request, appended to a file."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=64 * 1024)

    def observe(self, exchange: Exchange, release: str, seconds: float) -> None:
        record = {
            "time": round(time.time(), 3),
            "id": exchange.request_id.decode("latin-1"),
            "client": exchange.client.peer,
            "method": exchange.method.decode("latin-1"),
            "url": exchange.url.decode("latin-1"),
            "host": exchange.host,
            "service": exchange.service.name if exchange.service else "",
            "release": release,
            "target": exchange.tried[-1].address if exchange.tried else "",
            "status": exchange.status,
            "attempts": exchange.attempts,
            "seconds": round(seconds, 6),
        }
        self._file.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
