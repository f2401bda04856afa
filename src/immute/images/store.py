"""The content-addressed image store: an OCI image layout on disk.

``<root>/oci-layout``, ``<root>/index.json`` and ``<root>/blobs/sha256/<hex>``, as
the OCI image-layout spec has it, so any OCI tool can read the store directly.
Blobs are written to a temporary file and renamed into place, so a blob that
exists is complete; identical blobs are stored once.

Two locks: ``gc.lock`` is held shared by every writer (build, import) for its
whole duration and exclusively by prune, so prune never deletes a blob that a
build has written but not yet referenced; ``index.lock`` serialises updates of
``index.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, NamedTuple, Protocol

from immute.core.digests import canonical_json, sha256_digest
from immute.core.oci_image import (
    ANNOTATION_REF_NAME,
    ANNOTATION_STORED_AT,
    MEDIA_MANIFEST,
    OCI_LAYOUT_VERSION,
    Descriptor,
    descriptor_from_json,
    hex_of,
    image_index,
    is_digest,
)
from immute.errors import ImageError, NotFoundError

_CHUNK = 1 << 20


class StoredImage(NamedTuple):
    """One image listed in the store's index."""

    digest: str
    size: int
    names: tuple[str, ...] = ()
    stored_at: int | None = None
    annotations: Mapping[str, str] = MappingProxyType({})


