"""Hand-made layers, hostile ones included, stored as images without the builder."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from immute.core.oci_image import MEDIA_CONFIG, MEDIA_LAYER_TAR, Descriptor, image_manifest
from immute.images.store import ImageStore

Member = tuple[str, ...]


def layer(*members: Member) -> bytes:
    """A tar of members: (file, name, data[, mode]), (dir, name), (symlink, name, target),
    (hardlink, name, target), (chr, name), (fifo, name)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, *rest in members:
            info = tarfile.TarInfo(name)
            info.mode = int(rest[1], 8) if kind == "file" and len(rest) > 1 else 0o755
            data = b""
            if kind == "file":
                data = rest[0].encode()
                info.size = len(data)
            else:
                info.type = {
                    "dir": tarfile.DIRTYPE,
                    "symlink": tarfile.SYMTYPE,
                    "hardlink": tarfile.LNKTYPE,
                    "chr": tarfile.CHRTYPE,
                    "fifo": tarfile.FIFOTYPE,
                }[kind]
                info.linkname = rest[0] if rest else ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def store_image(store: ImageStore, layers: list[bytes], *, name: str = "hostile:latest") -> str:
    """Put raw layers into the store as an image, as a careless importer would."""
    descs = [Descriptor(MEDIA_LAYER_TAR, store.put_bytes(data), len(data)) for data in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [d.digest for d in descs]},
    }
    config_desc = store.put_json(config)
    manifest = store.put_json(
        image_manifest(Descriptor(MEDIA_CONFIG, config_desc.digest, config_desc.size), descs)
    )
    store.add_image(manifest, name=name)
    return manifest.digest


def docker_archive(path: Path, layers: list[bytes]) -> Path:
    """A docker-archive tar (what `docker save` writes) holding these layers."""
    diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]
    config = json.dumps({"os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    files = {"config.json": config.encode()}
    for i, data in enumerate(layers):
        files[f"{i}/layer.tar"] = data
    manifest = [{"Config": "config.json", "RepoTags": ["hostile:1"], "Layers": list(files)[1:]}]
    files["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
