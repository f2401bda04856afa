"""Durations (``30s``, ``1m30s``, ``250ms``) and counts-or-percentages (``3``, ``25%``).

Pure parsing and formatting. ``format_duration`` gives the canonical spelling, and
``parse_duration(format_duration(x)) == x`` for every value the parser accepts.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from immute.core.wording import shown

_UNITS_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|d|h|m|s))+")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")

DURATION_HINT = 'a duration like "30s", "5m" or "1h30m"'
COUNT_OR_PERCENT_HINT = 'a count or a percentage like "25%"'


def parse_duration(text: str) -> int:
    """Return the duration in whole milliseconds; raise ValueError with a hint.

    Units are ``d h m s ms``; parts may be combined (``1m30s``). Fractions below a
    millisecond are rejected rather than silently rounded.
    """
    cleaned = text.strip()
    if not _WHOLE.fullmatch(cleaned):
        raise ValueError(f"expected {DURATION_HINT}, got {shown(text)}")
    total = Decimal(0)
    for number, unit in _PART.findall(cleaned):
        total += Decimal(number) * _UNITS_MS[unit]
    if total != total.to_integral_value():
        raise ValueError(f"{shown(text)} is finer than a millisecond")
    return int(total)


def format_duration(milliseconds: int) -> str:
    """Canonical spelling: largest units first, no zero parts (``0s`` for zero)."""
    if milliseconds < 0:
        raise ValueError("a duration cannot be negative")
    if milliseconds == 0:
        return "0s"
    parts = []
    rest = milliseconds
    for unit, size in _UNITS_MS.items():
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_count_or_percent(value: int | str) -> int | str:
    """Normalise ``3`` or ``"25%"``; return an int count or a canonical ``"N%"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected {COUNT_OR_PERCENT_HINT}, got {shown(value)}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected {COUNT_OR_PERCENT_HINT} of at least 0, got {value}")
        return value
    text = value.strip()
    if text.isdigit():
        return int(text)
    match = _PERCENT.fullmatch(text)
    if not match:
        raise ValueError(f"expected {COUNT_OR_PERCENT_HINT}, got {shown(value)}")
    percent = Decimal(match.group(1))
    if percent > 100:
        raise ValueError(f"a percentage cannot exceed 100%, got {shown(value)}")
    return f"{percent.normalize():f}%"


def resolve_count(value: int | str, *, total: int, round_up: bool) -> int:
    """Turn a count or percentage of ``total`` into a count, rounded like Kubernetes.

    Surge rounds up and unavailability rounds down, so that ``25%`` of 3 instances
    allows one extra instance but never takes one away.
    """
    if isinstance(value, int):
        return value
    exact = Decimal(value[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)
