"""Reproducible layer tarballs: the same entries give the same bytes, anywhere.

Sorted entries with explicit parent directories, modes normalised to 0755/0644,
uid/gid 0 with empty user and group names, one fixed mtime, no PAX time records
(integer mtimes never need one), and gzip with no file name, mtime 0 and a fixed
level. The layer is hashed as it is written: ``diff_id`` over the tar, ``digest``
over the gzip stream.
"""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from immute.core.oci_image import MEDIA_LAYER_GZIP, Descriptor
from immute.errors import ImageError
from immute.images.store import HashingWriter, ImageStore

GZIP_LEVEL = 6
DIR_MODE = 0o755
FILE_MODE = 0o644
EXEC_MODE = 0o755


class LayerEntry(NamedTuple):
    """One entry of a layer: ``path`` inside the image (no leading ``/``) and either
    a directory, a regular file read from ``source``, or a symlink to ``link``."""

    path: str
    source: Path | None = None
    link: str | None = None
    executable: bool = False

    @property
    def is_dir(self) -> bool:
        return self.source is None and self.link is None


class LayerBlob(NamedTuple):
    """A layer written to the store."""

    digest: str
    diff_id: str
    size: int

    def descriptor(self) -> Descriptor:
        return Descriptor(MEDIA_LAYER_GZIP, self.digest, self.size)


def entries_from_tree(root: Path, *, under: str) -> list[LayerEntry]:
    """Every file, directory and symlink below ``root``, placed under ``under``."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            path = base / name
            entry = entry_for(path, f"{under}/{path.relative_to(root).as_posix()}")
            if entry is not None:
                entries.append(entry)
    return entries


def entry_for(path: Path, inside: str) -> LayerEntry | None:
    """The entry for ``path``; None for sockets, FIFOs and devices, which no layer
    built from a directory should carry."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return LayerEntry(inside, link=os.readlink(path))
    if stat.S_ISDIR(info.st_mode):
        return LayerEntry(inside)
    if not stat.S_ISREG(info.st_mode):
        return None
    return LayerEntry(inside, source=path, executable=bool(info.st_mode & 0o111))


def with_parents(entries: Iterable[LayerEntry]) -> list[LayerEntry]:
    """The entries plus every missing parent directory, sorted by path."""
    by_path = {e.path.strip("/"): e for e in entries}
    for path in list(by_path):
        for parent in PurePosixPath(path).parents:
            key = parent.as_posix()
            if key != "." and key not in by_path:
                by_path[key] = LayerEntry(key)
    return [by_path[p] for p in sorted(by_path)]


def write_layer(store: ImageStore, entries: Iterable[LayerEntry], *, mtime: int) -> LayerBlob:
    """Write the layer into the store and return its digests."""
    temp = store.temp_file()
    try:
        compressed = HashingWriter(temp)
        with gzip.GzipFile(
            filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=compressed, mtime=0
        ) as zipped:
            plain = HashingWriter(zipped)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for entry in with_parents(entries):
                    _add(tar, entry, mtime)
        temp.close()
        store.adopt(Path(temp.name), compressed.digest)
    except BaseException:
        temp.close()
        Path(temp.name).unlink(missing_ok=True)
        raise
    return LayerBlob(digest=compressed.digest, diff_id=plain.digest, size=compressed.size)


def _add(tar: tarfile.TarFile, entry: LayerEntry, mtime: int) -> None:
    info = tarfile.TarInfo(entry.path)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.link is not None:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link
        info.mode = 0o777
        tar.addfile(info)
    elif entry.source is None:
        info.type = tarfile.DIRTYPE
        info.mode = DIR_MODE
        tar.addfile(info)
    else:
        info.mode = EXEC_MODE if entry.executable else FILE_MODE
        try:
            with entry.source.open("rb") as handle:
                info.size = os.fstat(handle.fileno()).st_size
                tar.addfile(info, handle)
        except OSError as exc:
            # Unreadable, or shrunk while being read: the layer would be wrong.
            raise ImageError(f"{entry.source}: cannot add to the layer: {exc}") from None
