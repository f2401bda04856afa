"""How values are quoted in messages: as the user would write them in YAML."""

from __future__ import annotations

import json
from typing import Any


def shown(value: Any) -> str:
    """``"lots"``, ``3``, ``true``, ``null``, ``a list``, ``a mapping``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
