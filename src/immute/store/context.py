"""What every part of the store shares: the connection, the clock, who is acting."""

from __future__ import annotations

import getpass
import os
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Identity:
    """Who acts on the state: recorded in releases, the audit log and locks."""

    user: str
    host: str
    pid: int

    @property
    def who(self) -> str:
        return f"{self.user}@{self.host}"

    @classmethod
    def current(cls) -> Identity:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            # A container user without a passwd entry still has a uid.
            user = f"uid{os.getuid()}"
        return cls(user=user, host=socket.gethostname(), pid=os.getpid())


@dataclass(frozen=True)
class StoreContext:
    conn: sqlite3.Connection
    identity: Identity = field(default_factory=Identity.current)
    clock: Clock = utc_now

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)


def timestamp(moment: datetime) -> str:
    """How times are stored: ISO 8601 in UTC, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)
