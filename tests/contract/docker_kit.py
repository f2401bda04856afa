"""A real Docker engine and a real base image for the docker runtime's tests.

No image can be pulled here: the base image is Debian bookworm with Python made
by ``bench/docker_base.py`` (debootstrap, cached as a tar, ``docker import``ed),
then ``docker save``d and imported into immute's store as a user would with
``immute image import``. Tests skip with the reason when no engine answers, and
fail instead when ``IMMUTE_REQUIRE_DOCKER=1`` (CI sets it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import docker_base
from immute.errors import NotFoundError
from immute.images.archive import import_archive
from immute.images.builder import build
from immute.images.inputs import BuildInputs
from immute.images.store import ImageStore


def need(ok: bool, reason: str) -> None:
    """Skip the test for ``reason`` unless CI requires Docker, then fail."""
    if ok:
        return
    if os.environ.get("IMMUTE_REQUIRE_DOCKER") == "1":
        pytest.fail(f"IMMUTE_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def require_engine() -> None:
    docker = shutil.which("docker")
    answers = docker is not None and (
        subprocess.run([docker, "info"], capture_output=True, check=False, timeout=60).returncode
        == 0
    )
    need(answers, "no Docker engine answers `docker info` (run .ci/start-docker)")


def base_in_engine() -> tuple[str, str]:
    """(tag, engine image ID) of the base image, imported into the engine if need be."""
    require_engine()
    try:
        tag = docker_base.ensure_base_image()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        need(False, f"cannot make the Debian base image: {exc}")
        raise
    inspect = ["docker", "image", "inspect", "--format", "{{.Id}}", tag]
    found = subprocess.run(inspect, capture_output=True, text=True, check=True, timeout=60)
    return tag, found.stdout.strip()


def base_image_tar() -> Path:
    """``docker save`` of the base image (cached between runs)."""
    require_engine()
    try:
        return docker_base.saved_image_tar()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        need(False, f"cannot make the Debian base image: {exc}")
        raise


def base_in_store(store: ImageStore) -> str:
    """The base image's manifest digest in ``store``, imported from the saved tar
    unless the store already holds it (importing re-checks 280 MB)."""
    tar = base_image_tar()
    remembered = store.root / f"{tar.stem}.digest"
    with contextlib.suppress(OSError, NotFoundError):
        digest = remembered.read_text().strip()
        store.manifest(digest)
        return digest
    digest, _name = import_archive(store, tar)
    remembered.write_text(digest)
    return digest


def shared_store() -> ImageStore:
    """An image store kept between runs, beside the cached base image."""
    return ImageStore(docker_base.cache_dir() / "immute-store")


def app_image(store: ImageStore, *, source: Path, argv: list[str]) -> str:
    """An image of the single-file app ``source`` at /app/app.py on the base image."""
    base = base_in_store(store)
    with tempfile.TemporaryDirectory(prefix="immute-docker-app-") as temp:
        context = Path(temp)
        shutil.copy(source, context / "app.py")
        inputs = BuildInputs(
            app="docker-contract", context=context, processes={"web": argv}, stack=base
        )
        return build(store, inputs).manifest_digest


forget_engine_images = docker_base.forget_engine_images
