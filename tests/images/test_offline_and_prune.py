"""Offline builds from the wheelhouse, and garbage collection of the store."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from images.image_testkit import NO_INDEX, build_here, immute, layers_by_role, write_app
from immute.images.prune import PruneReport, prune
from immute.images.roots import materialise
from immute.images.store import ImageStore


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_deps_fetch_then_offline_build_installs_only_from_the_wheelhouse(
    tmp_path: Path, local_pip: dict[str, str], installer: str
) -> None:
    app = write_app(tmp_path / "shop")
    local_pip = {**local_pip, "IMMUTE_INSTALLER": installer}
    fetched = immute("deps", "fetch", cwd=app, env=local_pip)
    assert fetched.returncode == 0, fetched.stderr
    wheelhouse = app / ".immute" / "wheelhouse"
    assert [p.name for p in wheelhouse.iterdir()] == ["tinydep-1.0-py3-none-any.whl"]
    # No index and no find-links: only the wheelhouse can provide tinydep.
    built = immute("build", "--offline", "--json", cwd=app, env={**NO_INDEX, **local_pip})
    assert built.returncode == 0, built.stderr
    layers = layers_by_role(json.loads(built.stdout))
    assert layers["dependencies"]["cached"] is False
    (app / "requirements.txt").write_text("tinydep==1.0\notherdep==2.0\n")
    # otherdep is in the local index that the installer's settings point at, not in
    # the wheelhouse.
    missing = immute("build", "--offline", cwd=app, env=local_pip)
    assert missing.returncode == 1
    errors = [line for line in missing.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and missing.stderr.endswith(errors[0] + "\n")
    assert "otherdep" in errors[0] and "wheelhouse" in errors[0]


def test_offline_build_without_a_wheelhouse_says_what_to_run(tmp_path: Path) -> None:
    app = write_app(tmp_path / "shop")
    result = immute("build", "--offline", cwd=app)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: offline build: no wheelhouse") and "immute deps fetch" in last


def _blob(app: Path, digest: object) -> Path:
    return app / ".immute" / "images" / "blobs" / "sha256" / str(digest).removeprefix("sha256:")


def test_prune_removes_only_unreferenced_images_and_blobs(
    tmp_path: Path, local_pip: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "shop")
    old = build_here(app, local_pip, monkeypatch)
    materialise(ImageStore(app / ".immute" / "images"), old["manifest_digest"])
    (app / "app.py").write_text("print('v2')\n")
    new = build_here(app, local_pip, monkeypatch)
    old_only = [old["manifest_digest"], old["config_digest"], layers_by_role(old)["app"]["digest"]]
    expected_bytes = sum(_blob(app, d).stat().st_size for d in old_only)

    dry = immute("prune", "--dry-run", "--json", cwd=app)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["images"] == [old["manifest_digest"]]
    assert sorted(plan["blobs"]) == sorted(old_only)
    assert plan["roots"] == [old["manifest_digest"]]
    assert all(_blob(app, d).exists() for d in old_only), "--dry-run deletes nothing"

    done = immute("prune", "--json", cwd=app)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["images"] == plan["images"] and report["blobs"] == plan["blobs"]
    assert report["freed_bytes"] >= expected_bytes
    assert not any(_blob(app, d).exists() for d in old_only)
    assert not (app / ".immute" / "images" / "roots" / old["manifest_digest"][7:]).exists()
    verified = immute("image", "verify", "demo", cwd=app)
    assert verified.returncode == 0, verified.stderr
    (app / "app.py").write_text("print('v3')\n")
    again = layers_by_role(build_here(app, NO_INDEX, monkeypatch))
    assert again["dependencies"]["cached"] is True, "the dependency layer survived prune"
    assert new["manifest_digest"] != old["manifest_digest"]


def test_prune_keeps_referenced_images(
    tmp_path: Path, local_pip: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "shop", requirements=None)
    old = build_here(app, local_pip, monkeypatch)
    (app / "app.py").write_text("print('v2')\n")
    build_here(app, local_pip, monkeypatch)
    store = ImageStore(app / ".immute" / "images")
    report = prune(store, {old["manifest_digest"]})
    assert report.images == [] and report.blobs == []
    kept = immute("prune", "--keep", old["manifest_digest"][:16], "--json", cwd=app)
    assert json.loads(kept.stdout)["images"] == []
    assert len(store.images()) == 2


def test_prune_waits_for_a_build_in_progress(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    results: list[PruneReport] = []
    with store.writing():
        # A blob a build has written but not yet referenced from any image.
        pending = store.put_bytes(b"layer of a build in progress")
        worker = threading.Thread(target=lambda: results.append(prune(store, set())))
        worker.start()
        worker.join(timeout=0.5)
        assert worker.is_alive() and results == [], "prune must wait for the store lock"
        assert store.has_blob(pending)
    worker.join(timeout=60)
    assert results and results[0].blobs == [pending]
    assert not store.has_blob(pending)


def test_concurrent_builds_into_one_store_all_land_in_the_index(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from immute.images.builder import build
    from immute.images.inputs import BuildInputs

    store = ImageStore(tmp_path / "images")

    def one(i: int) -> str:
        context = tmp_path / f"app{i}"
        context.mkdir()
        (context / "main.py").write_text(f"print({i})\n")
        inputs = BuildInputs(app=f"app{i}", context=context, processes={"web": ["python3"]})
        return build(store, inputs).manifest_digest

    with ThreadPoolExecutor(max_workers=6) as pool:
        digests = list(pool.map(one, range(12)))
    listed = {image.digest: image.names for image in store.images()}
    assert set(listed) == set(digests)
    assert sorted(name for names in listed.values() for name in names) == sorted(
        f"app{i}:latest" for i in range(12)
    )
