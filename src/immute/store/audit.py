"""The audit log: who did what to which target, and how it ended. Never secret values."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from immute.store.context import StoreContext, parse_timestamp, timestamp
from immute.store.database import transaction


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    who: str
    action: str
    target: str
    outcome: str
    detail: str


class AuditLog:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def write(self, action: str, target: str, *, outcome: str = "ok", detail: str = "") -> None:
        """Append one entry inside the caller's open transaction, so it commits with the change."""
        self._ctx.conn.execute(
            "INSERT INTO audit (at, who, action, target, outcome, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (timestamp(self._ctx.now()), self._ctx.identity.who, action, target, outcome, detail),
        )

    def record(self, action: str, target: str, *, outcome: str = "ok", detail: str = "") -> None:
        """Append one entry in a transaction of its own (for refusals and failures)."""
        with transaction(self._ctx.conn):
            self.write(action, target, outcome=outcome, detail=detail)

    def entries(self, *, limit: int | None = None) -> list[AuditEntry]:
        """The newest ``limit`` entries (all when None), newest first."""
        rows = self._ctx.conn.execute(
            "SELECT id, at, who, action, target, outcome, detail FROM audit"
            " ORDER BY id DESC LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [_entry(row) for row in rows]


def _entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(**{**dict(row), "at": parse_timestamp(row["at"])})
