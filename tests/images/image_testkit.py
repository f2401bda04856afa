"""Apps and the `immute` program for the image tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

SPEC = """\
app: demo
build:
  context: .
processes:
  web:
    command: python -m http.server $PORT
"""


INSTALLER_SETTINGS = ("PIP_", "UV_", "IMMUTE_")
"""Variables of the machine that the tests' builds must not inherit."""
NO_INDEX = {"PIP_NO_INDEX": "1", "UV_NO_INDEX": "1", "UV_OFFLINE": "1"}
"""No package source at all, for uv and pip: an install fails, a cache hit succeeds."""


def local_index(wheels: Path) -> dict[str, str]:
    """Environment that points the installers (uv, pip) at ``wheels`` only."""
    return {**NO_INDEX, "PIP_FIND_LINKS": str(wheels), "UV_FIND_LINKS": str(wheels)}


def immute(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real program, with the test's environment on top of a clean one."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(INSTALLER_SETTINGS)}
    base.pop("SOURCE_DATE_EPOCH", None)
    return subprocess.run(
        [sys.executable, "-m", "immute", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )


def build_json(app: Path, *args: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    result = immute("build", "--json", *args, cwd=app, env=env)
    assert result.returncode == 0, result.stderr
    value = json.loads(result.stdout)
    assert isinstance(value, dict)
    return value


def build_here(
    app: Path, env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Build in this process (what `immute build --json` prints, without its start-up)."""
    from immute.client.images import build_image

    for name in [k for k in os.environ if k.startswith(INSTALLER_SETTINGS)]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = build_image(
        str(app / "immute.yaml"), None, offline=False, wheelhouse=None, progress=lambda _: None
    )
    return result.to_json()


def layers_by_role(build: dict[str, Any]) -> dict[str, dict[str, Any]]:
    layers = build["layers"]
    assert isinstance(layers, list)
    return {str(layer["role"]): layer for layer in layers}


def write_app(directory: Path, *, requirements: str | None = "tinydep==1.0\n") -> Path:
    """An app with a spec, some code and (unless None) a requirements file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "immute.yaml").write_text(SPEC)
    if requirements is not None:
        (directory / "requirements.txt").write_text(requirements)
    (directory / "app.py").write_text("import tinydep\nprint(tinydep.VERSION)\n")
    (directory / "static").mkdir(exist_ok=True)
    (directory / "static" / "style.css").write_text("body { margin: 0 }\n")
    return directory
