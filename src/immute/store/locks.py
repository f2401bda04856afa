"""The app's deploy lock: at most one deploy (or person) changes an app at a time.

A lock is either held by a process (a deploy: ``pid`` set) or by a person
(``immute lock acquire``: ``pid`` NULL, a *manual* lock). A process lock whose
process is gone on this host is stale: ``status`` says so and the next
``acquire`` breaks it. A manual lock never goes stale, because closing the
terminal that took it must not silently let deploys through; it lasts until its
holder releases it or someone uses ``--force``.

A pid reused by an unrelated process after the holder died makes the lock look
alive; ``--force`` is the way out of that rare case.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from immute.errors import LockHeldError, NotFoundError
from immute.store.audit import AuditLog
from immute.store.context import StoreContext, parse_timestamp, timestamp
from immute.store.database import transaction


@dataclass(frozen=True)
class Lock:
    app: str
    holder: str
    host: str
    pid: int | None
    acquired_at: datetime
    message: str

    @property
    def manual(self) -> bool:
        return self.pid is None


@dataclass(frozen=True)
class LockState:
    """A lock as seen now: how long it has been held and whether its holder is gone."""

    lock: Lock
    age: timedelta
    stale: bool

    def describe(self) -> str:
        lock = self.lock
        holder = "manual lock" if lock.pid is None else f"pid {lock.pid}"
        gone = " gone, stale" if self.stale else ""
        message = lock.message or "(no message)"
        return (
            f"lock on {lock.app} is held by {lock.holder} "
            f"(host {lock.host}, {holder}{gone}, for {age_text(self.age)}): {message}"
        )


class DeployLocks:
    def __init__(
        self, ctx: StoreContext, audit: AuditLog, *, alive: Callable[[int], bool] | None = None
    ) -> None:
        self._ctx = ctx
        self._audit = audit
        self._alive = alive or pid_alive

    def status(self, app: str) -> LockState | None:
        """The app's lock, or None when nobody holds it."""
        row = self._ctx.conn.execute("SELECT * FROM locks WHERE app = ?", (app,)).fetchone()
        return None if row is None else self._state(row)

    def all(self) -> list[LockState]:
        rows = self._ctx.conn.execute("SELECT * FROM locks ORDER BY app")
        return [self._state(row) for row in rows]

    def acquire(self, app: str, *, message: str, pid: int | None) -> LockState:
        """Take the app's lock for ``pid`` (None: a manual lock), breaking a stale one.

        Raises LockHeldError naming the holder when someone else holds it.
        """
        conn = self._ctx.conn
        try:
            with transaction(conn):
                current = self.status(app)
                if current is not None and not current.stale:
                    raise LockHeldError(current.describe())
                if current is not None:
                    conn.execute("DELETE FROM locks WHERE app = ?", (app,))
                    self._audit.write("lock.break", app, detail=current.describe())
                conn.execute(
                    "INSERT INTO locks (app, holder, host, pid, acquired_at, message)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        app,
                        self._ctx.identity.who,
                        self._ctx.identity.host,
                        pid,
                        timestamp(self._ctx.now()),
                        message,
                    ),
                )
                self._audit.write("lock.acquire", app, detail=message)
                taken = self.status(app)
        except LockHeldError as exc:
            self._audit.record("lock.acquire", app, outcome="refused", detail=str(exc))
            raise
        assert taken is not None
        return taken

    def release(self, app: str, *, pid: int | None, force: bool = False) -> LockState:
        """Release the lock held by this user and ``pid``; ``force`` breaks anyone's.

        A stale lock may be released by anyone. Raises NotFoundError when the app
        is not locked and LockHeldError when someone else holds it.
        """
        try:
            with transaction(self._ctx.conn):
                current = self.status(app)
                if current is None:
                    raise NotFoundError(f"{app} is not locked")
                mine = self._is_mine(current.lock, pid)
                if not (mine or current.stale or force):
                    raise LockHeldError(f"{current.describe()}; release it with --force")
                self._ctx.conn.execute("DELETE FROM locks WHERE app = ?", (app,))
                action = "lock.release" if mine else "lock.break"
                self._audit.write(action, app, detail=current.describe())
        except LockHeldError as exc:
            self._audit.record("lock.release", app, outcome="refused", detail=str(exc))
            raise
        return current

    @contextmanager
    def hold(self, app: str, *, message: str) -> Iterator[LockState]:
        """Hold the app's lock for this process while the block runs."""
        pid = self._ctx.identity.pid
        state = self.acquire(app, message=message, pid=pid)
        try:
            yield state
        finally:
            self._release_own(app, pid)

    def _release_own(self, app: str, pid: int) -> None:
        # Someone may have broken our lock with --force meanwhile: then it is not
        # ours to delete, and failing here would hide the block's own error.
        with transaction(self._ctx.conn):
            current = self.status(app)
            if current is not None and self._is_mine(current.lock, pid):
                self._ctx.conn.execute("DELETE FROM locks WHERE app = ?", (app,))
                self._audit.write("lock.release", app, detail=current.describe())
            else:
                self._audit.write("lock.release", app, outcome="lost", detail="broken by another")

    def _is_mine(self, lock: Lock, pid: int | None) -> bool:
        return lock.holder == self._ctx.identity.who and lock.pid == pid

    def _state(self, row: sqlite3.Row) -> LockState:
        lock = Lock(**{**dict(row), "acquired_at": parse_timestamp(row["acquired_at"])})
        stale = (
            lock.pid is not None
            and lock.host == self._ctx.identity.host
            and not self._alive(lock.pid)
        )
        age = max(self._ctx.now() - lock.acquired_at, timedelta(0))
        return LockState(lock=lock, age=age, stale=stale)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # The command name in parentheses may itself contain spaces or parentheses.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def age_text(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"
