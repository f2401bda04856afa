"""What the proxy tells the outside: Prometheus metrics and the JSON access log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from immute.proxy.exchange import Exchange
    from immute.proxy.router import Router

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _LiveCollector(Collector):
    """Counters the proxy keeps anyway, read at scrape time: nothing on the hot path."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def collect(self) -> Iterator[Metric]:
        table = self.router.table
        retries = CounterMetricFamily(
            "immute_router_retries", "Requests sent again to a target", labels=["service"]
        )
        held = CounterMetricFamily(
            "immute_router_held", "Requests held for lack of a ready target", labels=["service"]
        )
        targets = GaugeMetricFamily(
            "immute_router_targets", "Targets by state", labels=["service", "state"]
        )
        for name, service in table.services.items():
            retries.add_metric([name], service.retries)
            held.add_metric([name], service.held)
            for state in ("ready", "draining"):
                count = sum(1 for t in service.targets if t.state == state)
                targets.add_metric([name, state], count)
        yield retries
        yield held
        yield targets
        conns = GaugeMetricFamily(
            "immute_router_open_connections", "Open client connections and tunnels"
        )
        conns.add_metric([], len(self.router.clients))
        yield conns
        rejected = CounterMetricFamily(
            "immute_router_rejected", "Requests refused as malformed, too large or too slow"
        )
        rejected.add_metric([], self.router.stats.rejected)
        yield rejected


class Metrics:
    def __init__(self, router: Router) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "immute_router_requests",
            "Requests answered, by service, release and status class",
            ["service", "release", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "immute_router_request_duration_seconds",
            "Time from request head to end of response",
            ["service"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LiveCollector(router))
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, exchange: Exchange, release: str, seconds: float) -> None:
        service = exchange.service.name if exchange.service is not None else ""
        key = (service, release, exchange.status // 100)
        children = self._children.get(key)
        if children is None:
            status_class = f"{key[2]}xx"
            children = (
                self._requests.labels(service, release, status_class),
                self._latency.labels(service),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class AccessLog:
    """One JSON object per answered request, appended to a file."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=64 * 1024)

    def observe(self, exchange: Exchange, release: str, seconds: float) -> None:
        record = {
            "time": round(time.time(), 3),
            "id": exchange.request_id,
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
