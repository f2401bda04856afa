from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from immute.errors import StateError
from immute.store import Store, database
from immute.store.database import DATABASE_NAME, open_database
from immute.store.schema import MIGRATIONS, SCHEMA_VERSION
from store.support import add_release

TABLES = {"releases", "release_prunes", "audit", "locks"}


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


def raw(state_dir: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(state_dir / DATABASE_NAME))


def test_a_fresh_directory_gets_the_whole_schema(state_dir: Path) -> None:
    with Store.open(state_dir) as store:
        assert store.schema_version == SCHEMA_VERSION
    with raw(state_dir) as conn:
        assert tables(conn) >= TABLES
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_connections_enforce_foreign_keys_and_wait_for_the_writer(state_dir: Path) -> None:
    with closing(open_database(state_dir / DATABASE_NAME)) as conn:
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_every_older_version_is_brought_forward(state_dir: Path, version: int) -> None:
    with closing(open_database(state_dir / DATABASE_NAME, migrations=MIGRATIONS[:version])) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == version
    with Store.open(state_dir) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert add_release(store) == 1
        assert [r.number for r in store.releases.all("web")] == [1]


def test_data_survives_reopening(state_dir: Path) -> None:
    with Store.open(state_dir) as store:
        add_release(store, message="first")
    with Store.open(state_dir) as store:
        assert [r.message for r in store.releases.all()] == ["first"]


def test_a_database_from_a_newer_immute_is_refused_untouched(state_dir: Path) -> None:
    Store.open(state_dir).close()
    with raw(state_dir) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match=rf"schema version {SCHEMA_VERSION + 1}, newer") as info:
        Store.open(state_dir)
    assert "\n" not in str(info.value)
    with raw(state_dir) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_file_that_is_not_a_database_is_a_state_error(state_dir: Path) -> None:
    state_dir.mkdir()
    (state_dir / DATABASE_NAME).write_text("not sqlite, just text\n" * 100)
    with pytest.raises(StateError, match="is unusable: file is not a database"):
        Store.open(state_dir)


def test_a_state_directory_that_cannot_be_created_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError, match="cannot open state database"):
        Store.open(blocker / "state")


def test_a_failing_migration_leaves_the_database_at_its_old_version(state_dir: Path) -> None:
    broken = (*MIGRATIONS, ("CREATE TABLE later (id INTEGER PRIMARY KEY)", "NOT SQL AT ALL"))
    with pytest.raises(StateError, match="syntax error"):
        open_database(state_dir / DATABASE_NAME, migrations=broken)
    with raw(state_dir) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert "later" not in tables(conn)


def test_a_writer_that_never_lets_go_is_a_state_error(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.05)
    with Store.open(state_dir) as store, raw(state_dir) as other:
        other.isolation_level = None
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StateError, match=r"state database stayed busy .*database is locked"):
            store.locks.acquire("web", message="", pid=None)
        other.execute("ROLLBACK")
        assert store.locks.acquire("web", message="", pid=None).lock.app == "web"
