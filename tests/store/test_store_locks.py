from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from immute.errors import LockHeldError, NotFoundError
from immute.store import Identity, Store, age_text
from immute.store.locks import pid_alive
from store.support import ALICE, BOB, FakeClock


@pytest.fixture
def bob(state_dir: Path, clock: FakeClock, store: Store) -> Iterator[Store]:
    with Store.open(state_dir, identity=BOB, clock=clock) as opened:
        yield opened


def exited_pid() -> int:
    """The pid of a process that has come and gone (and been reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


def test_a_held_lock_refuses_others_with_one_line_naming_holder_host_pid_age_message(
    store: Store, bob: Store, clock: FakeClock
) -> None:
    store.locks.acquire("web", message="deploying v3", pid=os.getpid())
    clock.advance(minutes=2, seconds=5)
    with pytest.raises(LockHeldError) as info:
        bob.locks.acquire("web", message="mine now", pid=None)
    assert str(info.value) == (
        f"lock on web is held by alice@box (host box, pid {os.getpid()}, for 2m05s): deploying v3"
    )
    assert info.value.exit_code == 3
    refused = bob.audit.entries(limit=1)[0]
    assert (refused.who, refused.action, refused.outcome) == ("bob@box", "lock.acquire", "refused")


def test_locks_are_per_app(store: Store, bob: Store) -> None:
    store.locks.acquire("web", message="", pid=None)
    bob.locks.acquire("api", message="", pid=None)
    assert [(s.lock.app, s.lock.holder) for s in store.locks.all()] == [
        ("api", "bob@box"),
        ("web", "alice@box"),
    ]


def test_a_manual_lock_never_goes_stale_and_only_its_holder_releases_it(
    store: Store, bob: Store, clock: FakeClock
) -> None:
    store.locks.acquire("web", message="investigating", pid=None)
    clock.advance(days=3)
    state = bob.locks.status("web")
    assert state is not None
    assert (state.stale, state.lock.manual, age_text(state.age)) == (False, True, "3d00h")
    with pytest.raises(
        LockHeldError, match=r"manual lock, for 3d00h\): investigating; release it with --force"
    ):
        bob.locks.release("web", pid=None)
    assert store.locks.release("web", pid=None).lock.message == "investigating"
    assert store.locks.status("web") is None
    with pytest.raises(NotFoundError, match="web is not locked"):
        store.locks.release("web", pid=None)


def test_force_breaks_anyones_lock_and_says_so_in_the_audit(store: Store, bob: Store) -> None:
    store.locks.acquire("web", message="deploying", pid=os.getpid())
    bob.locks.release("web", pid=None, force=True)
    assert store.locks.status("web") is None
    broken = bob.audit.entries(limit=1)[0]
    assert (broken.who, broken.action, broken.outcome) == ("bob@box", "lock.break", "ok")
    assert "held by alice@box" in broken.detail


def test_a_process_lock_whose_process_is_gone_is_stale_and_the_next_acquire_breaks_it(
    store: Store, bob: Store
) -> None:
    dead = exited_pid()
    store.locks.acquire("web", message="deploying v4", pid=dead)
    state = bob.locks.status("web")
    assert state is not None and state.stale
    assert f"pid {dead} gone, stale" in state.describe()
    taken = bob.locks.acquire("web", message="deploying v5", pid=None)
    assert (taken.lock.holder, taken.lock.message) == ("bob@box", "deploying v5")
    actions = [(e.action, e.who) for e in bob.audit.entries(limit=3)]
    assert actions == [
        ("lock.acquire", "bob@box"),
        ("lock.break", "bob@box"),
        ("lock.acquire", "alice@box"),
    ]


def test_a_lock_held_on_another_host_is_never_judged_stale(state_dir: Path, store: Store) -> None:
    elsewhere = Identity(user="carol", host="other-host", pid=1)
    with Store.open(state_dir, identity=elsewhere) as carol:
        carol.locks.acquire("web", message="", pid=exited_pid())
    state = store.locks.status("web")
    assert state is not None and not state.stale
    with pytest.raises(LockHeldError, match="held by carol@other-host"):
        store.locks.acquire("web", message="", pid=None)


def test_hold_releases_the_lock_when_the_block_fails(store: Store) -> None:
    with pytest.raises(RuntimeError, match="boom"), store.locks.hold("web", message="deploy"):
        state = store.locks.status("web")
        assert state is not None and state.lock.pid == ALICE.pid
        raise RuntimeError("boom")
    assert store.locks.status("web") is None
    assert [e.action for e in store.audit.entries(limit=2)] == ["lock.release", "lock.acquire"]


def test_hold_leaves_a_lock_someone_broke_and_took_alone(store: Store, bob: Store) -> None:
    with store.locks.hold("web", message="slow deploy"):
        bob.locks.release("web", pid=None, force=True)
        bob.locks.acquire("web", message="urgent fix", pid=None)
    state = store.locks.status("web")
    assert state is not None and state.lock.holder == "bob@box"
    lost = store.audit.entries(limit=1)[0]
    assert (lost.who, lost.action, lost.outcome) == ("alice@box", "lock.release", "lost")


def test_the_same_holder_cannot_take_its_lock_twice(store: Store) -> None:
    with store.locks.hold("web", message="first"), pytest.raises(LockHeldError, match="first"):
        store.locks.acquire("web", message="second", pid=ALICE.pid)


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (timedelta(seconds=0), "0s"),
        (timedelta(seconds=59.9), "59s"),
        (timedelta(minutes=1), "1m00s"),
        (timedelta(hours=1, minutes=2, seconds=3), "1h02m"),
        (timedelta(days=2, hours=5), "2d05h"),
    ],
)
def test_age_text(age: timedelta, text: str) -> None:
    assert age_text(age) == text


def test_a_killed_process_not_yet_reaped_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        # Wait for it to die but leave it unreaped: a zombie, as under a careless parent.
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        assert not pid_alive(child.pid)
    finally:
        child.kill()
        child.wait(timeout=10)
