"""Exported tars load into real tools; imports round-trip; unpack through the CLI.

The Docker engine and skopeo tests skip where the tools are absent, and fail
instead when IMMUTE_REQUIRE_DOCKER=1 (CI installs both)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from contract.docker_kit import need, require_engine
from images.image_testkit import build_here, immute, local_index, write_app


def _tool(name: str) -> str:
    """The path of a command the test needs (a Debian package of the same name)."""
    path = shutil.which(name)
    need(path is not None, f"{name} is not installed (apt-get install {name})")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, wheel_index: Path
) -> tuple[Path, Path, dict[str, Any]]:
    """A built app with a unique name, exported to a tar (shared: tests only read it)."""
    tmp_path = tmp_path_factory.mktemp("exported")
    app = write_app(tmp_path / "shop")
    name = f"immute-test-{uuid.uuid4().hex[:10]}"
    spec = (app / "immute.yaml").read_text().replace("app: demo", f"app: {name}")
    spec += "  worker:\n    command: python3 app.py\n"
    (app / "immute.yaml").write_text(spec)
    with pytest.MonkeyPatch.context() as monkeypatch:
        build = build_here(app, local_index(wheel_index), monkeypatch)
    out = tmp_path / "image.tar"
    result = immute("image", "export", f"{name}:latest", "-o", str(out), cwd=app)
    assert result.returncode == 0, result.stderr
    return app, out, build


def test_export_is_an_oci_layout_and_a_docker_archive_that_imports_back(
    exported: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    app, out, build = exported
    again = tmp_path / "again.tar"
    result = immute("image", "export", str(build["manifest_digest"]), "-o", str(again), cwd=app)
    assert result.returncode == 0, result.stderr
    assert again.read_bytes() == out.read_bytes(), "exports are reproducible too"
    with tarfile.open(out) as tar:
        names = tar.getnames()
        index = json.loads(_read(tar, "index.json"))
        docker = json.loads(_read(tar, "manifest.json"))
        layout = json.loads(_read(tar, "oci-layout"))
    assert layout == {"imageLayoutVersion": "1.0.0"}
    assert index["manifests"][0]["digest"] == build["manifest_digest"]
    config_hex = str(build["config_digest"]).removeprefix("sha256:")
    assert docker[0]["Config"] == f"blobs/sha256/{config_hex}"
    assert all(path in names for path in [docker[0]["Config"], *docker[0]["Layers"]])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    imported = immute("image", "import", str(out), cwd=elsewhere)
    assert imported.returncode == 0, imported.stderr
    assert str(build["manifest_digest"]) in imported.stdout
    verified = immute("image", "verify", str(build["manifest_digest"])[:19], cwd=elsewhere)
    assert verified.returncode == 0, verified.stderr
    assert "4 blobs verified" in verified.stdout


def test_verify_detects_a_corrupted_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = write_app(tmp_path / "shop", requirements=None)
    build = build_here(app, {}, monkeypatch)
    blob = app / ".immute" / "images" / "blobs" / "sha256"
    app_layer = str(build["layers"][-1]["digest"]).removeprefix("sha256:")
    (blob / app_layer).chmod(0o644)
    (blob / app_layer).write_bytes(b"corrupted")
    result = immute("image", "verify", str(build["manifest_digest"]), cwd=app)
    assert result.returncode != 0
    assert f"sha256:{app_layer}" in result.stderr and result.stderr.count("\n") == 1


def test_unpack_materialises_the_full_root(exported: tuple[Path, Path, dict[str, Any]]) -> None:
    app, _, build = exported
    target = app.parent / "unpacked"
    result = immute("image", "unpack", str(build["manifest_digest"]), str(target), cwd=app)
    assert result.returncode == 0, result.stderr
    assert (target / "app" / "app.py").read_text() == (app / "app.py").read_text()
    assert (target / "opt" / "immute" / "deps" / "tinydep" / "__init__.py").is_file()
    again = immute("image", "unpack", str(build["manifest_digest"]), str(target), cwd=app)
    assert again.returncode == 1 and "not empty" in again.stderr


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    assert handle is not None
    return handle.read()


@pytest.mark.docker
def test_docker_loads_the_export_with_the_config_digest_as_image_id(
    exported: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    require_engine()
    app, out, build = exported
    name = f"{json.loads(_spec_app(app))}:latest"
    loaded = subprocess.run(["docker", "load", "-i", str(out)], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    try:
        inspect = subprocess.run(
            ["docker", "image", "inspect", name], capture_output=True, text=True, check=True
        )
        image = json.loads(inspect.stdout)[0]
        assert image["Id"] == build["config_digest"]
        assert image["RootFS"]["Layers"] == [layer["diff_id"] for layer in build["layers"]]
        saved = tmp_path / "saved.tar"
        subprocess.run(["docker", "save", "-o", str(saved), name], check=True)
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        imported = immute("image", "import", str(saved), cwd=fresh)
        assert imported.returncode == 0, imported.stderr
        listed = immute("images", "--json", cwd=fresh)
        rows = json.loads(listed.stdout)
        assert len(rows) == 1 and name in rows[0]["names"]
        verified = immute("image", "verify", name, cwd=fresh)
        assert verified.returncode == 0, verified.stderr
    finally:
        subprocess.run(["docker", "rmi", name], capture_output=True, check=False)


def _spec_app(app: Path) -> str:
    line = next(
        ln for ln in (app / "immute.yaml").read_text().splitlines() if ln.startswith("app:")
    )
    return json.dumps(line.split(":", 1)[1].strip())


@pytest.mark.docker
def test_skopeo_reads_the_export_as_oci_archive_and_docker_archive(
    exported: tuple[Path, Path, dict[str, Any]],
) -> None:
    skopeo = _tool("skopeo")
    _, out, build = exported
    oci = subprocess.run(
        [skopeo, "inspect", f"oci-archive:{out}"], capture_output=True, text=True, check=False
    )
    assert oci.returncode == 0, oci.stderr
    assert json.loads(oci.stdout)["Digest"] == build["manifest_digest"]
    docker = subprocess.run(
        [skopeo, "inspect", "--config", f"docker-archive:{out}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert docker.returncode == 0, docker.stderr
    assert json.loads(docker.stdout)["rootfs"]["diff_ids"] == [
        layer["diff_id"] for layer in build["layers"]
    ]


@pytest.mark.docker
def test_skopeo_copies_the_export_to_a_docker_archive_that_imports_back(
    exported: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    skopeo = _tool("skopeo")
    _, out, _ = exported
    copy = tmp_path / "copy.tar"
    copied = subprocess.run(
        [skopeo, "copy", f"oci-archive:{out}", f"docker-archive:{copy}:copied:1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert copied.returncode == 0, copied.stderr
    imported = immute("image", "import", str(copy), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    listed = json.loads(immute("images", "--json", cwd=tmp_path).stdout)
    assert [row["names"] for row in listed] == [["docker.io/library/copied:1"]]
    verified = immute("image", "verify", "docker.io/library/copied:1", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr


@pytest.mark.docker
def test_podman_loads_the_export_with_the_config_digest_as_image_id(
    exported: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    podman = _tool("podman")
    app, out, build = exported
    # A private store, so nothing else is touched; podman wants a short runroot path.
    runroot = Path(tempfile.mkdtemp(prefix="immute-podman-"))
    storage = [podman, "--storage-driver", "vfs", "--root", str(tmp_path / "root")]
    storage += ["--runroot", str(runroot)]
    try:
        _podman_load(
            storage, out, name=f"localhost/{json.loads(_spec_app(app))}:latest", build=build
        )
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def _podman_load(storage: list[str], out: Path, *, name: str, build: dict[str, Any]) -> None:
    loaded = subprocess.run(
        [*storage, "load", "-i", str(out)], capture_output=True, text=True, check=False, timeout=240
    )
    assert loaded.returncode == 0, loaded.stderr
    assert name in loaded.stdout
    inspect = subprocess.run(
        [*storage, "image", "inspect", "--format", "{{.Id}}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert inspect.returncode == 0, inspect.stderr
    assert inspect.stdout.strip() == str(build["config_digest"]).removeprefix("sha256:")


def test_a_process_runs_from_the_materialised_root_on_the_host_stack(
    exported: tuple[Path, Path, dict[str, Any]],
) -> None:
    from immute.images.host_run import host_run
    from immute.images.store import ImageStore

    app, _, build = exported
    store = ImageStore(app / ".immute" / "images")
    run = host_run(store, build["manifest_digest"], host_env={"PATH": os.environ["PATH"]})
    argv = run.processes["worker"]
    assert argv == ["python3", "app.py"]
    assert run.processes["web"] == ["python", "-m", "http.server", "$PORT"]
    executable = shutil.which(argv[0], path=run.env["PATH"])
    assert executable is not None
    result = subprocess.run(
        [executable, *argv[1:]], cwd=run.cwd, env=run.env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1.0\n", "the image's code and its dependency layer ran"
    assert run.env["PYTHONPATH"] == str(run.root / "opt" / "immute" / "deps")
    assert not any(run.root.rglob("__pycache__")), "nothing was written into the root"
