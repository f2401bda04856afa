"""Image roots on disk: ``unpack`` into any directory, and ``materialise`` into the
shared, content-addressed, read-only root that every instance of an image runs from."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from immute.core.oci_image import hex_of
from immute.errors import ImageError
from immute.images.store import ImageStore
from immute.images.unpack import UnpackReport, apply_layer, make_read_only, make_writable


def roots_dir(store: ImageStore) -> Path:
    return store.root / "roots"


def unpack_image(store: ImageStore, digest: str, target: Path) -> UnpackReport:
    """Materialise every layer of image ``digest`` in order into ``target`` (created;
    it must be empty or absent)."""
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise ImageError(f"unpack target {target} is not empty")
    report = UnpackReport()
    manifest = store.manifest(digest)
    for i, layer in enumerate(manifest.layers):
        where = f"image {digest[:19]} layer {i} ({layer.digest[:19]})"
        apply_layer(store.blob_path(layer.digest), target, report, where=where)
    return report


def materialise(store: ImageStore, digest: str) -> Path:
    """The read-only root of image ``digest``, unpacked once and shared: later calls
    return the same directory. Safe against concurrent callers (rename is atomic)."""
    final = roots_dir(store) / hex_of(digest)
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with store.writing():
        temp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".tmp-{hex_of(digest)[:12]}-"))
        try:
            unpack_image(store, digest, temp)
            make_read_only(temp)
            os.rename(temp, final)
        except OSError:
            if not final.is_dir():
                raise
        finally:
            remove_root(temp)
    return final


def remove_root(path: Path) -> None:
    """Delete a (possibly read-only) root; nothing happens when it is gone."""
    with contextlib.suppress(FileNotFoundError):
        make_writable(path)
        shutil.rmtree(path)
