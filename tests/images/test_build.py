"""Reproducible builds and the dependency-layer cache."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from images.image_testkit import NO_INDEX, build_here, build_json, immute, layers_by_role, write_app


def _blob(app: Path, digest: object) -> Path:
    return app / ".immute" / "images" / "blobs" / "sha256" / str(digest).removeprefix("sha256:")


def test_two_fresh_directories_give_the_same_manifest_digest(
    tmp_path: Path, local_pip: dict[str, str]
) -> None:
    first = build_json(write_app(tmp_path / "one" / "shop"), env=local_pip)
    second = build_json(write_app(tmp_path / "elsewhere" / "deeper" / "shop"), env=local_pip)
    assert first["manifest_digest"] == second["manifest_digest"]
    assert first["config_digest"] == second["config_digest"]
    assert [layer["cached"] for layer in first["layers"]] == [False, False]


def test_code_change_rebuilds_only_the_app_layer_and_reuses_the_dependency_layer(
    tmp_path: Path, local_pip: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "shop")
    before = layers_by_role(build_here(app, local_pip, monkeypatch))
    (app / "app.py").write_text("import tinydep\nprint('changed', tinydep.VERSION)\n")
    # No package source at all: a dependency install would fail, so success means a cache hit.
    after = layers_by_role(build_here(app, NO_INDEX, monkeypatch))
    assert after["dependencies"]["cached"] is True
    assert after["dependencies"]["digest"] == before["dependencies"]["digest"]
    assert after["app"]["digest"] != before["app"]["digest"]
    with tarfile.open(_blob(app, after["app"]["digest"])) as tar:
        source = tar.extractfile("app/app.py")
        assert source is not None
        assert b"changed" in source.read()
    (app / "requirements.txt").write_text("tinydep==1.0\notherdep==2.0\n")
    changed = layers_by_role(build_here(app, local_pip, monkeypatch))
    assert changed["dependencies"]["cached"] is False
    assert changed["dependencies"]["digest"] != before["dependencies"]["digest"]
    with tarfile.open(_blob(app, changed["dependencies"]["digest"])) as tar:
        names = tar.getnames()
    assert "opt/immute/deps/otherdep/__init__.py" in names
    with tarfile.open(_blob(app, changed["dependencies"]["digest"])) as tar:
        script = tar.extractfile("opt/immute/deps/bin/tinydep-cli")
        assert script is not None
        assert script.readline() == b"#!/usr/bin/env python3\n"


def test_layers_are_normalised_tarballs_with_one_fixed_time(
    tmp_path: Path, local_pip: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "shop")
    (app / "run.sh").write_text("#!/bin/sh\n")
    (app / "run.sh").chmod(0o4775)
    build = build_here(app, {**local_pip, "SOURCE_DATE_EPOCH": "1700000000"}, monkeypatch)
    layers = layers_by_role(build)
    app_blob = _blob(app, layers["app"]["digest"]).read_bytes()
    assert app_blob[3] & 0x08 == 0, "gzip header must carry no file name"
    assert app_blob[4:8] == b"\0\0\0\0", "gzip header mtime must be 0"
    raw = gzip.decompress(app_blob)
    assert b"mtime=" not in raw and b"atime=" not in raw and b"ctime=" not in raw
    with tarfile.open(_blob(app, layers["app"]["digest"])) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:2] == ["app", "app/app.py"]
    assert {m.mtime for m in members} == {1700000000}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    modes = {m.name: m.mode for m in members}
    assert modes["app"] == 0o755 and modes["app/static"] == 0o755
    assert modes["app/app.py"] == 0o644 and modes["app/run.sh"] == 0o755
    later = build_here(app, {**local_pip, "SOURCE_DATE_EPOCH": "1800000000"}, monkeypatch)
    assert layers_by_role(later)["dependencies"] == {**layers["dependencies"], "cached": True}
    assert layers_by_role(later)["app"]["digest"] != layers["app"]["digest"]


def test_context_honours_gitignore_immuteignore_exclude_and_include(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "shop", requirements=None)
    (app / ".gitignore").write_text("*.log\nbuild/\n")
    (app / ".immuteignore").write_text("secrets.txt\n")
    (app / "static" / ".gitignore").write_text("generated.css\n")
    for name in ("debug.log", "secrets.txt", "notes.md", "build/out.txt", "static/generated.css"):
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text("x\n")
    (app / ".git").mkdir()
    (app / ".git" / "HEAD").write_text("not a real repository\n")
    spec = (app / "immute.yaml").read_text()
    exclude = spec.replace("  context: .\n", "  context: .\n  exclude: ['*.md']\n")
    (app / "immute.yaml").write_text(exclude)
    assert _app_files(app, monkeypatch) == {
        "app/.gitignore",
        "app/.immuteignore",
        "app/app.py",
        "app/immute.yaml",
        "app/static/.gitignore",
        "app/static/style.css",
    }
    (app / "immute.yaml").write_text(exclude.replace("exclude: ['*.md']", "include: ['*.py']"))
    assert _app_files(app, monkeypatch) == {"app/app.py"}


def _app_files(app: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    layers = layers_by_role(build_here(app, {}, monkeypatch))
    assert set(layers) == {"app"}, "no dependency files, so no dependency layer"
    with tarfile.open(_blob(app, layers["app"]["digest"])) as tar:
        return {m.name for m in tar.getmembers() if m.isfile()}


def test_config_carries_processes_env_workdir_revision_and_commit_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "shop", requirements=None)
    spec = (app / "immute.yaml").read_text()
    (app / "immute.yaml").write_text(
        spec + "  worker:\n    command: [python, worker.py]\nenv:\n  LOG_LEVEL: debug\n"
    )
    revision = _commit_everything(app, when=1650000000)
    config = _config(app, build_here(app, {}, monkeypatch))
    labels = config["config"]["Labels"]
    assert json.loads(labels["dev.immute.process.web"]) == ["python", "-m", "http.server", "$PORT"]
    assert json.loads(labels["dev.immute.process.worker"]) == ["python", "worker.py"]
    assert labels["dev.immute.spec-digest"].startswith("sha256:")
    assert labels["org.opencontainers.image.revision"] == revision
    assert config["created"] == "2022-04-15T05:20:00Z"
    assert config["config"]["Cmd"] == ["python", "-m", "http.server", "$PORT"]
    assert config["config"]["WorkingDir"] == "/app"
    assert "LOG_LEVEL=debug" in config["config"]["Env"]
    assert len(config["rootfs"]["diff_ids"]) == 1


def _config(app: Path, build: dict[str, Any]) -> dict[str, Any]:
    value = json.loads(_blob(app, build["config_digest"]).read_text())
    assert isinstance(value, dict)
    return value


def _commit_everything(repo: Path, *, when: int) -> str:
    git = shutil.which("git")
    assert git is not None, "git is on every machine this project runs on"
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": f"@{when} +0000",
        "GIT_COMMITTER_DATE": f"@{when} +0000",
    }
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for argv in (["init", "-q"], ["add", "."], [*ident, "commit", "-q", "-m", "first"]):
        subprocess.run([git, *argv], cwd=repo, env=env, check=True, capture_output=True)
    head = subprocess.run([git, "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True)
    return head.stdout.decode().strip()


def test_build_without_a_spec_is_a_one_line_error(tmp_path: Path) -> None:
    result = immute("build", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "immute.yaml" in result.stderr


def test_a_base_image_pinned_by_digest_is_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from images.layer_kit import docker_archive, layer

    app = write_app(tmp_path / "shop", requirements=None)
    base_tar = docker_archive(
        tmp_path / "base.tar", [layer(("file", "usr/bin/python3", "#!/bin/sh\n", "0755"))]
    )
    imported = immute("image", "import", str(base_tar), cwd=app)
    assert imported.returncode == 0, imported.stderr
    base = imported.stdout.split()[1]
    # A base image is a stack for the docker runtime (the process runtime runs on the host).
    spec = (app / "immute.yaml").read_text() + "runtime: docker\n"
    with_stack = spec.replace("  context: .\n", "  context: .\n  stack: STACK\n")
    (app / "immute.yaml").write_text(with_stack.replace("STACK", base))
    build = build_here(app, {}, monkeypatch)
    roles = [layer["role"] for layer in build["layers"]]
    assert roles == ["stack", "app"]
    assert build["layers"][0]["cached"] is True and build["layers"][0]["diff_id"].startswith("sha")
    manifest = json.loads(_blob(app, build["manifest_digest"]).read_text())
    base_manifest = json.loads(_blob(app, base).read_text())
    assert manifest["layers"][0] == base_manifest["layers"][0]
    config = _config(app, build)
    assert config["config"]["Labels"]["dev.immute.stack"] == base
    assert len(config["rootfs"]["diff_ids"]) == 2
    (app / "immute.yaml").write_text(with_stack.replace("STACK", "sha256:" + "0" * 64))
    missing = immute("build", cwd=app)
    assert missing.returncode == 1 and "immute image import FILE" in missing.stderr
    # Asked without an engine too: the error still says what to do.
    missing = immute("build", cwd=app, env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert missing.returncode == 1, missing.stderr
    assert "immute image import FILE" in missing.stderr and "start dockerd" in missing.stderr


def test_a_state_directory_inside_the_context_stays_out_of_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "shop", requirements=None)
    build = build_here(app, {"IMMUTE_STATE_DIR": str(app / "state")}, monkeypatch)
    app_layer = layers_by_role(build)["app"]["digest"]
    blob = app / "state" / "images" / "blobs" / "sha256" / app_layer.removeprefix("sha256:")
    with tarfile.open(blob) as tar:
        names = tar.getnames()
    assert "app/app.py" in names
    assert not any(name.startswith("app/state") for name in names)


def test_pyproject_dependencies_are_installed_when_there_is_no_requirements_file(
    tmp_path: Path, local_pip: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "shop", requirements=None)
    (app / "pyproject.toml").write_text(
        '[project]\nname = "shop"\nversion = "1"\ndependencies = ["otherdep==2.0"]\n'
    )
    layers = layers_by_role(build_here(app, local_pip, monkeypatch))
    with tarfile.open(_blob(app, layers["dependencies"]["digest"])) as tar:
        names = tar.getnames()
    assert "opt/immute/deps/otherdep/__init__.py" in names
    assert not any("tinydep" in name for name in names)
    (app / "pyproject.toml").write_text('[project\nname = "broken"\n')
    result = immute("build", cwd=app, env=local_pip)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        f"error: {app / 'pyproject.toml'}: cannot read"
    )


def test_the_installer_and_its_version_are_in_the_dependency_cache_key(
    tmp_path: Path, local_pip: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "shop")
    with_uv = layers_by_role(build_here(app, local_pip, monkeypatch))["dependencies"]
    pip = {**local_pip, "IMMUTE_INSTALLER": "pip"}
    with_pip = layers_by_role(build_here(app, pip, monkeypatch))["dependencies"]
    assert with_pip["cached"] is False and with_pip["digest"] != with_uv["digest"]
    again = layers_by_role(build_here(app, NO_INDEX, monkeypatch))["dependencies"]
    assert again == {**with_uv, "cached": True}
    with tarfile.open(_blob(app, with_uv["digest"])) as tar:
        installer = tar.extractfile("opt/immute/deps/tinydep-1.0.dist-info/INSTALLER")
        assert installer is not None and installer.read().strip() == b"uv"
        assert not any(name.endswith("/.lock") for name in tar.getnames())
    wrong = immute("build", cwd=app, env={"IMMUTE_INSTALLER": "conda"})
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines()[-1] == (
        "error: $IMMUTE_INSTALLER: 'conda' is not an installer (uv or pip)"
    )
