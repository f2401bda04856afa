"""Secret values, held in memory only.

They come with each deploy request (from the deploying user's environment or
secrets file), and are re-read from the spec's ``secrets_file`` and the agent's
own environment, so that a restarted agent can still start instances. They are
never written to the store, a log line or an error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from immute.errors import UsageError


def read_secrets_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines and ``#`` comments are skipped.

    Errors name the file and line, never the value.
    """
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the secrets file: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


class SecretValues:
    def __init__(self) -> None:
        self._given: dict[str, str] = {}
        self._file: Path | None = None

    def update(self, given: Mapping[str, str], *, secrets_file: str | None) -> None:
        self._given.update(given)
        self._file = Path(secrets_file).expanduser() if secrets_file else self._file

    def values(self) -> dict[str, str]:
        """Given values win over the secrets file, which wins over the environment."""
        merged = dict(os.environ)
        if self._file is not None and self._file.is_file():
            merged.update(read_secrets_file(self._file))
        merged.update(self._given)
        return merged
