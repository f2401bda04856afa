"""What the CLI calls for history, audit and locks: plain JSON-ready values out.

Reading commands never create the state directory: on a directory without a
database they answer with nothing (an empty history, no locks).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from immute.core.release import Release
from immute.store import AuditEntry, LockState, Store, age_text, state_dir_for

JSONDict = dict[str, object]


def history(spec_file: Path, *, app: str | None, limit: int | None) -> list[JSONDict]:
    """Releases newest first, of one app or of every app in the state directory."""
    with _reading(spec_file) as store:
        return (
            [] if store is None else [release_json(r) for r in store.releases.all(app, limit=limit)]
        )


def audit(spec_file: Path, *, limit: int | None) -> list[JSONDict]:
    """Audit entries newest first."""
    with _reading(spec_file) as store:
        return [] if store is None else [audit_json(e) for e in store.audit.entries(limit=limit)]


def lock_status(spec_file: Path, *, app: str | None) -> list[JSONDict]:
    """The locks held (one app's, or all), each with its age and whether it is stale."""
    with _reading(spec_file) as store:
        if store is None:
            return []
        states = store.locks.all() if app is None else [store.locks.status(app)]
        return [lock_json(s) for s in states if s is not None]


def lock_acquire(spec_file: Path, *, app: str, message: str) -> JSONDict:
    """Take a manual lock: held by this user, not by a process, until released."""
    with _writing(spec_file) as store:
        return lock_json(store.locks.acquire(app, message=message, pid=None))


def lock_release(spec_file: Path, *, app: str, force: bool) -> JSONDict:
    """Release this user's manual lock (or a stale one); ``force`` breaks anyone's."""
    with _writing(spec_file) as store:
        return lock_json(store.locks.release(app, pid=None, force=force))


def release_json(release: Release) -> JSONDict:
    return {
        **asdict(release),
        "name": release.name,
        "created_at": release.created_at.isoformat(),
    }


def audit_json(entry: AuditEntry) -> JSONDict:
    return {**asdict(entry), "at": entry.at.isoformat()}


def lock_json(state: LockState) -> JSONDict:
    return {
        **asdict(state.lock),
        "acquired_at": state.lock.acquired_at.isoformat(),
        "manual": state.lock.manual,
        "age_seconds": round(state.age.total_seconds(), 3),
        "held_for": age_text(state.age),
        "stale": state.stale,
        "description": state.describe(),
    }


def _state_dir(spec_file: Path) -> Path:
    return state_dir_for(spec_file, os.environ)


@contextmanager
def _reading(spec_file: Path) -> Iterator[Store | None]:
    state_dir = _state_dir(spec_file)
    if not Store.exists(state_dir):
        yield None
        return
    with Store.open(state_dir) as store:
        yield store


@contextmanager
def _writing(spec_file: Path) -> Iterator[Store]:
    with Store.open(_state_dir(spec_file)) as store:
        yield store
