"""Command lines of processes: ``$NAME`` and ``${NAME}`` expanded from the
instance's environment, as a Procfile would, but without a shell."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))|\$\$")


def expand_argv(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Replace variable references in each argument; ``$$`` is a literal ``$``.

    An unknown variable expands to the empty string, as in a shell; the argument
    count never changes (no word splitting, no globbing).
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1) or match.group(2), "")

    return [_REFERENCE.sub(replace, arg) for arg in argv]
