"""The route table as plain data: services, their targets, and how one is chosen.

Pure: no I/O, no clock. The proxy keeps its live state (pools, in-flight
requests) beside these values; the admin API, the persistence file and the
CLI all speak this one shape.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from immute.errors import RouteError

TargetState = Literal["ready", "draining"]
TARGET_STATES: tuple[TargetState, ...] = ("ready", "draining")
DEFAULT_SERVICE = "default"
MAX_WEIGHT = 10_000
_SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_JSON = dict[str, object]


@dataclass(frozen=True)
class Target:
    """One instance behind a service: where it listens and how much traffic it gets."""

    address: str
    weight: int = 1
    state: TargetState = "ready"
    release: str = ""

    @property
    def host(self) -> str:
        return split_address(self.address)[0]

    @property
    def port(self) -> int:
        return split_address(self.address)[1]


@dataclass(frozen=True)
class Sticky:
    """Keep one user on one release, keyed by a cookie or a request header."""

    kind: Literal["cookie", "header"]
    name: str


@dataclass(frozen=True)
class Route:
    """A service: its targets (swapped as one set), the hosts it answers, stickiness."""

    service: str
    targets: tuple[Target, ...] = ()
    hosts: tuple[str, ...] = ()
    sticky: Sticky | None = None
    paused: bool = False


@dataclass(frozen=True)
class RouteTable:
    routes: Mapping[str, Route] = field(default_factory=dict)


def split_address(address: str) -> tuple[str, int]:
    """`HOST:PORT` -> (host, port); a bracketed IPv6 host keeps no brackets."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise RouteError(f"{address!r}: expected HOST:PORT")
    port = int(port_text)
    if not 0 < port < 65536:
        raise RouteError(f"{address!r}: port must be 1-65535")
    return host.strip("[]"), port


def parse_target(spec: str, *, release: str = "") -> Target:
    """`HOST:PORT[=WEIGHT]` as typed on the command line."""
    address, _, weight_text = spec.partition("=")
    split_address(address)
    weight = 1
    if weight_text:
        if not weight_text.isdigit():
            raise RouteError(f"{spec!r}: weight must be a whole number")
        weight = _check_weight(int(weight_text), repr(spec))
    return Target(address=address, weight=weight, release=release)


def check_service(name: str) -> str:
    if not _SERVICE_NAME.match(name):
        raise RouteError(f"service {name!r}: use lowercase letters, digits, '.', '_', '-'")
    return name


def _check_weight(weight: int, where: str) -> int:
    if not 0 <= weight <= MAX_WEIGHT:
        raise RouteError(f"{where}: weight must be between 0 and {MAX_WEIGHT}")
    return weight


def target_to_json(target: Target) -> _JSON:
    return {
        "address": target.address,
        "weight": target.weight,
        "state": target.state,
        "release": target.release,
    }


def route_to_json(route: Route) -> _JSON:
    sticky = {"kind": route.sticky.kind, "name": route.sticky.name} if route.sticky else None
    return {
        "targets": [target_to_json(t) for t in route.targets],
        "hosts": list(route.hosts),
        "sticky": sticky,
        "paused": route.paused,
    }


def table_to_json(table: RouteTable) -> _JSON:
    return {"version": 1, "services": {n: route_to_json(r) for n, r in table.routes.items()}}


def _field(data: Mapping[str, object], key: str, kind: type, where: str, default: object) -> object:
    value = data.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RouteError(f"{where}.{key}: expected {kind.__name__}")
    return value


