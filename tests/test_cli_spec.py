"""The spec commands, run as a user runs them: through the `immute` program."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml


def immute(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "immute", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_init_writes_a_valid_spec_and_refuses_to_overwrite(tmp_path: Path) -> None:
    app_dir = tmp_path / "My Shop"
    app_dir.mkdir()
    first = immute("init", cwd=app_dir)
    assert first.returncode == 0, first.stderr
    written = (app_dir / "immute.yaml").read_text()
    assert written.startswith("# immute.yaml")
    assert "app: my-shop" in written
    second = immute("init", cwd=app_dir)
    assert second.returncode == 2
    assert second.stderr == "error: immute.yaml already exists; not overwriting it\n"
    assert (app_dir / "immute.yaml").read_text() == written
    validated = immute("config", "validate", "--json", cwd=app_dir)
    assert validated.returncode == 0, validated.stderr
    assert json.loads(validated.stdout)["valid"] is True


def test_validate_reports_every_problem_as_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "immute.yaml").write_text(
        "app: a\nprocesses:\n  web:\n    command: run\n    instancs: 2\nstrategy:\n  bake: soon\n"
    )
    result = immute("config", "validate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        'error: immute.yaml:5:5: processes.web.instancs: unknown key "instancs"; '
        'did you mean "instances"?',
        'error: immute.yaml:7:3: strategy.bake: expected a duration like "30s", "5m" or '
        '"1h30m", got "soon"',
    ]


def test_missing_spec_and_missing_overlay_are_named(tmp_path: Path) -> None:
    missing = immute("config", "validate", cwd=tmp_path)
    assert missing.returncode == 1
    assert "immute.yaml: no such spec file (run `immute init` to write one)" in missing.stderr
    immute("init", cwd=tmp_path)
    overlay = immute("config", "validate", "-d", "prod", cwd=tmp_path)
    assert overlay.returncode == 1
    assert "immute.prod.yaml: no such spec file" in overlay.stderr


def test_show_output_is_a_spec_with_the_same_digests(tmp_path: Path) -> None:
    immute("init", cwd=tmp_path)
    (tmp_path / "immute.prod.yaml").write_text("processes:\n  web:\n    instances: 5\n")
    shown = immute("config", "show", "-d", "prod", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout)["processes"]["web"]["instances"] == 5
    (tmp_path / "shown.yaml").write_text(shown.stdout)
    as_json = json.loads(immute("config", "show", "-d", "prod", "--json", cwd=tmp_path).stdout)
    again = json.loads(immute("config", "show", "-f", "shown.yaml", "--json", cwd=tmp_path).stdout)
    assert again["spec_digest"] == as_json["spec_digest"]
    assert again["config_digest"] == as_json["config_digest"]
    assert f"# spec digest:   {as_json['spec_digest']}" in shown.stdout


def test_secrets_appear_as_names_only(tmp_path: Path) -> None:
    (tmp_path / "immute.yaml").write_text(
        "app: a\nprocesses:\n  web:\n    command: run\nsecrets: [DATABASE_URL]\n"
    )
    shown = immute("config", "show", "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["spec"]["secrets"] == ["DATABASE_URL"]


def test_schema_is_json_schema_of_the_spec(tmp_path: Path) -> None:
    result = immute("schema", cwd=tmp_path)
    schema = json.loads(result.stdout)
    assert schema["title"] == "immute.yaml"
    assert schema["required"] == ["app", "processes"]
    assert schema["additionalProperties"] is False
    assert "max_surge" in schema["$defs"]["Strategy"]["properties"]


def test_runtime_option_overrides_the_spec_and_is_checked_like_it(tmp_path: Path) -> None:
    (tmp_path / "immute.yaml").write_text("app: a\nprocesses:\n  web:\n    command: run\n")
    unknown = immute("deploy", "--dry-run", "--runtime", "kubernetes", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr == (
        'error: --runtime:1:1: runtime: expected one of "process" or "docker", got "kubernetes"\n'
    )
    garbled = immute("build", "--runtime", "docker\nbuild: {}", cwd=tmp_path)
    assert garbled.returncode == 2
    assert garbled.stderr.startswith("error: --runtime: 'docker\\nbuild: {}' is not a runtime")
    docker = immute("build", "--runtime", "docker", cwd=tmp_path)
    assert docker.returncode == 2
    assert "build.stack: the docker runtime needs a base image with Python" in docker.stderr
    assert not (tmp_path / ".immute" / "images").exists()
