"""Safe materialisation of image layers into a root directory.

Whatever a layer holds, nothing is written outside the root:

- names with a ``..`` component are refused; absolute names are relative to the root;
- every path is resolved component by component as if the root were ``/`` (as a
  chroot would): symlinks met on the way, absolute or relative, are read with
  ``readlink`` and re-resolved inside the root, never followed by the OS; files
  are created with ``O_NOFOLLOW | O_EXCL`` after the old entry is removed;
- a hard link whose target leaves the root or does not exist in it is refused,
  naming the entry; device nodes and FIFOs are skipped; setuid/setgid bits are
  stripped;
- OCI whiteouts (``.wh.NAME``, ``.wh..wh..opq``) remove lower layers' entries,
  resolved the same way, and are applied before the layer's other entries.

This deliberately does not use ``tarfile``'s extraction at all, filters included.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from immute.errors import ImageError, UnsafeArchiveError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_MAX_LINK_HOPS = 40
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class UnpackReport:
    """What unpacking neutralised rather than wrote as is."""

    entries: int = 0
    skipped_special: list[str] = field(default_factory=list)
    stripped_setid: list[str] = field(default_factory=list)


class HashingReader:
    """A read-only file object hashing everything read through it."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._hash.update(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self._hash.hexdigest()


def entry_parts(name: str, *, where: str) -> list[str]:
    """The components of an entry name, relative to the root; refuses ``..``."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{where}: entry {name!r} has a '..' component; refused")
    return parts


def _link_parts(member: tarfile.TarInfo, *, where: str) -> list[str]:
    parts = [p for p in member.linkname.split("/") if p not in ("", ".")]
    if ".." in parts or not parts:
        raise UnsafeArchiveError(
            f"{where}: entry {member.name!r} is a hard link to {member.linkname!r}, "
            "outside the root; refused"
        )
    return parts


def open_layer(path: Path) -> IO[bytes]:
    """The uncompressed tar stream of a layer blob, gzip or plain."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _members(
    stream: IO[bytes] | HashingReader,
) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                yield tar, member
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImageError(f"unreadable layer: {exc}") from None


def check_layer(path: Path, *, where: str) -> str:
    """Validate every entry's name as unpacking would, without writing anything;
    return the layer's diff id (sha256 of the uncompressed tar)."""
    with open_layer(path) as raw:
        reader = HashingReader(raw)
        for _, member in _members(reader):
            entry_parts(member.name, where=where)
            if member.islnk():
                _link_parts(member, where=where)
        try:
            return reader.drain()
        except (OSError, EOFError) as exc:
            raise ImageError(f"{where}: unreadable layer: {exc}") from None


def apply_layer(path: Path, root: Path, report: UnpackReport, *, where: str) -> None:
    """Apply one layer blob on top of ``root``: whiteouts first, then its entries."""
    with open_layer(path) as stream:
        for _, member in _members(stream):
            parts = entry_parts(member.name, where=where)
            if parts and parts[-1].startswith(WHITEOUT):
                with _entry_errors(member, where=where):
                    _whiteout(root, parts, where=where)
    with open_layer(path) as stream:
        for tar, member in _members(stream):
            parts = entry_parts(member.name, where=where)
            if not parts or parts[-1].startswith(WHITEOUT):
                continue
            report.entries += 1
            with _entry_errors(member, where=where):
                _extract(tar, member, root, parts, report, where=where)


@contextlib.contextmanager
def _entry_errors(member: tarfile.TarInfo, *, where: str) -> Iterator[None]:
    """A layer that cannot be applied (a path through a regular file, say) is an
    ImageError naming the entry, not a crash."""
    try:
        yield
    except OSError as exc:
        raise ImageError(f"{where}: entry {member.name!r}: {exc.strerror or exc}") from None


