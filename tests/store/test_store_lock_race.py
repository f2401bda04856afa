"""Real processes racing for the deploy lock, and a holder killed while holding it."""

from __future__ import annotations

import getpass
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from immute.store import Store
from store.support import cli_env, cli_json, run_cli

RACER = Path(__file__).with_name("lock_racer.py")
ME = f"{getpass.getuser()}@{socket.gethostname()}"
HELD_BY_ME = re.escape(f"lock on web is held by {ME} (host {socket.gethostname()}, ")


def start_racers(state_dir: Path, count: int) -> list[subprocess.Popen[str]]:
    racers = [
        subprocess.Popen(
            [sys.executable, str(RACER), str(state_dir), "web", f"racer-{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
    return racers


def go(racers: list[subprocess.Popen[str]]) -> list[str]:
    """Release every racer at once; return what each one says."""
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    lines = []
    for racer in racers:
        assert racer.stdout is not None
        lines.append(racer.stdout.readline().rstrip("\n"))
    return lines


def finish(racers: list[subprocess.Popen[str]]) -> None:
    """Let the winner release (its stdin closes) and every racer exit; kill stragglers."""
    for racer in racers:
        try:
            racer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            racer.kill()
            racer.communicate(timeout=30)


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh-dir", "existing-dir"])
def test_two_cli_processes_racing_for_the_lock_exactly_one_wins(
    tmp_path: Path, fresh: bool
) -> None:
    for round_ in range(3):
        state_dir = tmp_path / (f"state-{round_}" if fresh else "state")
        env = cli_env(state_dir)
        argv = [sys.executable, "-m", "immute", "lock", "acquire", "--app", "web", "-m"]
        racers = [
            subprocess.Popen(
                [*argv, f"racer-{i}"],
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for i in range(2)
        ]
        results = [racer.communicate(timeout=60) for racer in racers]
        codes = [racer.returncode for racer in racers]
        assert sorted(codes) == [0, 3], results
        winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
        assert results[winner][0] == f"locked web: racer-{winner}\n"
        error = results[loser][1]
        assert error.count("\n") == 1, error
        assert re.fullmatch(rf"error: {HELD_BY_ME}manual lock, for \d+s\): racer-{winner}\n", error)
        with Store.open(state_dir) as store:
            store.locks.release("web", pid=None)


def test_many_processes_racing_through_the_api_exactly_one_wins(tmp_path: Path) -> None:
    for round_ in range(16):
        # Every other round starts on a fresh directory: creating the database,
        # switching it to WAL and migrating it are part of the race.
        state_dir = tmp_path / f"state-{round_ // 2}"
        racers = start_racers(state_dir, 3)
        try:
            said = go(racers)
        finally:
            finish(racers)
        winners = [i for i, line in enumerate(said) if line == "won"]
        assert len(winners) == 1, said
        for i, line in enumerate(said):
            if i != winners[0]:
                pattern = rf"lost: {HELD_BY_ME}pid \d+, for \d+s\): racer-{winners[0]}"
                assert re.fullmatch(pattern, line), line
        assert [r.returncode for r in racers].count(3) == 2


def test_a_killed_holder_leaves_a_stale_lock_that_status_reports_and_acquire_breaks(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    env = cli_env(state_dir)
    (holder,) = start_racers(state_dir, 1)
    try:
        assert go([holder]) == ["won"]
        live = cli_json("lock", "status", env=env)
        assert isinstance(live, list) and live[0]["pid"] == holder.pid
        assert live[0]["stale"] is False
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        finish([holder])

    (stale,) = cli_json("lock", "status", env=env)
    assert (stale["pid"], stale["stale"], stale["message"]) == (holder.pid, True, "racer-0")
    shown = run_cli("lock", "status", env=env)
    assert shown.returncode == 0 and "stale (holder gone)" in shown.stdout

    taken = run_cli("lock", "acquire", "--app", "web", "-m", "after the crash", env=env)
    assert (taken.returncode, taken.stderr) == (0, "")
    (lock,) = cli_json("lock", "status", env=env)
    assert (lock["pid"], lock["message"], lock["stale"]) == (None, "after the crash", False)
    entries = cli_json("audit", env=env)
    assert isinstance(entries, list)
    assert [e["action"] for e in entries[:3]] == ["lock.acquire", "lock.break", "lock.acquire"]
    assert f"pid {holder.pid} gone, stale" in entries[1]["detail"]
