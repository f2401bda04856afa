"""`immute history`, `audit` and `lock` run as a user runs them, in a subprocess."""

from __future__ import annotations

import getpass
import re
import socket
import sqlite3
from contextlib import closing
from pathlib import Path

from immute.store import Store
from immute.store.database import DATABASE_NAME
from store.support import BOB, add_release, cli_env, cli_json, run_cli

ME = f"{getpass.getuser()}@{socket.gethostname()}"


def test_history_of_a_fresh_directory_is_empty_and_creates_nothing(state_dir: Path) -> None:
    env = cli_env(state_dir)
    assert cli_json("history", env=env) == []
    table = run_cli("history", env=env)
    assert table.returncode == 0
    assert "Releases" in table.stdout and "status" in table.stdout
    assert cli_json("audit", env=env) == []
    assert cli_json("lock", "status", env=env) == []
    assert run_cli("lock", "status", env=env).stdout == "no lock is held\n"
    assert not state_dir.exists()


def test_history_lists_releases_newest_first(state_dir: Path) -> None:
    with Store.open(state_dir) as store:
        add_release(store, "web", message="first", revision="abc123")
        add_release(store, "api")
        add_release(store, "web", image="sha256:" + "f" * 64, message="second")
        store.releases.set_status("web", 1, "active")
    env = cli_env(state_dir)
    rows = cli_json("history", env=env)
    assert isinstance(rows, list)
    assert [(r["app"], r["name"], r["status"]) for r in rows] == [
        ("web", "v2", "pending"),
        ("api", "v1", "pending"),
        ("web", "v1", "active"),
    ]
    assert rows[2]["source_revision"] == "abc123"
    assert rows[2]["created_by"] == ME
    assert [r["name"] for r in cli_json("history", "--app", "web", "-n", "1", env=env)] == ["v2"]
    table = run_cli("history", "--app", "web", env=env).stdout
    assert "sha256:ffffffffffff" in table and "second" in table and "api" not in table


def test_audit_lists_what_the_lock_commands_did(state_dir: Path) -> None:
    env = cli_env(state_dir)
    assert run_cli("lock", "acquire", "--app", "web", "-m", "look", env=env).returncode == 0
    refused = run_cli("lock", "acquire", "--app", "web", "-m", "again", env=env)
    assert refused.returncode == 3
    released = run_cli("lock", "release", "--app", "web", env=env)
    assert released.returncode == 0
    assert released.stdout.startswith(f"released the lock on web, held by {ME} for ")
    entries = cli_json("audit", env=env)
    assert isinstance(entries, list)
    assert [(e["action"], e["outcome"], e["who"]) for e in entries] == [
        ("lock.release", "ok", ME),
        ("lock.acquire", "refused", ME),
        ("lock.acquire", "ok", ME),
    ]
    assert len(cli_json("audit", "-n", "2", env=env)) == 2
    assert "lock.release" in run_cli("audit", env=env).stdout


def test_only_the_holder_releases_a_manual_lock_unless_forced(state_dir: Path) -> None:
    with Store.open(state_dir, identity=BOB) as store:
        store.locks.acquire("web", message="bob investigates", pid=None)
    env = cli_env(state_dir)
    refused = run_cli("lock", "release", "--app", "web", env=env)
    assert refused.returncode == 3
    assert re.fullmatch(
        r"error: lock on web is held by bob@box \(host box, manual lock, for \d+s\):"
        r" bob investigates; release it with --force\n",
        refused.stderr,
    )
    forced = run_cli("lock", "release", "--app", "web", "--force", env=env)
    assert (forced.returncode, forced.stderr) == (0, "")
    assert cli_json("lock", "status", env=env) == []
    entries = cli_json("audit", "-n", "1", env=env)
    assert isinstance(entries, list) and entries[0]["action"] == "lock.break"


def test_lock_status_json_describes_the_lock(state_dir: Path) -> None:
    env = cli_env(state_dir)
    run_cli("lock", "acquire", "--app", "web", "-m", "hands off", env=env)
    (lock,) = cli_json("lock", "status", "--app", "web", env=env)
    assert {k: lock[k] for k in ("app", "holder", "pid", "manual", "stale", "message")} == {
        "app": "web",
        "holder": ME,
        "pid": None,
        "manual": True,
        "stale": False,
        "message": "hands off",
    }
    assert cli_json("lock", "status", "--app", "api", env=env) == []
    assert "manual" in run_cli("lock", "status", env=env).stdout


def test_the_lock_is_the_spec_apps_and_lives_beside_the_spec(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    del env["IMMUTE_STATE_DIR"]
    (tmp_path / "deploy").mkdir()
    spec = tmp_path / "deploy" / "immute.yaml"
    assert run_cli("init", "-f", str(spec), "--app", "shop", env=env).returncode == 0
    taken = run_cli("lock", "acquire", "-f", str(spec), "-m", "x", env=env, cwd=tmp_path)
    assert (taken.returncode, taken.stdout) == (0, "locked shop: x\n")
    assert (tmp_path / "deploy" / ".immute" / DATABASE_NAME).is_file()
    (lock,) = cli_json("lock", "status", "-f", str(spec), env=env)
    assert lock["app"] == "shop"
    released = run_cli("lock", "release", env=env, cwd=tmp_path / "deploy")
    assert released.returncode == 0, released.stderr
    assert cli_json("lock", "status", "-f", str(spec), env=env) == []


def test_without_a_spec_or_app_the_lock_commands_say_what_is_missing(tmp_path: Path) -> None:
    result = run_cli("lock", "acquire", "-m", "x", env=cli_env(tmp_path / "state"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "error: immute.yaml: no such spec file (run `immute init` to write one)\n"
    )


def test_an_unusable_state_database_is_one_line_and_exit_1(state_dir: Path) -> None:
    Store.open(state_dir).close()
    with closing(sqlite3.connect(state_dir / DATABASE_NAME)) as conn:
        conn.execute("PRAGMA user_version = 999")
    result = run_cli("history", env=cli_env(state_dir))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "has schema version 999, newer than the 1 this immute knows" in result.stderr
