"""Helpers shared by the store tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from immute.store import Identity, Store


class FakeClock:
    """Time as an input: tests move it by hand."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


# Both act from this very process, so their pids are alive: staleness is tested
# with pids of processes that really exited.
ALICE = Identity(user="alice", host="box", pid=os.getpid())
BOB = Identity(user="bob", host="box", pid=os.getpid())


def add_release(store: Store, app: str = "web", **fields: str) -> int:
    release = store.releases.create(
        app,
        image_digest=fields.get("image", "sha256:" + "a" * 64),
        config_digest=fields.get("config", "sha256:" + "c" * 64),
        spec_digest=fields.get("spec", "sha256:" + "5" * 64),
        source_revision=fields.get("revision"),
        message=fields.get("message", ""),
    )
    return release.number


def cli_env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("IMMUTE_STATE_DIR", "IMMUTE_APP")}
    env["IMMUTE_STATE_DIR"] = str(state_dir)
    env["COLUMNS"] = "200"  # rich tables then fit on one line per row
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "immute", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def cli_json(*args: str, env: dict[str, str], cwd: Path | None = None) -> Any:
    result = run_cli(*args, "--json", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
