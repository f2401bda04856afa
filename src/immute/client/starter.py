"""``immute init``: a commented starter spec, written without overwriting anything."""

from __future__ import annotations

import os
from pathlib import Path

from immute.errors import UsageError

STARTER_SPEC = """\
# immute.yaml: the desired state of this app, kept under version control.
# Reference: the README's "Configuration reference"; JSON Schema: `immute schema`.
app: {app}

build:
  context: .                 # files of the app layer, minus .gitignore/.immuteignore
  # dependencies: [requirements.txt]   # default: requirements.txt or pyproject.toml
  stack: host                # this machine's OS and Python (process runtime)

processes:
  web:                       # routed: the router sends HTTP to $PORT
    command: python -m http.server $PORT
    instances: 2
    health:
      readiness:
        http: /              # 2xx or 3xx, twice in a row, before it takes traffic
  # worker:
  #   command: python worker.py

strategy:
  type: rolling              # rolling | blue-green | canary | recreate
  max_surge: 25%
  max_unavailable: 0

env:
  LOG_LEVEL: info
# secrets: [DATABASE_URL]    # names only; values come from the environment at deploy time

router:
  listen: 127.0.0.1:8080

retain:
  releases: 20
  images: 10
  logs: 7d
"""


def write_starter(path: Path, *, app: str | None = None) -> Path:
    """Write the starter spec at ``path``; refuse if anything is already there."""
    name = app or _app_name(path.resolve().parent.name)
    text = STARTER_SPEC.format(app=name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise UsageError(f"{path} already exists; not overwriting it") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def _app_name(directory: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in directory.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "app-" + cleaned
    return cleaned[:63].rstrip("-") or "app"