def _object(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise RouteError(f"{where}: expected an object")
    return cast(Mapping[str, object], value)


def target_from_json(value: object, where: str) -> Target:
    data = _object(value, where)
    unknown = set(data) - {"address", "weight", "state", "release"}
    if unknown:
        raise RouteError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    address = cast(str, _field(data, "address", str, where, None))
    split_address(address)
    weight = _check_weight(cast(int, _field(data, "weight", int, where, 1)), f"{where}.weight")
    state = cast(str, _field(data, "state", str, where, "ready"))
    if state not in TARGET_STATES:
        raise RouteError(f"{where}.state: expected one of {', '.join(TARGET_STATES)}")
    release = cast(str, _field(data, "release", str, where, ""))
    return Target(address, weight, state, release)


def route_from_json(service: str, value: object, where: str = "") -> Route:
    """Validate one service's JSON; errors name the key, e.g. `web.targets[2].weight`."""
    where = where or check_service(service)
    data = _object(value, where)
    unknown = set(data) - {"targets", "hosts", "sticky", "paused"}
    if unknown:
        raise RouteError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    raw_targets = cast(list[object], _field(data, "targets", list, where, []))
    targets = tuple(target_from_json(t, f"{where}.targets[{i}]") for i, t in enumerate(raw_targets))
    addresses = [t.address for t in targets]
    if len(set(addresses)) != len(addresses):
        raise RouteError(f"{where}.targets: an address appears twice")
    hosts = cast(list[object], _field(data, "hosts", list, where, []))
    if not all(isinstance(h, str) and h for h in hosts):
        raise RouteError(f"{where}.hosts: expected a list of host names")
    paused = cast(bool, _field(data, "paused", bool, where, False))
    return Route(
        service=service,
        targets=targets,
        hosts=tuple(cast(str, h).lower() for h in hosts),
        sticky=_sticky_from_json(data.get("sticky"), f"{where}.sticky"),
        paused=paused,
    )


def _sticky_from_json(value: object, where: str) -> Sticky | None:
    if value is None:
        return None
    data = _object(value, where)
    kind = data.get("kind")
    name = data.get("name")
    if kind not in ("cookie", "header") or not isinstance(name, str) or not name:
        raise RouteError(f"{where}: expected {{'kind': 'cookie'|'header', 'name': NAME}}")
    return Sticky(kind=kind, name=name)


def table_from_json(value: object, where: str = "routes") -> RouteTable:
    data = _object(value, where)
    if data.get("version") != 1:
        raise RouteError(f"{where}.version: expected 1")
    services = _object(data.get("services", {}), f"{where}.services")
    routes = {
        check_service(name): route_from_json(name, route, f"{where}.services.{name}")
        for name, route in services.items()
    }
    return RouteTable(routes=routes)


def service_for_host(hosts: Mapping[str, Sequence[str]], host: str) -> str | None:
    """The service answering `host` (port ignored); a lone service takes every host,
    and a service without hosts takes those no other service claims."""
    if len(hosts) == 1:
        return next(iter(hosts))
    name = host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()
    fallback = None
    for service, names in hosts.items():
        if name in names:
            return service
        if not names and fallback is None:
            fallback = service
    return fallback


def cumulative(weights: Sequence[int]) -> list[int]:
    total = 0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def pick_weighted(cumulative_weights: Sequence[int], r: float) -> int:
    """Index chosen by weight for `r` in [0, 1); -1 when every weight is 0."""
    if not cumulative_weights or cumulative_weights[-1] <= 0:
        return -1
    return bisect.bisect_right(cumulative_weights, r * cumulative_weights[-1])


def _score(key: str, item: str, weight: int) -> float:
    digest = hashlib.blake2b(f"{key}\x00{item}".encode(), digest_size=8).digest()
    unit = (int.from_bytes(digest, "big") + 1) / (2**64 + 1)
    # Weighted rendezvous hashing: -w/ln(u) keeps each key on its choice while the
    # set changes, and gives each item a share proportional to its weight.
    return -weight / math.log(unit)


def pick_sticky(releases: Mapping[str, int], key: str) -> str | None:
    """The release (by total weight) that `key` sticks to; None when all weigh 0."""
    best, best_score = None, 0.0
    for release, weight in sorted(releases.items()):
        if weight <= 0:
            continue
        score = _score(key, release, weight)
        if best is None or score > best_score:
            best, best_score = release, score
    return best
