"""The stack an image is built on: ``host``, a base image in immute's store, one
taken from the Docker engine, or one a Dockerfile builds.

What a pinned digest means: ``sha256:...`` (alone or after ``name@``) names
either an image in immute's store by its manifest digest (what ``immute image
import`` and ``immute images`` print) or an image by its configuration digest,
which is the Docker engine's image ID (``docker image inspect --format
'{{.Id}}'``). A base that is in neither the store nor the engine is an error
saying what to do; one in the engine is saved (``docker save``) and imported
through ``image import``'s checks, and its config digest must then equal the
pin. The ``name`` before ``@`` names the image in the store; it is otherwise a
comment, since the digest decides.

A Dockerfile stack is built by the engine (see ``runtimes.docker_images``),
imported the same way, and named ``<app>-stack:latest`` in the store. The
engine's build cache keeps an unchanged Dockerfile and context at the same
image ID, and an image ID already in the store is not saved again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from immute.core.oci_image import MEDIA_MANIFEST, Descriptor, is_digest
from immute.errors import EngineError, ImageError, NotFoundError
from immute.images.inputs import HOST_STACK, BuildInputs
from immute.images.store import ImageStore, Manifest


class StackEngine(Protocol):
    """What the stack resolution needs of a container engine."""

    def image_id(self, reference: str) -> str | None:
        """The engine's ID of the image ``reference`` names, None when it has none."""
        ...

    def save(self, image_id: str, out: Path) -> None:
        """Write ``docker save`` of ``image_id`` to ``out``."""
        ...

    def build(
        self, dockerfile: Path, *, context: Path, epoch: int, progress: Callable[[str], None]
    ) -> str:
        """Build the Dockerfile; return the resulting image's ID."""
        ...


class Stack(NamedTuple):
    """The base layers and config; ``digest`` is the base's manifest digest in the
    store (None for ``host``)."""

    digest: str | None
    manifest: Manifest | None
    config: dict[str, Any] | None

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        return self.manifest.layers if self.manifest is not None else ()


HOST = Stack(None, None, None)


def resolve_stack(
    store: ImageStore,
    inputs: BuildInputs,
    *,
    engine: StackEngine | None,
    epoch: int,
    progress: Callable[[str], None],
) -> Stack:
    """The stack ``inputs`` asks for, in the store once this returns."""
    if inputs.dockerfile is not None:
        engine = _need_engine(engine, f"build.dockerfile {inputs.dockerfile}")
        progress(f"stack: docker build {inputs.dockerfile}")
        image_id = engine.build(
            inputs.dockerfile, context=inputs.dockerfile.parent, epoch=epoch, progress=progress
        )
        digest = _from_engine(store, engine, image_id, name=f"{inputs.app}-stack:latest")
        return _stack(store, digest)
    if inputs.stack == HOST_STACK:
        return HOST
    name, _, digest = inputs.stack.rpartition("@")
    if not is_digest(digest):
        raise ImageError(
            f"stack {inputs.stack!r}: expected 'host' or a base image pinned by sha256 digest"
        )
    found = _in_store(store, digest)
    if found is None:
        found = _pinned_from_engine(store, engine, inputs.stack, name=name, digest=digest)
    return _stack(store, found)


def _stack(store: ImageStore, digest: str) -> Stack:
    manifest = store.manifest(digest)
    config = store.read_json(manifest.config.digest)
    return Stack(digest, manifest, config if isinstance(config, dict) else None)


def _in_store(store: ImageStore, digest: str) -> str | None:
    """The manifest digest of the stored image whose manifest or config is ``digest``."""
    if store.has_blob(digest):
        try:
            store.manifest(digest)
            return digest
        except (ImageError, NotFoundError):
            pass
    for image in store.images():
        try:
            if store.manifest(image.digest).config.digest == digest:
                return image.digest
        except (ImageError, NotFoundError):
            continue
    return None


def _missing(stack: str) -> str:
    return (
        f"stack {stack}: the base image is neither in immute's store nor in the Docker "
        "engine; run 'immute image import FILE' or 'docker pull'/'docker load' it"
    )


def _need_engine(engine: StackEngine | None, what: str) -> StackEngine:
    if engine is None:
        raise ImageError(f"{what}: needs the Docker engine, and none is configured")
    return engine


def _pinned_from_engine(
    store: ImageStore, engine: StackEngine | None, stack: str, *, name: str, digest: str
) -> str:
    if engine is None:
        raise ImageError(_missing(stack))
    try:
        image_id = engine.image_id(digest)
    except EngineError as exc:
        raise ImageError(
            f"stack {stack}: the base image is not in immute's store (run 'immute image "
            f"import FILE') and the Docker engine cannot be asked: {exc}"
        ) from None
    if image_id is None and name:
        named = engine.image_id(name)
        if named is not None:
            raise ImageError(
                f"stack {stack}: the engine's {name} is {named}, not the pinned digest; "
                f"pin {name}@{named} or load the image the pin names"
            )
    if image_id is None:
        raise ImageError(_missing(stack))
    if image_id != digest:
        raise ImageError(f"stack {stack}: the engine's image is {image_id}, not the pinned digest")
    return _from_engine(store, engine, image_id, name=name or None)


def _from_engine(store: ImageStore, engine: StackEngine, image_id: str, *, name: str | None) -> str:
    """The manifest digest of engine image ``image_id`` in the store, saved from
    the engine and imported (every blob and layer entry checked) if need be."""
    from immute.images.archive import import_archive

    digest = _in_store(store, image_id)
    if digest is None:
        with tempfile.TemporaryDirectory(dir=store.root / "tmp", prefix="stack-") as temp:
            tar = Path(temp) / "stack.tar"
            engine.save(image_id, tar)
            digest, _ = import_archive(store, tar)
        config = store.manifest(digest).config.digest
        if config != image_id:
            raise ImageError(
                f"the engine saved image {image_id} with config {config}: refusing it as a stack"
            )
    if name is not None:
        size = store.blob_path(digest).stat().st_size
        store.add_image(Descriptor(MEDIA_MANIFEST, digest, size), name=name)
    return digest
