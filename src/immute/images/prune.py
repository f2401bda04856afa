"""Garbage collection of the image store.

An image survives when its digest is in ``referenced`` (retained releases,
running instances: the caller knows them) or, with ``keep_named``, when it
carries a name such as ``app:latest``. A blob survives when a surviving image
needs it. Builds and imports in progress hold the store's shared lock and prune
its exclusive one, so a blob written but not yet referenced is never collected.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from immute.core.oci_image import hex_of
from immute.errors import ImageError
from immute.images.roots import remove_root, roots_dir
from immute.images.store import ImageStore


@dataclass
class PruneReport:
    images: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    dry_run: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "images": self.images,
            "blobs": self.blobs,
            "roots": self.roots,
            "freed_bytes": self.freed_bytes,
        }


def prune(
    store: ImageStore,
    referenced: Collection[str],
    *,
    keep_named: bool = True,
    dry_run: bool = False,
) -> PruneReport:
    """Remove unreferenced images, their blobs and their materialised roots."""
    with store.collecting():
        return _collect(store, set(referenced), keep_named=keep_named, dry_run=dry_run)


def _collect(
    store: ImageStore, referenced: set[str], *, keep_named: bool, dry_run: bool
) -> PruneReport:
    images = store.images()
    kept = {i.digest for i in images if i.digest in referenced or (keep_named and i.names)}
    live: set[str] = set()
    for digest in kept:
        live.add(digest)
        with contextlib.suppress(ImageError):
            live.update(b.digest for b in store.manifest(digest).blobs())
    report = PruneReport(dry_run=dry_run)
    report.images = sorted(i.digest for i in images if i.digest not in kept)
    for digest in store.blob_digests():
        if digest not in live:
            report.blobs.append(digest)
            report.freed_bytes += store.blob_path(digest).stat().st_size
    report.roots = sorted(
        "sha256:" + p.name
        for p in _root_dirs(store)
        if len(p.name) == 64 and "sha256:" + p.name not in kept
    )
    report.freed_bytes += sum(_tree_size(roots_dir(store) / hex_of(d)) for d in report.roots)
    if not dry_run:
        _delete(store, report, live)
    return report


def _root_dirs(store: ImageStore) -> list[Path]:
    directory = roots_dir(store)
    return sorted(directory.iterdir()) if directory.is_dir() else []


def _tree_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _delete(store: ImageStore, report: PruneReport, live: set[str]) -> None:
    store.remove_images(set(report.images))
    for digest in report.blobs:
        store.blob_path(digest).unlink(missing_ok=True)
    for digest in report.roots:
        remove_root(roots_dir(store) / hex_of(digest))
    for stale in _root_dirs(store):
        if stale.name.startswith(".tmp-"):
            remove_root(stale)
    for temp in (store.root / "tmp").iterdir():
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)
    _drop_stale_cache(store, live)


def _drop_stale_cache(store: ImageStore, live: set[str]) -> None:
    """Forget dependency layers whose blob was collected."""
    cache = store.root / "cache" / "deps"
    if not cache.is_dir():
        return
    for entry in cache.glob("*.json"):
        try:
            digest = json.loads(entry.read_text(encoding="utf-8"))["digest"]
        except (OSError, ValueError, KeyError, TypeError):
            digest = None
        if digest not in live:
            entry.unlink(missing_ok=True)