class Manifest(NamedTuple):
    """An image manifest's blobs."""

    digest: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    def blobs(self) -> list[Descriptor]:
        return [self.config, *self.layers]


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, target: Sink) -> None:
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._target.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._target.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class ImageStore:
    """An OCI image layout rooted at ``root`` (created on first use)."""

    def __init__(self, root: Path, *, create: bool = True) -> None:
        """Open the store at ``root``; with ``create=False`` a missing store is a
        NotFoundError instead of being created (for commands that only read)."""
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        if not create and not (root / "index.json").is_file():
            raise NotFoundError(f"no image store at {root} (nothing built or imported yet)")
        self.blobs.mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(exist_ok=True)
        _create_once(
            root / "oci-layout", canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION})
        )
        _create_once(root / "index.json", canonical_json(image_index([])))

    # --- locks -------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Held by builds and imports: prune waits until they are done."""
        with _flock(self.root / "gc.lock", fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        """Held by prune: no build or import runs meanwhile."""
        with _flock(self.root / "gc.lock", fcntl.LOCK_EX):
            yield

    # --- blobs -------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def temp_file(self) -> tempfile._TemporaryFileWrapper[bytes]:
        """A temporary file on the store's file system, for a blob being written."""
        return tempfile.NamedTemporaryFile(dir=self.root / "tmp", delete=False)

    def adopt(self, temp: Path, digest: str) -> Path:
        """Move a finished temporary file into place as blob ``digest``."""
        final = self.blob_path(digest)
        if final.exists():
            temp.unlink()
        else:
            os.chmod(temp, 0o444)
            os.replace(temp, final)
        return final

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if not self.has_blob(digest):
            atomic_write(self.blob_path(digest), data, mode=0o444, temp_dir=self.root / "tmp")
        return digest

    def put_json(self, value: Any) -> Descriptor:
        data = canonical_json(value)
        return Descriptor("", self.put_bytes(data), len(data))

    def read_bytes(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in the store {self.root}") from None

    def read_json(self, digest: str) -> Any:
        try:
            return json.loads(self.read_bytes(digest))
        except ValueError as exc:
            raise ImageError(f"blob {digest} is not valid JSON: {exc}") from None

    def manifest(self, digest: str) -> Manifest:
        """The manifest ``digest``; raises ImageError when it is malformed."""
        value = self.read_json(digest)
        try:
            if not isinstance(value, dict):
                raise ValueError("not an object")
            config = descriptor_from_json(value.get("config"), where="config")
            layers = value.get("layers")
            if not isinstance(layers, list):
                raise ValueError("layers: not a list")
            descs = tuple(
                descriptor_from_json(d, where=f"layers[{i}]") for i, d in enumerate(layers)
            )
        except ValueError as exc:
            raise ImageError(f"manifest {digest}: {exc}") from None
        return Manifest(digest, config, descs)

    def blob_digests(self) -> list[str]:
        return sorted("sha256:" + p.name for p in self.blobs.iterdir() if len(p.name) == 64)

    # --- index -------------------------------------------------------------

    def _read_index(self) -> list[dict[str, Any]]:
        try:
            index = json.loads((self.root / "index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ImageError(f"{self.root / 'index.json'}: unreadable: {exc}") from None
        manifests = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(manifests, list):
            raise ImageError(f"{self.root / 'index.json'}: no manifests list")
        return [m for m in manifests if isinstance(m, dict)]

    @contextlib.contextmanager
    def _index_update(self) -> Iterator[list[dict[str, Any]]]:
        with _flock(self.root / "index.lock", fcntl.LOCK_EX):
            entries = self._read_index()
            yield entries
            entries.sort(key=lambda m: str(m.get("digest")))
            atomic_write(
                self.root / "index.json",
                canonical_json(image_index(entries)),
                temp_dir=self.root / "tmp",
            )

    def add_image(self, manifest: Descriptor, *, name: str | None) -> None:
        """List a manifest in the index; ``name`` (``app:tag``) moves to this image."""
        with self._index_update() as entries:
            found = False
            for entry in entries:
                notes = entry.setdefault("annotations", {})
                if name is not None and notes.get(ANNOTATION_REF_NAME) == name:
                    del notes[ANNOTATION_REF_NAME]
                if entry.get("digest") == manifest.digest:
                    found = True
                    if name is not None:
                        notes[ANNOTATION_REF_NAME] = name
            if not found:
                notes = {ANNOTATION_STORED_AT: str(int(time.time()))}
                if name is not None:
                    notes[ANNOTATION_REF_NAME] = name
                entry = {**Descriptor(MEDIA_MANIFEST, manifest.digest, manifest.size).to_json()}
                entry["annotations"] = notes
                entries.append(entry)
            for entry in entries:
                if not entry.get("annotations"):
                    entry.pop("annotations", None)

    def remove_images(self, digests: set[str]) -> None:
        with self._index_update() as entries:
            entries[:] = [e for e in entries if e.get("digest") not in digests]

    def images(self) -> list[StoredImage]:
        result = []
        for i, entry in enumerate(self._read_index()):
            desc = descriptor_from_json(entry, where=f"index.json: manifests[{i}]")
            notes = {str(k): str(v) for k, v in (entry.get("annotations") or {}).items()}
            name = notes.get(ANNOTATION_REF_NAME)
            stored = notes.get(ANNOTATION_STORED_AT, "")
            result.append(
                StoredImage(
                    digest=desc.digest,
                    size=self.image_size(desc.digest),
                    names=(name,) if name else (),
                    stored_at=int(stored) if stored.isdigit() else None,
                    annotations=notes,
                )
            )
        return result

    def image_size(self, manifest_digest: str) -> int:
        """Bytes of the manifest, its config and its layers (as stored, compressed)."""
        if not self.has_blob(manifest_digest):
            return 0
        blobs = self.manifest(manifest_digest).blobs()
        return self.blob_path(manifest_digest).stat().st_size + sum(b.size for b in blobs)

    def resolve(self, ref: str) -> str:
        """The manifest digest that ``ref`` names: a digest, a unique hex prefix of at
        least 4 characters (``sha256:`` optional), or a name like ``app:tag``."""
        images = self.images()
        for image in images:
            if ref in image.names or (":" not in ref and f"{ref}:latest" in image.names):
                return image.digest
        prefix = ref.removeprefix("sha256:")
        if is_digest(ref) or (len(prefix) >= 4 and all(c in "0123456789abcdef" for c in prefix)):
            matches = [
                i.digest for i in images if i.digest.removeprefix("sha256:").startswith(prefix)
            ]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ImageError(
                    f"image reference {ref!r} is ambiguous: {len(matches)} images match"
                )
        raise NotFoundError(f"no image {ref!r} in the store {self.root}")


@contextlib.contextmanager
def _flock(path: Path, kind: int) -> Iterator[None]:
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), kind)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def atomic_write(
    path: Path, data: bytes, *, mode: int = 0o644, temp_dir: Path | None = None
) -> None:
    fd, temp = tempfile.mkstemp(dir=temp_dir or path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def write_cache(path: Path, data: bytes) -> None:
    """Write a cache file atomically, best effort: a cache that cannot be written
    only costs the next run the work it would have saved."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError:
        pass


def _create_once(path: Path, data: bytes) -> None:
    """Write ``path`` complete unless it exists: a concurrent first use of the store
    must not replace an index another process has already added to."""
    if path.exists():
        return
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o644)
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        os.unlink(temp)


def copy_stream(source: IO[bytes], target: IO[bytes] | HashingWriter) -> None:
    while chunk := source.read(_CHUNK):
        target.write(chunk)
