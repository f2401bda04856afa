"""Invariants of parsing and normalisation, checked with hypothesis."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from immute.core.quantities import (
    format_duration,
    parse_count_or_percent,
    parse_duration,
    resolve_count,
)
from immute.core.spec_loading import Source, load_spec

milliseconds = st.integers(min_value=0, max_value=10**12)


@settings(deadline=None)
@given(milliseconds)
def test_duration_format_then_parse_is_identity(ms: int) -> None:
    assert parse_duration(format_duration(ms)) == ms


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**6), st.sampled_from(["d", "h", "m", "s", "ms"])), min_size=1
    )
)
def test_duration_parts_add_up(parts: list[tuple[int, str]]) -> None:
    size = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration(text) == sum(n * size[unit] for n, unit in parts)


@settings(deadline=None)
@given(st.text(max_size=12))
def test_duration_parser_only_raises_value_error(text: str) -> None:
    try:
        parse_duration(text)
    except ValueError as exc:
        assert "got" in str(exc) or "millisecond" in str(exc)


@settings(deadline=None)
@given(st.integers(0, 100), st.integers(0, 1000))
def test_percent_resolution_rounds_surge_up_and_unavailable_down(percent: int, total: int) -> None:
    value = parse_count_or_percent(f"{percent}%")
    up = resolve_count(value, total=total, round_up=True)
    down = resolve_count(value, total=total, round_up=False)
    assert down <= percent * total / 100 <= up
    assert up - down <= 1
    assert parse_count_or_percent(value) == value


@settings(deadline=None)
@given(st.integers(0, 10**6))
def test_counts_are_kept_as_counts(count: int) -> None:
    assert parse_count_or_percent(count) == count
    assert parse_count_or_percent(str(count)) == count


durations = milliseconds.map(format_duration)
names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
env_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n != "PORT" and not n.startswith("IMMUTE_") and "TOKEN" not in n
)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    strategy_type = draw(st.sampled_from(["rolling", "blue-green", "canary", "recreate"]))
    strategy: dict[str, Any] = {"type": strategy_type, "bake": draw(durations)}
    if strategy_type == "rolling":
        strategy["max_surge"] = draw(st.sampled_from([1, 2, "25%", "50%", "100%"]))
        strategy["max_unavailable"] = draw(st.sampled_from([0, 1, "0%", "33%"]))
    if strategy_type == "canary":
        weights = sorted(draw(st.sets(st.integers(1, 99), min_size=1, max_size=4)))
        strategy["steps"] = [{"weight": f"{w}%", "pause": draw(durations)} for w in weights]
    workers = draw(st.lists(names.filter(lambda n: n != "web"), max_size=3, unique=True))
    processes: dict[str, Any] = {
        "web": {"command": "python -m app", "instances": draw(st.integers(0, 9))}
    }
    for worker in workers:
        processes[worker] = {"command": ["python", f"{worker}.py"], "grace": draw(durations)}
    env = draw(
        st.dictionaries(env_names, st.one_of(st.text(max_size=8), st.integers(), st.booleans()))
    )
    secrets = draw(st.lists(env_names.filter(lambda n: n not in env), max_size=3, unique=True))
    return {
        "app": draw(names),
        "processes": processes,
        "strategy": strategy,
        "env": env,
        "secrets": secrets,
        "retain": {"releases": draw(st.integers(1, 100)), "logs": draw(durations)},
    }


@settings(deadline=None)
@given(specs())
def test_normalised_spec_reloads_to_the_same_digests(raw: dict[str, Any]) -> None:
    first = load_spec([Source("immute.yaml", yaml.safe_dump(raw))])
    shown = yaml.safe_dump(first.spec.model_dump(mode="json", exclude_none=True))
    second = load_spec([Source("shown.yaml", shown)])
    assert second.spec == first.spec
    assert (second.spec_digest, second.config_digest) == (first.spec_digest, first.config_digest)
