"""A Debian bookworm + Python base image for the Docker side of the benchmark.

No image can be pulled here, so it is made with debootstrap from Debian's
packages, cached as a tar under ``$IMMUTE_BENCH_CACHE`` (default
``~/.cache/immute-bench``), and given to the engine with ``docker import``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BASE_TAG = "immute-bench-base:bookworm"
PACKAGES = "python3,python3-pip,ca-certificates"


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "immute-bench"
    return Path(os.environ.get("IMMUTE_BENCH_CACHE", default))


def _has_image(tag: str) -> bool:
    result = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    return result.returncode == 0


def rootfs_tar() -> Path:
    """The cached root file system tar, made with debootstrap on first use."""
    tar = cache_dir() / "bookworm-python.tar"
    if tar.exists():
        return tar
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    tar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="immute-bench-rootfs-") as temp:
        root = Path(temp) / "root"
        argv = [debootstrap, "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(root)]
        subprocess.run(argv, check=True, capture_output=True)
        # The host's CA bundle, so pip in the container trusts what pip on the host trusts.
        host_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        if host_bundle.exists():
            shutil.copyfile(host_bundle, root / "etc/ssl/certs/ca-certificates.crt")
        partial = tar.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
        partial.rename(tar)
    return tar


def ensure_base_image() -> str:
    """The tag of the base image in the engine, imported from the cached tar if needed."""
    if not _has_image(BASE_TAG):
        subprocess.run(
            ["docker", "import", str(rootfs_tar()), BASE_TAG], check=True, capture_output=True
        )
    return BASE_TAG


def saved_image_tar() -> Path:
    """``docker save`` of the base image, for ``immute image import``; cached
    beside the root file system tar under the engine's image ID."""
    tag = ensure_base_image()
    inspect = ["docker", "image", "inspect", "--format", "{{.Id}}", tag]
    image_id = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip()
    saved = cache_dir() / f"base-{image_id.removeprefix('sha256:')[:16]}.tar"
    if not saved.exists():
        partial = saved.with_suffix(f".partial-{os.getpid()}")
        subprocess.run(["docker", "save", "-o", str(partial), tag], check=True)
        partial.rename(saved)
    return saved


def forget_engine_images(store_root: Path, *, keep: str) -> None:
    """Remove from the engine the images of the immute store at ``store_root``
    that deploys loaded into it, except the manifest ``keep`` and the base image
    (which a store holds when a stack named it by its engine ID)."""
    import docker
    from docker.errors import APIError

    from immute.errors import NotFoundError
    from immute.images.store import ImageStore

    store = ImageStore(store_root, create=False)
    with contextlib.closing(docker.from_env()) as client:
        for image in store.images():
            if image.digest == keep:
                continue
            with contextlib.suppress(APIError, NotFoundError):
                engine_id = store.manifest(image.digest).config.digest
                if BASE_TAG not in client.images.get(engine_id).tags:
                    client.images.remove(engine_id, force=True)


if __name__ == "__main__":
    print(ensure_base_image())
