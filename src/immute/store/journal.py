"""The deploy journal: each deploy, rollback or restart and each of its steps,
written before the step runs and again when it ends, plus the specs releases
point at. A restarted agent reads it to resume what was interrupted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from immute.errors import NotFoundError
from immute.store.context import StoreContext, timestamp
from immute.store.database import transaction

DeployKind = Literal["deploy", "rollback", "restart"]
DeployStatus = Literal["running", "done", "failed"]


@dataclass(frozen=True)
class DeployRecord:
    id: int
    app: str
    kind: DeployKind
    release: int
    previous: int | None
    status: DeployStatus
    started_at: str
    finished_at: str | None
    reason: str


@dataclass(frozen=True)
class StepRecord:
    seq: int
    step: str
    started_at: str
    finished_at: str | None
    outcome: str | None


class Journal:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def save_spec(self, digest: str, spec: dict[str, Any]) -> None:
        """Keep a normalised spec (names of secrets only) under its digest."""
        body = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        with transaction(self._ctx.conn):
            self._ctx.conn.execute(
                "INSERT OR IGNORE INTO specs (digest, body) VALUES (?, ?)", (digest, body)
            )

    def spec(self, digest: str) -> dict[str, Any]:
        row = self._ctx.conn.execute(
            "SELECT body FROM specs WHERE digest = ?", (digest,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no spec {digest} in the state store")
        value: dict[str, Any] = json.loads(row["body"])
        return value

    def begin(self, app: str, kind: DeployKind, *, release: int, previous: int | None) -> int:
        with transaction(self._ctx.conn):
            cursor = self._ctx.conn.execute(
                "INSERT INTO deploys (app, kind, release, previous, status, started_at)"
                " VALUES (?, ?, ?, ?, 'running', ?)",
                (app, kind, release, previous, self._now()),
            )
            return int(cursor.lastrowid or 0)

    def step_started(self, deploy: int, step: str) -> int:
        with transaction(self._ctx.conn):
            row = self._ctx.conn.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM deploy_steps WHERE deploy = ?", (deploy,)
            ).fetchone()
            seq = int(row[0])
            self._ctx.conn.execute(
                "INSERT INTO deploy_steps (deploy, seq, step, started_at) VALUES (?, ?, ?, ?)",
                (deploy, seq, step, self._now()),
            )
            return seq

    def step_finished(self, deploy: int, seq: int, outcome: str) -> None:
        with transaction(self._ctx.conn):
            self._ctx.conn.execute(
                "UPDATE deploy_steps SET finished_at = ?, outcome = ? WHERE deploy = ? AND seq = ?",
                (self._now(), outcome, deploy, seq),
            )

    def finish(self, deploy: int, status: DeployStatus, *, reason: str = "") -> None:
        with transaction(self._ctx.conn):
            self._ctx.conn.execute(
                "UPDATE deploys SET status = ?, finished_at = ?, reason = ? WHERE id = ?",
                (status, self._now(), reason, deploy),
            )

    def running(self, app: str) -> DeployRecord | None:
        row = self._ctx.conn.execute(
            "SELECT * FROM deploys WHERE app = ? AND status = 'running' ORDER BY id DESC LIMIT 1",
            (app,),
        ).fetchone()
        return None if row is None else DeployRecord(**dict(row))

    def get(self, deploy: int) -> DeployRecord:
        row = self._ctx.conn.execute("SELECT * FROM deploys WHERE id = ?", (deploy,)).fetchone()
        if row is None:
            raise NotFoundError(f"no deploy {deploy}")
        return DeployRecord(**dict(row))

    def steps(self, deploy: int) -> list[StepRecord]:
        rows = self._ctx.conn.execute(
            "SELECT seq, step, started_at, finished_at, outcome FROM deploy_steps"
            " WHERE deploy = ? ORDER BY seq",
            (deploy,),
        )
        return [StepRecord(**dict(row)) for row in rows]

    def _now(self) -> str:
        return timestamp(self._ctx.now())
