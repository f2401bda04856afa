"""What the image commands call: the spec mapped to build inputs, and the store
found in the app's state directory (``$IMMUTE_STATE_DIR`` or ``.immute/``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from immute.client.specfile import DEFAULT_SPEC, read_spec, state_dir
from immute.core.spec_loading import LoadedSpec
from immute.errors import ImageError, UsageError
from immute.images.archive import export_image, import_archive, verify_image
from immute.images.builder import build
from immute.images.dependencies import default_dependency_files, fetch_wheels
from immute.images.inputs import BuildInputs, BuildResult
from immute.images.prune import PruneReport, prune
from immute.images.roots import unpack_image
from immute.images.store import ImageStore
from immute.images.unpack import UnpackReport


def image_store(file: str | None) -> ImageStore:
    return ImageStore(state_dir(file) / "images")


def wheelhouse_path(file: str | None, override: str | None) -> Path:
    """``--wheelhouse``, else ``$IMMUTE_WHEELHOUSE``, else ``wheelhouse/`` in the state dir."""
    chosen = override or os.environ.get("IMMUTE_WHEELHOUSE")
    return Path(chosen) if chosen else state_dir(file) / "wheelhouse"


def inputs_from_spec(
    loaded: LoadedSpec, spec_path: Path, *, offline: bool = False, wheelhouse: Path | None = None
) -> BuildInputs:
    """The build inputs a loaded spec describes; paths are relative to the spec."""
    spec = loaded.spec
    if spec.build.dockerfile is not None:
        raise ImageError(
            f"{spec_path}: build.dockerfile: building a stack from a Dockerfile is not "
            "supported; import the base image and pin its digest in build.stack"
        )
    context = (spec_path.parent / spec.build.context).resolve()
    dependencies = tuple(spec.build.dependencies) or default_dependency_files(context)
    return BuildInputs(
        app=spec.app,
        context=context,
        processes={name: tuple(p.command) for name, p in spec.processes.items()},
        include=tuple(spec.build.include),
        exclude=tuple(spec.build.exclude),
        dependency_files=dependencies,
        stack=spec.build.stack,
        workdir=spec.build.workdir,
        env=dict(spec.env),
        spec_digest=loaded.spec_digest,
        offline=offline,
        wheelhouse=wheelhouse,
    )


def build_image(
    file: str | None,
    destination: str | None,
    *,
    offline: bool,
    wheelhouse: str | None,
    progress: Callable[[str], None],
) -> BuildResult:
    loaded = read_spec(file, destination)
    house = wheelhouse_path(file, wheelhouse)
    inputs = inputs_from_spec(loaded, Path(file or DEFAULT_SPEC), offline=offline, wheelhouse=house)
    return build(image_store(file), inputs, progress=progress)


def fetch_dependencies(
    file: str | None, destination: str | None, wheelhouse: str | None
) -> tuple[Path, list[str]]:
    """Fill the wheelhouse with the app's dependencies; return it and its wheels."""
    loaded = read_spec(file, destination)
    inputs = inputs_from_spec(loaded, Path(file or DEFAULT_SPEC))
    house = wheelhouse_path(file, wheelhouse)
    wheels = fetch_wheels(
        python=inputs.python,
        context=inputs.context,
        files=inputs.dependency_files,
        wheelhouse=house,
    )
    return house, wheels


@dataclass(frozen=True)
class ImageRow:
    digest: str
    names: tuple[str, ...]
    size: int
    age_seconds: int | None
    releases: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "digest": self.digest,
            "names": list(self.names),
            "size": self.size,
            "age_seconds": self.age_seconds,
            "releases": list(self.releases),
        }


def list_images(
    file: str | None, *, releases: Mapping[str, Sequence[str]] | None = None
) -> list[ImageRow]:
    """Every stored image, newest first; ``releases`` maps an image digest to the
    releases that use it (supplied by the release store)."""
    now = int(time.time())
    rows = [
        ImageRow(
            digest=image.digest,
            names=image.names,
            size=image.size,
            age_seconds=None if image.stored_at is None else max(0, now - image.stored_at),
            releases=tuple((releases or {}).get(image.digest, ())),
        )
        for image in image_store(file).images()
    ]
    return sorted(rows, key=lambda r: (r.age_seconds is None, r.age_seconds or 0, r.digest))


def export(file: str | None, ref: str, out: Path) -> tuple[str, str]:
    store = image_store(file)
    digest = store.resolve(ref)
    return digest, export_image(store, digest, out)


def import_(file: str | None, archive: Path) -> tuple[str, str | None]:
    if not archive.is_file():
        raise UsageError(f"{archive}: no such file")
    return import_archive(image_store(file), archive)


def verify(file: str | None, ref: str) -> tuple[str, int]:
    """Re-hash every blob of the image; return (digest, number of blobs checked)."""
    store = image_store(file)
    digest = store.resolve(ref)
    return digest, len(verify_image(store, digest))


def unpack(file: str | None, ref: str, target: Path) -> tuple[str, UnpackReport]:
    store = image_store(file)
    digest = store.resolve(ref)
    return digest, unpack_image(store, digest, target)


def prune_images(
    file: str | None, *, keep: Sequence[str], referenced: Collection[str] = (), dry_run: bool
) -> PruneReport:
    """Collect what neither a name, ``keep`` (refs) nor ``referenced`` (digests of
    retained releases and running instances) holds."""
    store = image_store(file)
    wanted = {store.resolve(ref) for ref in keep} | set(referenced)
    return prune(store, wanted, keep_named=True, dry_run=dry_run)
