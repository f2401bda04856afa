"""The route table as values: parsing, validation messages, choosing targets."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immute.core.routes import (
    Route,
    RouteTable,
    Sticky,
    Target,
    cumulative,
    parse_target,
    pick_sticky,
    pick_weighted,
    route_from_json,
    service_for_host,
    table_from_json,
    table_to_json,
)
from immute.errors import RouteError


def test_parse_target_reads_address_and_weight() -> None:
    assert parse_target("127.0.0.1:8000=3", release="v2") == Target(
        "127.0.0.1:8000", 3, "ready", "v2"
    )
    assert parse_target("[::1]:80").host == "::1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("localhost", "'localhost': expected HOST:PORT"),
        ("h:0", "'h:0': port must be 1-65535"),
        ("h:1=x", "'h:1=x': weight must be a whole number"),
        ("h:1=100000", "'h:1=100000': weight must be between 0 and 10000"),
    ],
)
def test_parse_target_errors_name_the_argument(spec: str, message: str) -> None:
    with pytest.raises(RouteError) as raised:
        parse_target(spec)
    assert str(raised.value) == message


def test_route_json_errors_name_the_key() -> None:
    with pytest.raises(RouteError, match=r"^web\.targets\[1\]\.state: expected one of"):
        route_from_json("web", {"targets": [{"address": "a:1"}, {"address": "b:1", "state": "x"}]})
    with pytest.raises(RouteError, match=r"^web\.targets: an address appears twice"):
        route_from_json("web", {"targets": [{"address": "a:1"}, {"address": "a:1"}]})
    with pytest.raises(RouteError, match=r"^web\.sticky: expected"):
        route_from_json("web", {"sticky": {"kind": "ip"}})
    with pytest.raises(RouteError, match="service 'Web!'"):
        route_from_json("Web!", {})


def test_table_round_trips_through_json() -> None:
    route = Route(
        service="web",
        targets=(Target("a:1", 2, "draining", "v1"), Target("b:2")),
        hosts=("web.test",),
        sticky=Sticky("header", "x-user"),
        paused=True,
    )
    table = RouteTable(routes={"web": route})
    assert table_from_json(table_to_json(table)) == table


def test_hosts_pick_the_service() -> None:
    hosts = {"shop": ("shop.test",), "blog": ("blog.test",), "rest": ()}
    assert service_for_host(hosts, "SHOP.test:8080") == "shop"
    assert service_for_host(hosts, "other.test") == "rest"
    assert service_for_host({"only": ("a.test",)}, "b.test") == "only"
    assert service_for_host({"a": ("a.test",), "b": ("b.test",)}, "c.test") is None


def test_weighted_pick_follows_weights() -> None:
    weights = cumulative([1, 0, 3])
    picks = Counter(pick_weighted(weights, i / 1000) for i in range(1000))
    assert picks == {0: 250, 2: 750}
    assert pick_weighted(cumulative([0, 0]), 0.5) == -1


@given(st.text(min_size=1, max_size=20), st.sets(st.sampled_from(["v1", "v2", "v3", "v4"])))
def test_sticky_key_keeps_its_release_while_others_leave(key: str, others: set[str]) -> None:
    everything = {"v1": 5, "v2": 3, "v3": 1, "v4": 1}
    chosen = pick_sticky(everything, key)
    assert chosen is not None
    subset = {name: everything[name] for name in others | {chosen}}
    assert pick_sticky({**subset, "v0": 0}, key) == chosen


def test_sticky_shares_follow_weights() -> None:
    picks = Counter(pick_sticky({"v1": 9, "v2": 1}, f"user-{i}") for i in range(2000))
    assert 1600 < picks["v1"] < 1990
