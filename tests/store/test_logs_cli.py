"""`immute logs` run as a user runs it, in a subprocess, over a real state directory."""

from __future__ import annotations

import json
import os
import pty
import selectors
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from immute.core.instances import InstanceLabels, LogBatch, LogLine
from immute.store import Store
from store.support import cli_env, run_cli

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
WAIT = 30.0


def write(
    state_dir: Path, instance: str, texts: list[str], *, release: str = "v1", at: datetime = T0
) -> None:
    labels = InstanceLabels(instance, "shop", instance.split("-")[0], release, "sha256:" + "e" * 64)
    with Store.open(state_dir) as store:
        previous = store.logs.cursor("shop", instance).cursor
        cursor = str(int(previous or "0") + len(texts))
        lines = tuple(LogLine(instance, "stdout", text, at.timestamp()) for text in texts)
        store.logs.append(labels, LogBatch(lines, cursor), previous=previous)


def test_human_and_json_output(state_dir: Path) -> None:
    write(state_dir, "web-a1", ["hello from v1"])
    write(state_dir, "worker-b2", ["tick"], release="v2", at=T0 + timedelta(seconds=1))
    env = cli_env(state_dir)
    human = run_cli("logs", env=env)
    assert human.returncode == 0, human.stderr
    assert human.stdout == (
        "2026-01-02T03:04:05.678Z v1 web/web-a1 stdout | hello from v1\n"
        "2026-01-02T03:04:06.678Z v2 worker/worker-b2 stdout | tick\n"
    )
    lines = run_cli("logs", "--json", env=env).stdout.splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "id": 1,
            "at": "2026-01-02T03:04:05.678+00:00",
            "app": "shop",
            "release": "v1",
            "process": "web",
            "instance": "web-a1",
            "stream": "stdout",
            "text": "hello from v1",
        },
        {
            "id": 2,
            "at": "2026-01-02T03:04:06.678+00:00",
            "app": "shop",
            "release": "v2",
            "process": "worker",
            "instance": "worker-b2",
            "stream": "stdout",
            "text": "tick",
        },
    ]


def texts(*args: str, env: dict[str, str]) -> list[str]:
    result = run_cli("logs", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["text"] for line in result.stdout.splitlines()]


def test_filters_from_the_command_line(state_dir: Path) -> None:
    now = datetime.now(UTC)
    write(state_dir, "web-old", ["GET /old", "boot"], at=now - timedelta(hours=2))
    write(state_dir, "web-new", ["GET /new", "boot"], release="v2", at=now)
    write(state_dir, "worker-new", ["job"], release="v2", at=now)
    env = cli_env(state_dir)
    assert texts("--release", "v2", "--process", "web", env=env) == ["GET /new", "boot"]
    assert texts("--release", "1", env=env) == ["GET /old", "boot"]
    assert texts("--instance", "worker-new", env=env) == ["job"]
    assert texts("--since", "10m", env=env) == ["GET /new", "boot", "job"]
    assert texts("--since", (now - timedelta(hours=3)).isoformat(), "-n", "2", env=env) == [
        "boot",
        "job",
    ]
    assert texts("--grep", "GET", env=env) == ["GET /old", "GET /new"]
    assert texts("--app", "other", env=env) == []


def test_bad_options_are_one_line_errors(state_dir: Path) -> None:
    env = cli_env(state_dir)
    since = run_cli("logs", "--since", "yesterday", env=env)
    assert since.returncode == 2
    assert since.stderr == (
        'error: --since: expected a duration like "10m" or a time like 2026-01-02T15:04:05Z,'
        " got 'yesterday'\n"
    )
    release = run_cli("logs", "--release", "latest", env=env)
    assert (release.returncode, release.stderr) == (
        2,
        "error: --release: expected a release like v3, got 'latest'\n",
    )
    assert not state_dir.exists()


def test_a_fresh_directory_has_no_logs_and_gets_no_database(state_dir: Path) -> None:
    result = run_cli("logs", env=cli_env(state_dir))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not state_dir.exists()


class Follower:
    """Reads what ``immute logs -f --json`` prints, line by line, with a bounded wait."""

    def __init__(self, *args: str, state_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "immute", "logs", "-f", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_env(state_dir),
        )
        self._pending = b""

    def read(self, count: int) -> list[dict[str, object]]:
        """The next ``count`` lines, or fewer if they do not come within WAIT seconds."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + WAIT
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while self._pending.count(b"\n") < count:
                if not selector.select(timeout=max(deadline - time.monotonic(), 0)):
                    break
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        return [json.loads(line) for line in lines]

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C: the exit code and what it said on stderr."""
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=WAIT)
        return self.process.returncode, err.decode()


def test_follow_prints_lines_other_processes_append_until_ctrl_c(state_dir: Path) -> None:
    write(state_dir, "web-1", ["before 1", "before 2", "before 3"])
    follower = Follower("-n", "2", "--process", "web", state_dir=state_dir)
    try:
        assert [r["text"] for r in follower.read(2)] == ["before 2", "before 3"]
        write(state_dir, "worker-1", ["not for web"])
        write(state_dir, "web-2", ["after 1", "after 2"], release="v2")
        got = [(r["instance"], r["text"]) for r in follower.read(2)]
        assert got == [("web-2", "after 1"), ("web-2", "after 2")]
        write(state_dir, "web-1", ["after 3"])
        assert [r["text"] for r in follower.read(1)] == ["after 3"]
    finally:
        code, err = follower.interrupt()
    assert (code, err) == (0, "")


def test_follow_waits_for_a_state_directory_that_does_not_exist_yet(state_dir: Path) -> None:
    follower = Follower(state_dir=state_dir)
    try:
        write(state_dir, "web-1", ["first ever"])
        assert [r["text"] for r in follower.read(1)] == ["first ever"]
    finally:
        code, err = follower.interrupt()
    assert (code, err) == (0, "")


def test_colour_only_on_a_terminal(state_dir: Path) -> None:
    write(state_dir, "web-1", ["plain \x1b[1mbold\x1b[0m text"])
    env = cli_env(state_dir)
    piped = run_cli("logs", env=env).stdout
    assert piped.count("\x1b[") == 2, "only the instance's own escapes when piped"
    controller, terminal = pty.openpty()
    try:
        subprocess.run(
            [sys.executable, "-m", "immute", "logs"],
            stdout=terminal,
            env=env,
            timeout=WAIT,
            check=True,
        )
        shown = os.read(controller, 65536).decode()
    finally:
        os.close(controller)
        os.close(terminal)
    assert shown.count("\x1b[") > 2
    assert "web/web-1" in shown and "plain \x1b[1mbold\x1b[0m text" in shown
