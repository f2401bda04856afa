from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from immute.errors import NotFoundError, StateError
from immute.store import Store
from immute.store.database import DATABASE_NAME
from store.support import ALICE, FakeClock, add_release


@pytest.fixture
def raw(store: Store, state_dir: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection, as any other writer would have: the rules must hold for it too."""
    with closing(sqlite3.connect(state_dir / DATABASE_NAME, isolation_level=None)) as conn:
        yield conn


def test_releases_are_numbered_per_app_and_record_who_when_why(
    store: Store, clock: FakeClock
) -> None:
    assert [add_release(store, "web"), add_release(store, "web"), add_release(store, "api")] == [
        1,
        2,
        1,
    ]
    clock.advance(minutes=5)
    add_release(store, "web", revision="abc123", message="fix the header")
    latest = store.releases.get("web", 3)
    assert latest.name == "v3"
    assert (latest.source_revision, latest.message, latest.status) == (
        "abc123",
        "fix the header",
        "pending",
    )
    assert latest.created_by == "alice@box"
    assert latest.created_at == clock.moment
    assert [r.number for r in store.releases.all("web")] == [3, 2, 1]
    assert [(r.app, r.number) for r in store.releases.all(limit=2)] == [("web", 3), ("api", 1)]


def test_a_rollback_release_points_at_an_existing_one(store: Store) -> None:
    add_release(store)
    rollback = store.releases.create(
        "web", image_digest="i", config_digest="c", spec_digest="s", rollback_of=1
    )
    assert (rollback.number, rollback.rollback_of) == (2, 1)
    with pytest.raises(NotFoundError, match="web has no release v7"):
        store.releases.create(
            "web", image_digest="i", config_digest="c", spec_digest="s", rollback_of=7
        )
    assert len(store.releases.all()) == 2


def test_status_follows_the_life_cycle(store: Store) -> None:
    add_release(store)
    assert store.releases.set_status("web", 1, "active").status == "active"
    assert store.releases.set_status("web", 1, "superseded").status == "superseded"
    with pytest.raises(StateError, match="web v1 is superseded: it cannot become active"):
        store.releases.set_status("web", 1, "active")
    assert store.releases.get("web", 1).status == "superseded"
    with pytest.raises(NotFoundError, match="web has no release v9"):
        store.releases.set_status("web", 9, "active")


def test_every_change_is_audited_with_its_actor(store: Store) -> None:
    add_release(store, message="first")
    store.releases.set_status("web", 1, "failed")
    entries = store.audit.entries()
    assert [(e.action, e.target, e.outcome, e.detail) for e in entries] == [
        ("release.status", "web v1", "ok", "pending -> failed"),
        ("release.create", "web v1", "ok", "first"),
    ]
    assert {e.who for e in entries} == {ALICE.who}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("image_digest", "'sha256:evil'"),
        ("config_digest", "'x'"),
        ("spec_digest", "'x'"),
        ("number", "99"),
        ("app", "'other'"),
        ("created_by", "'mallory@box'"),
        ("created_at", "'2020-01-01'"),
        ("message", "'rewritten'"),
        ("source_revision", "'deadbeef'"),
        ("rollback_of", "1"),
        ("id", "77"),
    ],
)
def test_sqlite_refuses_to_update_anything_but_the_status(
    store: Store, raw: sqlite3.Connection, column: str, value: str
) -> None:
    add_release(store)
    add_release(store)
    before = store.releases.get("web", 2)
    with pytest.raises(sqlite3.IntegrityError, match="append-only: only the status may change"):
        raw.execute(f"UPDATE releases SET {column} = {value} WHERE number = 2")
    assert store.releases.get("web", 2) == before


def test_sqlite_lets_the_status_change(store: Store, raw: sqlite3.Connection) -> None:
    add_release(store)
    raw.execute("UPDATE releases SET status = 'failed' WHERE number = 1")
    assert store.releases.get("web", 1).status == "failed"


def test_sqlite_refuses_to_delete_a_release(store: Store, raw: sqlite3.Connection) -> None:
    add_release(store)
    store.releases.set_status("web", 1, "failed")
    with pytest.raises(sqlite3.IntegrityError, match="deleted only by retention"):
        raw.execute("DELETE FROM releases")
    assert len(store.releases.all()) == 1


def test_sqlite_refuses_to_prune_an_active_release(store: Store, raw: sqlite3.Connection) -> None:
    add_release(store)
    add_release(store)
    store.releases.set_status("web", 1, "active")
    raw.execute("INSERT INTO release_prunes (app, number) VALUES ('web', 1)")
    with pytest.raises(sqlite3.IntegrityError, match="never pending, active or newest"):
        raw.execute("DELETE FROM releases WHERE number = 1")


def test_retention_prunes_finished_releases_only(store: Store) -> None:
    for _ in range(4):
        add_release(store)
    store.releases.set_status("web", 1, "failed")
    store.releases.set_status("web", 2, "active")
    store.releases.set_status("web", 2, "superseded")
    store.releases.set_status("web", 3, "active")
    with pytest.raises(StateError, match=r"cannot prune releases of web: .*never pending, active"):
        store.releases.prune("web", [1, 3])
    assert [r.number for r in store.releases.all()] == [4, 3, 2, 1]
    assert store.releases.prune("web", [1, 2, 8]) == [1, 2]
    assert [r.number for r in store.releases.all()] == [4, 3]
    assert store.audit.entries(limit=1)[0].detail == "v1, v2"
    assert add_release(store) == 5


def test_the_newest_release_is_never_pruned_so_numbers_never_repeat(store: Store) -> None:
    add_release(store)
    add_release(store)
    store.releases.set_status("web", 1, "failed")
    store.releases.set_status("web", 2, "failed")
    with pytest.raises(StateError, match="never pending, active or newest"):
        store.releases.prune("web", [1, 2])
    assert store.releases.prune("web", [1]) == [1]
    assert add_release(store) == 3


def test_sqlite_refuses_to_rewrite_or_delete_the_audit_log(
    store: Store, raw: sqlite3.Connection
) -> None:
    add_release(store)
    with pytest.raises(sqlite3.IntegrityError, match="audit log is append-only"):
        raw.execute("UPDATE audit SET who = 'nobody'")
    with pytest.raises(sqlite3.IntegrityError, match="audit log is append-only"):
        raw.execute("DELETE FROM audit")
    assert [e.who for e in store.audit.entries()] == [ALICE.who]
