"""Image archives in and out of the store, and re-hashing what is stored.

``export`` writes one tar that is at once an OCI image layout (``oci-layout``,
``index.json``, ``blobs/sha256/``) and a docker-archive (``manifest.json`` whose
paths point into ``blobs/``), the format Docker 25 itself saves, which older
engines load through ``manifest.json`` alone. The loaded image ID is the config
digest because the config blob is written byte for byte.

``import_archive`` reads either format without extracting anything to disk,
checks every digest and every layer entry (see ``unpack.check_layer``) before
it puts a single blob into the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from immute.core.digests import canonical_json
from immute.core.oci_image import (
    ANNOTATION_REF_NAME,
    DEFAULT_EPOCH,
    DOCKER_MANIFEST,
    MEDIA_CONFIG,
    MEDIA_LAYER_GZIP,
    MEDIA_LAYER_TAR,
    MEDIA_MANIFEST,
    OCI_LAYOUT_VERSION,
    Descriptor,
    descriptor_from_json,
    docker_archive_manifest,
    hex_of,
    image_index,
    image_manifest,
)
from immute.errors import ImageError, NotFoundError
from immute.images.store import HashingWriter, ImageStore, Manifest, copy_stream
from immute.images.unpack import check_layer


@dataclass(frozen=True)
class VerifiedBlob:
    digest: str
    size: int
    kind: str


def repo_tag(store: ImageStore, digest: str) -> str:
    """The name an exported image loads under: its store name, else ``immute/<hex12>:latest``."""
    for image in store.images():
        if image.digest == digest and image.names:
            return image.names[0]
    return f"immute/{hex_of(digest)[:12]}:latest"


def export_image(store: ImageStore, digest: str, out: Path) -> str:
    """Write the image as one OCI-layout + docker-archive tar; return its repo tag."""
    manifest = store.manifest(digest)
    tag = repo_tag(store, digest)
    entry = Descriptor(MEDIA_MANIFEST, digest, _size(store, digest)).to_json()
    documents = {
        "index.json": image_index([{**entry, "annotations": {ANNOTATION_REF_NAME: tag}}]),
        "manifest.json": docker_archive_manifest(
            config_digest=manifest.config.digest,
            layer_digests=[layer.digest for layer in manifest.layers],
            repo_tags=[tag],
        ),
        "oci-layout": {"imageLayoutVersion": OCI_LAYOUT_VERSION},
    }
    blobs = sorted({digest, *(b.digest for b in manifest.blobs())})
    temp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with tarfile.open(temp, "w", format=tarfile.PAX_FORMAT) as tar:
            _add_dir(tar, "blobs")
            _add_dir(tar, "blobs/sha256")
            for blob in blobs:
                with store.blob_path(blob).open("rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    _add_file(tar, f"blobs/sha256/{hex_of(blob)}", handle, size)
            for name, document in documents.items():
                _add_bytes(tar, name, canonical_json(document))
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return tag


def _info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = DEFAULT_EPOCH
    info.uname = info.gname = ""
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = _info(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, handle: IO[bytes], size: int) -> None:
    info = _info(name)
    info.mode, info.size = 0o644, size
    tar.addfile(info, handle)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    _add_file(tar, name, io.BytesIO(data), len(data))


# --- import ------------------------------------------------------------------


class _Archive:
    """Random access to an archive's regular files by normalised name."""

    def __init__(self, tar: tarfile.TarFile, path: Path) -> None:
        self.tar = tar
        self.path = path
        self.members = {m.name.removeprefix("./").lstrip("/"): m for m in tar.getmembers()}

    def open(self, name: str) -> IO[bytes]:
        member = self.members.get(name.removeprefix("./"))
        handle = self.tar.extractfile(member) if member is not None else None
        if handle is None:
            raise ImageError(f"{self.path}: {name} is missing or not a file")
        return handle

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.open(name).read())
        except ValueError as exc:
            raise ImageError(f"{self.path}: {name}: invalid JSON: {exc}") from None


