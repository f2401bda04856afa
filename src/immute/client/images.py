"""What the image commands call: the spec mapped to build inputs, and the store
found in the app's state directory (``$IMMUTE_STATE_DIR`` or ``.immute/``)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from immute.client.specfile import spec_paths, state_dir
from immute.errors import NotFoundError, UsageError
from immute.images.store import ImageStore, StoredImage

if TYPE_CHECKING:
    from immute.core.release import Release
    from immute.core.spec_loading import LoadedSpec
    from immute.images.inputs import BuildInputs, BuildResult
    from immute.images.prune import PruneReport
    from immute.images.stacks import StackEngine
    from immute.images.unpack import UnpackReport

# Each function imports the image modules it uses: `immute build` must not pay
# for the archive and prune code, and a warm build is measured end to end.


def image_store(file: str | None, *, create: bool = True) -> ImageStore:
    """The app's store; commands that only read pass ``create=False``."""
    return ImageStore(state_dir(file) / "images", create=create)


def wheelhouse_path(file: str | None, override: str | None) -> Path:
    """``--wheelhouse``, else ``$IMMUTE_WHEELHOUSE``, else ``wheelhouse/`` in the state dir."""
    chosen = override or os.environ.get("IMMUTE_WHEELHOUSE")
    return Path(chosen) if chosen else state_dir(file) / "wheelhouse"


def build_image(
    file: str | None,
    destination: str | None,
    *,
    offline: bool,
    wheelhouse: str | None,
    progress: Callable[[str], None],
    runtime: str | None = None,
    loaded: LoadedSpec | None = None,
) -> BuildResult:
    """Build the spec's image; ``loaded`` is the spec when the caller has just
    validated it (a deploy), so it is not read and validated again."""
    from immute.client.build_inputs import fields_from_spec, inputs_from_fields, load_build_fields
    from immute.images.builder import build

    if loaded is not None:
        fields = fields_from_spec(loaded, spec_paths(file, destination)[0])
    else:
        fields = load_build_fields(file, destination, runtime=runtime)
    house = wheelhouse_path(file, wheelhouse)
    inputs = inputs_from_fields(fields, offline=offline, wheelhouse=house)
    with _engine(file, inputs) as engine:
        return build(image_store(file), inputs, progress=progress, engine=engine)


@contextlib.contextmanager
def _engine(file: str | None, inputs: BuildInputs) -> Iterator[StackEngine | None]:
    """The Docker engine as a source of stacks; None on the host stack, which
    then pays for no runtime module."""
    from immute.images.inputs import HOST_STACK

    if inputs.stack == HOST_STACK:
        yield None
        return
    from immute.runtimes.docker_images import EngineImages

    engine = EngineImages(state_dir=state_dir(file))
    try:
        yield engine
    finally:
        engine.close()


def fetch_dependencies(
    file: str | None, destination: str | None, wheelhouse: str | None
) -> tuple[Path, list[str]]:
    """Fill the wheelhouse with the app's dependencies, for the stack's Python;
    return it and its wheels."""
    from immute.client.build_inputs import inputs_from_fields, load_build_fields
    from immute.images.builder import stack_python
    from immute.images.dependencies import fetch_wheels

    inputs = inputs_from_fields(load_build_fields(file, destination))
    house = wheelhouse_path(file, wheelhouse)
    with _engine(file, inputs) as engine:
        target = stack_python(image_store(file), inputs, engine=engine)
    wheels = fetch_wheels(
        python=inputs.python,
        context=inputs.context,
        files=inputs.dependency_files,
        wheelhouse=house,
        target=target,
    )
    return house, wheels


class ImageRow(NamedTuple):
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
    """Every stored image, newest first, with the releases that use it (from the
    state store unless ``releases`` maps image digests to release names)."""
    from immute.core.image_retention import images_in_use

    used = releases if releases is not None else images_in_use(_releases(file))
    now = int(time.time())
    rows = [
        ImageRow(
            digest=image.digest,
            names=image.names,
            size=image.size,
            age_seconds=None if image.stored_at is None else max(0, now - image.stored_at),
            releases=tuple(used.get(image.digest, ())),
        )
        for image in _existing_images(file)
    ]
    return sorted(rows, key=lambda r: (r.age_seconds is None, r.age_seconds or 0, r.digest))


def _releases(file: str | None) -> list[Release]:
    """Every release in the state store; none when there is no database yet."""
    from immute.store import Store

    directory = state_dir(file)
    if not Store.exists(directory):
        return []
    with Store.open(directory) as store:
        return store.releases.all()


def _retain_images(file: str | None) -> int:
    """``retain.images`` of the spec, or its default when there is no spec file."""
    from immute.core.spec import Retain

    try:
        from immute.client.specfile import read_spec

        return read_spec(file).spec.retain.images
    except NotFoundError:
        return Retain().images


def _existing_images(file: str | None) -> list[StoredImage]:
    try:
        return image_store(file, create=False).images()
    except NotFoundError:
        return []


def export(file: str | None, ref: str, out: Path) -> tuple[str, str]:
    from immute.images.archive import export_image

    store = image_store(file, create=False)
    digest = store.resolve(ref)
    return digest, export_image(store, digest, out)


def import_(file: str | None, archive: Path) -> tuple[str, str | None]:
    if not archive.is_file():
        raise UsageError(f"{archive}: no such file")
    from immute.images.archive import import_archive

    return import_archive(image_store(file), archive)


def verify(file: str | None, ref: str) -> tuple[str, int]:
    """Re-hash every blob of the image; return (digest, number of blobs checked)."""
    from immute.images.archive import verify_image

    store = image_store(file, create=False)
    digest = store.resolve(ref)
    return digest, len(verify_image(store, digest))


def unpack(file: str | None, ref: str, target: Path) -> tuple[str, UnpackReport]:
    from immute.images.roots import unpack_image

    store = image_store(file, create=False)
    digest = store.resolve(ref)
    return digest, unpack_image(store, digest, target)


def prune_images(
    file: str | None, *, keep: Sequence[str], referenced: Collection[str] = (), dry_run: bool
) -> PruneReport:
    """Collect what nothing holds: not a name (``app:latest``), not ``keep`` (refs),
    not the images of the releases that ``retain.images`` keeps (or of a pending or
    active release), not ``referenced`` (digests, e.g. of running instances)."""
    from immute.core.image_retention import retained_images
    from immute.images.prune import prune

    store = image_store(file, create=False)
    wanted = {store.resolve(ref) for ref in keep} | set(referenced)
    wanted |= retained_images(_releases(file), keep=_retain_images(file))
    return prune(store, wanted, keep_named=True, dry_run=dry_run)
