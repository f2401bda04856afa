"""Field types of the spec: how each accepts YAML input, normalises it, and
describes itself in the JSON Schema. Errors are one-line messages meant for a
person editing ``immute.yaml``."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from immute.core.quantities import (
    COUNT_OR_PERCENT_HINT,
    DURATION_HINT,
    format_duration,
    parse_count_or_percent,
    parse_duration,
)
from immute.core.wording import shown


def fail(message: str) -> PydanticCustomError:
    """A validation error whose message is shown exactly as written."""
    return PydanticCustomError("immute", message)


def _checked(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise fail(str(exc)) from None

    return validate


def _duration(value: Any) -> int:
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"expected {DURATION_HINT}, got {shown(value)}")


def _count_or_percent(value: Any) -> int | str:
    if isinstance(value, int | str):
        return parse_count_or_percent(value)
    raise ValueError(f"expected {COUNT_OR_PERCENT_HINT}, got {shown(value)}")


def _percent(value: Any) -> str:
    normalised = _count_or_percent(value)
    if not isinstance(normalised, str):
        raise ValueError(f'expected a percentage like "10%", got {shown(value)}')
    return normalised


def _command(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split the command: {exc}") from None
    elif isinstance(value, list) and all(isinstance(a, str) for a in value):
        argv = list(value)
    else:
        raise ValueError(f"expected a command as a string or a list of strings, got {shown(value)}")
    if not argv or not argv[0]:
        raise ValueError("the command is empty")
    return argv


_SIZE = re.compile(r"(\d+)(Ki|Mi|Gi|K|M|G)?")
_SIZE_UNITS = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise ValueError(f'expected a size like "256Mi" or "1G", got {shown(value)}')
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def _format_size(size: int) -> str:
    for unit in ("Gi", "Mi", "Ki"):
        if size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]}{unit}"
    return str(size)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ValueError(f"expected a string, number or boolean, got {shown(value)}")


def _env_name(value: Any) -> str:
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a valid environment variable name")
    if value == "PORT" or value.startswith("IMMUTE_"):
        raise ValueError(f"{value} is set by immute and cannot be configured")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(
            f"{shown(value)} is not a valid name: use lowercase letters, digits and '-', "
            "starting with a letter, at most 63 characters"
        )
    return value


def _absolute_path(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"expected an absolute path like /data, got {shown(value)}")
    return value


_STRING = {"type": "string"}
DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|d|h|m|s))+$"

Duration = Annotated[
    int,
    BeforeValidator(_checked(_duration)),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({**_STRING, "pattern": DURATION_PATTERN, "x-immute-type": "duration"}),
]
CountOrPercent = Annotated[
    int | str,
    BeforeValidator(_checked(_count_or_percent)),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 0}, {**_STRING, "pattern": r"^\d+(\.\d+)?%$"}],
            "x-immute-type": "count or percentage",
        }
    ),
]
Percent = Annotated[
    str,
    BeforeValidator(_checked(_percent)),
    WithJsonSchema({**_STRING, "pattern": r"^\d+(\.\d+)?%$", "x-immute-type": "percentage"}),
]
Command = Annotated[
    list[str],
    BeforeValidator(_checked(_command)),
    WithJsonSchema(
        {
            "anyOf": [_STRING, {"type": "array", "items": _STRING, "minItems": 1}],
            "x-immute-type": "command",
        }
    ),
]
Size = Annotated[
    int,
    BeforeValidator(_checked(_size)),
    PlainSerializer(_format_size, return_type=str),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 1}, _STRING], "x-immute-type": "size"}
    ),
]
EnvName = Annotated[str, BeforeValidator(_checked(_env_name))]
EnvValue = Annotated[
    str,
    BeforeValidator(_checked(_env_value)),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
Name = Annotated[
    str,
    BeforeValidator(_checked(_name)),
    WithJsonSchema({**_STRING, "pattern": r"^[a-z][a-z0-9-]{0,62}$"}),
]
AbsolutePath = Annotated[str, BeforeValidator(_checked(_absolute_path))]