@dataclass
class _Staged:
    """Blobs copied to temporary files and checked, not yet in the store."""

    files: dict[str, Path]


def import_archive(store: ImageStore, path: Path) -> tuple[str, str | None]:
    """Take an OCI or docker-archive tar into the store, every blob and every layer
    entry checked first; return (manifest digest, name or None)."""
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by the with below)
    except (OSError, tarfile.TarError) as exc:
        raise ImageError(f"{path}: not a readable tar archive: {exc}") from None
    with tar, store.writing(), _staging(store) as staged:
        archive = _Archive(tar, path)
        if "index.json" in archive.members:
            manifest, name = _stage_oci(store, archive, staged)
        elif "manifest.json" in archive.members:
            manifest, name = _stage_docker(store, archive, staged)
        else:
            raise ImageError(
                f"{path}: neither an OCI layout (index.json) nor a docker-archive (manifest.json)"
            )
        _check_layers(store, manifest, staged, where=str(path))
        for digest, temp in sorted(staged.files.items()):
            store.adopt(temp, digest)
        staged.files.clear()
        store.add_image(
            Descriptor(MEDIA_MANIFEST, manifest.digest, _size(store, manifest.digest)), name=name
        )
    return manifest.digest, name


def _size(store: ImageStore, digest: str) -> int:
    return store.blob_path(digest).stat().st_size


@contextlib.contextmanager
def _staging(store: ImageStore) -> Iterator[_Staged]:
    staged = _Staged({})
    try:
        yield staged
    finally:
        for temp in staged.files.values():
            temp.unlink(missing_ok=True)


def _stage(
    store: ImageStore, source: IO[bytes], staged: _Staged, *, expect: Descriptor | None
) -> Descriptor:
    with store.temp_file() as temp:
        try:
            writer = HashingWriter(temp)
            copy_stream(source, writer)
        except BaseException:
            Path(temp.name).unlink()
            raise
    if expect is not None and (writer.digest != expect.digest or writer.size != expect.size):
        Path(temp.name).unlink()
        got = f"{writer.digest}, {writer.size} bytes"
        raise ImageError(f"blob {expect.digest} does not match its content (got {got})")
    staged.files.setdefault(writer.digest, Path(temp.name))
    if staged.files[writer.digest] != Path(temp.name):
        Path(temp.name).unlink()
    return Descriptor(expect.media_type if expect else "", writer.digest, writer.size)


def _stage_oci(
    store: ImageStore, archive: _Archive, staged: _Staged
) -> tuple[Manifest, str | None]:
    entries = (archive.json("index.json") or {}).get("manifests") or []
    if not entries:
        raise ImageError(f"{archive.path}: index.json lists no image")
    entry = descriptor_from_json(entries[0], where=f"{archive.path}: index.json manifests[0]")
    notes = entries[0].get("annotations") or {}
    name = notes.get("io.containerd.image.name") or None

    def blob(desc: Descriptor) -> Descriptor:
        return _stage(
            store, archive.open(f"blobs/sha256/{hex_of(desc.digest)}"), staged, expect=desc
        )

    blob(entry)
    manifest_json = json.loads(staged.files[entry.digest].read_bytes())
    if manifest_json.get("mediaType") not in (MEDIA_MANIFEST, None, DOCKER_MANIFEST):
        kind = manifest_json.get("mediaType")
        raise ImageError(f"{archive.path}: manifest {entry.digest}: unsupported media type {kind}")
    try:
        config = descriptor_from_json(manifest_json.get("config"), where="config")
        layers = tuple(
            descriptor_from_json(d, where=f"layers[{i}]")
            for i, d in enumerate(manifest_json.get("layers") or [])
        )
    except ValueError as exc:
        raise ImageError(f"{archive.path}: manifest {entry.digest}: {exc}") from None
    for desc in (config, *layers):
        blob(desc)
    if not isinstance(name, str):
        name = _repo_tag(archive) if "manifest.json" in archive.members else None
    return Manifest(entry.digest, config, layers), name


