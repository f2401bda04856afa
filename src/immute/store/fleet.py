"""The instances the agent started, as it last recorded them.

An instance is recorded as ``starting`` before its runtime is asked to start it,
so that no process can exist that the store does not know of; a restarted agent
compares these rows with what its runtime observes.

``ready`` instances are routed. ``standby`` ones run unrouted: without
``standby_until`` they are new instances waiting to be switched to (blue-green)
or weighted in (canary); with it, old instances kept for an instant rollback
until that time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

from immute.store.context import StoreContext, timestamp
from immute.store.database import transaction

InstanceState = Literal["starting", "ready", "standby", "stopping", "gone"]
LIVE_STATES: tuple[InstanceState, ...] = ("starting", "ready", "standby", "stopping")


@dataclass(frozen=True)
class InstanceRecord:
    id: str
    app: str
    process: str
    release: int
    port: int | None
    state: InstanceState
    standby_until: float | None
    created_at: str
    detail: str

    @property
    def address(self) -> str | None:
        return None if self.port is None else f"127.0.0.1:{self.port}"


class Fleet:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def add(self, *, id: str, app: str, process: str, release: int, port: int | None) -> None:
        with transaction(self._ctx.conn):
            self._ctx.conn.execute(
                "INSERT INTO instances (id, app, process, release, port, state, created_at)"
                " VALUES (?, ?, ?, ?, ?, 'starting', ?)",
                (id, app, process, release, port, timestamp(self._ctx.now())),
            )

    def set_state(
        self,
        ids: list[str],
        state: InstanceState,
        *,
        standby_until: float | None = None,
        detail: str = "",
    ) -> None:
        """Move instances to ``state`` in one transaction."""
        with transaction(self._ctx.conn):
            self._ctx.conn.executemany(
                "UPDATE instances SET state = ?, standby_until = ?, detail = ? WHERE id = ?",
                [(state, standby_until, detail, i) for i in ids],
            )

    def adopt(self, ids: list[str], release: int) -> None:
        """Count instances as ``release``'s: a rollback release runs the very image and
        config of the release it returns to, so that release's instances serve it."""
        with transaction(self._ctx.conn):
            self._ctx.conn.executemany(
                "UPDATE instances SET release = ? WHERE id = ?", [(release, i) for i in ids]
            )

    def live(self, app: str) -> list[InstanceRecord]:
        """Every instance not yet gone, oldest first."""
        marks = ", ".join("?" for _ in LIVE_STATES)
        rows = self._ctx.conn.execute(
            f"SELECT * FROM instances WHERE app = ? AND state IN ({marks}) ORDER BY rowid",
            (app, *LIVE_STATES),
        )
        return [_record(row) for row in rows]

    def forget_gone(self, app: str, *, keep: int = 200) -> None:
        """Drop the oldest rows of gone instances beyond ``keep`` (logs stay in the log store)."""
        with transaction(self._ctx.conn):
            self._ctx.conn.execute(
                "DELETE FROM instances WHERE app = ? AND state = 'gone' AND rowid NOT IN"
                " (SELECT rowid FROM instances WHERE app = ? AND state = 'gone'"
                " ORDER BY rowid DESC LIMIT ?)",
                (app, app, keep),
            )


def _record(row: sqlite3.Row) -> InstanceRecord:
    return InstanceRecord(**dict(row))