def resolve(root: Path, parts: list[str]) -> list[str]:
    """Components of ``parts`` inside ``root`` with every symlink resolved as if the
    root were ``/``; ``..`` above the root stays at the root, as in a chroot."""
    resolved: list[str] = []
    pending = list(parts)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(info.st_mode):
            resolved.append(part)
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS:
            raise UnsafeArchiveError(f"too many levels of symbolic links under {'/'.join(parts)!r}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending = target.split("/") + pending
    return resolved


def _place(root: Path, parts: list[str]) -> Path:
    """Host path for an entry: its parent resolved inside the root and created."""
    parent = resolve(root, parts[:-1])
    directory = root
    for part in parent:
        directory = directory / part
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(directory).st_mode):
                raise ImageError(
                    f"{'/'.join(parts)}: parent {'/'.join(parent)} is not a directory"
                ) from None
    return directory / parts[-1]


def _remove(path: Path) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        make_writable(path)
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _whiteout(root: Path, parts: list[str], *, where: str) -> None:
    name = parts[-1]
    directory = root.joinpath(*resolve(root, parts[:-1]))
    if name == OPAQUE:
        if stat.S_ISDIR(_mode(directory)):
            for child in os.listdir(directory):
                _remove(directory / child)
        return
    hidden = name[len(WHITEOUT) :]
    if hidden in ("", ".", "..") or "/" in hidden:
        raise UnsafeArchiveError(f"{where}: whiteout {'/'.join(parts)!r} names no entry; refused")
    if stat.S_ISDIR(_mode(directory)):
        _remove(directory / hidden)


def _mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return 0


def _extract(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    root: Path,
    parts: list[str],
    report: UnpackReport,
    *,
    where: str,
) -> None:
    if (
        member.ischr()
        or member.isblk()
        or member.isfifo()
        or not (member.isfile() or member.isdir() or member.issym() or member.islnk())
    ):
        report.skipped_special.append(member.name)
        return
    mode = member.mode & 0o1777
    if member.mode & 0o6000 and not member.isdir() and not member.issym():
        report.stripped_setid.append(member.name)
    target = _place(root, parts)
    if member.isdir():
        if not stat.S_ISDIR(_mode(target)):
            _remove(target)
            os.mkdir(target, 0o700)
        os.chmod(target, mode | 0o700)
        return
    _remove(target)
    if member.issym():
        os.symlink(member.linkname, target)
    elif member.islnk():
        _hardlink(root, member, target, where=where)
    else:
        _write_file(tar, member, target, mode)


def _hardlink(root: Path, member: tarfile.TarInfo, target: Path, *, where: str) -> None:
    link = _link_parts(member, where=where)
    source = root.joinpath(*resolve(root, link[:-1]), link[-1])
    kind = _mode(source)
    if not kind or stat.S_ISDIR(kind):
        raise UnsafeArchiveError(
            f"{where}: entry {member.name!r} is a hard link to {member.linkname!r}, "
            "which is not a file inside the root; refused"
        )
    os.link(source, target, follow_symlinks=False)


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, mode: int) -> None:
    source = tar.extractfile(member)
    fd = os.open(target, _OPEN_FLAGS, 0o600)
    with os.fdopen(fd, "wb") as out:
        if source is not None:
            shutil.copyfileobj(source, out, 1 << 20)
        os.fchmod(out.fileno(), mode)
    os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)


def make_writable(root: Path) -> None:
    """Give the owner write access again (read-only roots must be removable)."""
    if root.is_symlink() or not root.is_dir():
        return
    os.chmod(root, stat.S_IMODE(os.lstat(root).st_mode) | 0o700)
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | 0o700)


def make_read_only(root: Path) -> None:
    """Remove every write bit below ``root`` (symlinks have none to remove)."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in [*filenames, *dirnames]:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            if not stat.S_ISLNK(info.st_mode):
                os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o222)
    os.chmod(root, stat.S_IMODE(os.lstat(root).st_mode) & ~0o222)
