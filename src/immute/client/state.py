"""What the CLI calls for history, audit and locks: plain JSON-ready values out.

Reading commands never create the state directory: on a directory without a
database they answer with nothing (an empty history, no locks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from immute.client.specfile import read_spec, state_dir
from immute.core.release import Release
from immute.store import AuditEntry, LockState, Store, age_text

JSONDict = dict[str, object]


def history(spec_file: str | None, *, app: str | None, limit: int | None) -> list[JSONDict]:
    """Releases newest first, of one app or of every app in the state directory."""
    with _reading(spec_file) as store:
        return (
            [] if store is None else [release_json(r) for r in store.releases.all(app, limit=limit)]
        )


def audit(spec_file: str | None, *, limit: int | None) -> list[JSONDict]:
    """Audit entries newest first."""
    with _reading(spec_file) as store:
        return [] if store is None else [audit_json(e) for e in store.audit.entries(limit=limit)]


def lock_status(spec_file: str | None, *, app: str | None) -> list[JSONDict]:
    """The locks held (one app's, or all), each with its age and whether it is stale."""
    with _reading(spec_file) as store:
        if store is None:
            return []
        states = store.locks.all() if app is None else [store.locks.status(app)]
        return [lock_json(s) for s in states if s is not None]


def lock_acquire(
    spec_file: str | None, *, destination: str | None, app: str | None, message: str
) -> JSONDict:
    """Take a manual lock: held by this user, not by a process, until released.

    The app is ``app`` when given, else the one the spec names.
    """
    name = app or read_spec(spec_file, destination).spec.app
    with _writing(spec_file) as store:
        return lock_json(store.locks.acquire(name, message=message, pid=None))


def lock_release(
    spec_file: str | None, *, destination: str | None, app: str | None, force: bool
) -> JSONDict:
    """Release this user's manual lock (or a stale one); ``force`` breaks anyone's."""
    name = app or read_spec(spec_file, destination).spec.app
    with _writing(spec_file) as store:
        return lock_json(store.locks.release(name, pid=None, force=force))


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


@contextmanager
def _reading(spec_file: str | None) -> Iterator[Store | None]:
    directory = state_dir(spec_file)
    if not Store.exists(directory):
        yield None
        return
    with Store.open(directory) as store:
        yield store


@contextmanager
def _writing(spec_file: str | None) -> Iterator[Store]:
    with Store.open(state_dir(spec_file)) as store:
        yield store