def _repo_tag(archive: _Archive) -> str | None:
    """The first ``RepoTags`` entry of a docker-archive ``manifest.json``, if any."""
    items = archive.json("manifest.json")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        tags = items[0].get("RepoTags") or []
        if tags and isinstance(tags[0], str):
            return tags[0]
    return None


def _stage_docker(
    store: ImageStore, archive: _Archive, staged: _Staged
) -> tuple[Manifest, str | None]:
    items = archive.json("manifest.json")
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise ImageError(f"{archive.path}: manifest.json lists no image")
    item = items[0]
    config = _stage(store, archive.open(str(item.get("Config"))), staged, expect=None)
    layers = []
    for layer_path in item.get("Layers") or []:
        desc = _stage(store, archive.open(str(layer_path)), staged, expect=None)
        with staged.files[desc.digest].open("rb") as handle:
            gz = handle.read(2) == b"\x1f\x8b"
        layers.append(
            Descriptor(MEDIA_LAYER_GZIP if gz else MEDIA_LAYER_TAR, desc.digest, desc.size)
        )
    config = Descriptor(MEDIA_CONFIG, config.digest, config.size)
    data = canonical_json(image_manifest(config, layers))
    with store.temp_file() as temp:
        temp.write(data)
    manifest_digest = "sha256:" + hashlib.sha256(data).hexdigest()
    staged.files[manifest_digest] = Path(temp.name)
    return Manifest(manifest_digest, config, tuple(layers)), _repo_tag(archive)


def _check_layers(store: ImageStore, manifest: Manifest, staged: _Staged, *, where: str) -> None:
    config = json.loads(staged.files[manifest.config.digest].read_bytes())
    diff_ids = ((config or {}).get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(manifest.layers):
        raise ImageError(
            f"{where}: config lists {len(diff_ids)} diff ids for {len(manifest.layers)} layers"
        )
    for i, (layer, expected) in enumerate(zip(manifest.layers, diff_ids, strict=True)):
        diff_id = check_layer(
            staged.files[layer.digest], where=f"{where}: layer {i} ({layer.digest[:19]})"
        )
        if diff_id != expected:
            raise ImageError(f"{where}: layer {i} has diff id {diff_id}, config says {expected}")


# --- verify ------------------------------------------------------------------


def verify_image(store: ImageStore, digest: str) -> list[VerifiedBlob]:
    """Re-hash the manifest and every blob it names, and each layer's diff id;
    raises ImageError naming the first blob that does not match."""
    checked = [_rehash(store, Descriptor(MEDIA_MANIFEST, digest, _size(store, digest)), "manifest")]
    manifest = store.manifest(digest)
    checked.append(_rehash(store, manifest.config, "config"))
    config = store.read_json(manifest.config.digest)
    diff_ids = ((config or {}).get("rootfs") or {}).get("diff_ids") or []
    for i, layer in enumerate(manifest.layers):
        checked.append(_rehash(store, layer, "layer"))
        diff_id = check_layer(
            store.blob_path(layer.digest), where=f"layer {i} ({layer.digest[:19]})"
        )
        if i >= len(diff_ids) or diff_id != diff_ids[i]:
            raise ImageError(f"layer {i} ({layer.digest}) has diff id {diff_id}, not the config's")
    return checked


def _rehash(store: ImageStore, desc: Descriptor, kind: str) -> VerifiedBlob:
    digest = hashlib.sha256()
    size = 0
    try:
        with store.blob_path(desc.digest).open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise NotFoundError(f"{kind} blob {desc.digest} is missing from the store") from None
    actual = "sha256:" + digest.hexdigest()
    if actual != desc.digest or size != desc.size:
        raise ImageError(
            f"{kind} blob {desc.digest} is corrupt: content hashes to {actual}, {size} bytes"
        )
    return VerifiedBlob(desc.digest, size, kind)
