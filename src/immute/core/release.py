"""Releases: immutable numbered records of what was deployed, and their life cycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

ReleaseStatus = Literal["pending", "active", "failed", "superseded", "rolled-back"]

# A release starts pending; a deploy makes it active or failed; the next deploy
# supersedes it, or a rollback away from it marks it rolled-back. Rolling back
# never revives an old row: it creates a new release pointing at the old one's
# image and config, so the other statuses are final.
TRANSITIONS: dict[ReleaseStatus, frozenset[ReleaseStatus]] = {
    "pending": frozenset({"active", "failed"}),
    "active": frozenset({"superseded", "rolled-back"}),
    "failed": frozenset(),
    "superseded": frozenset(),
    "rolled-back": frozenset(),
}


@dataclass(frozen=True)
class Release:
    app: str
    number: int
    image_digest: str
    config_digest: str
    spec_digest: str
    source_revision: str | None
    created_by: str
    created_at: datetime
    message: str
    status: ReleaseStatus
    rollback_of: int | None

    @property
    def name(self) -> str:
        return f"v{self.number}"


def can_transition(current: ReleaseStatus, new: ReleaseStatus) -> bool:
    return new in TRANSITIONS[current]
