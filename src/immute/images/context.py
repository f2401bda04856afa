"""The build context: which files of the app's directory go into the app layer.

Everything below the context, except ``.git/`` and ``.immute/``, what any
``.gitignore`` (at any depth, relative to its own directory) or the root
``.immuteignore`` ignores, and what ``exclude`` patterns match; when ``include``
patterns are given, only files they match. Patterns use gitignore syntax.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pathspec

from immute.errors import ImageError
from immute.images.layer_tar import LayerEntry, entry_for

ALWAYS_EXCLUDED = frozenset({".git", ".immute"})


def _spec(lines: Sequence[str]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _ignore_file(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageError(f"{path}: cannot read: {exc}") from None


def select_files(context: Path, *, include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """Relative POSIX paths of the files and symlinks (not directories) selected."""
    if not context.is_dir():
        raise ImageError(f"build context {context} is not a directory")
    top = _spec([*_ignore_file(context / ".immuteignore"), *exclude])
    wanted = _spec(include) if include else None
    ignores: list[tuple[str, pathspec.GitIgnoreSpec]] = []
    selected: list[str] = []
    for dirpath, dirnames, filenames in os.walk(context):
        rel_dir = Path(dirpath).relative_to(context).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        ignores = [(d, s) for d, s in ignores if rel_dir.startswith(d)]
        lines = _ignore_file(Path(dirpath) / ".gitignore")
        if lines:
            ignores.append((rel_dir, _spec(lines)))

        dirnames[:] = sorted(
            d
            for d in dirnames
            if not (not rel_dir and d in ALWAYS_EXCLUDED)
            and not _ignored(
                rel_dir + d, top, ignores, is_dir=not os.path.islink(os.path.join(dirpath, d))
            )
        )
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                selected.append(rel_dir + d)
        for name in filenames:
            rel = rel_dir + name
            if _ignored(rel, top, ignores, is_dir=False) or not _regular_or_link(dirpath, name):
                continue
            if wanted is None or wanted.match_file(rel):
                selected.append(rel)
    return sorted(selected)


def _regular_or_link(dirpath: str, name: str) -> bool:
    """Sockets, FIFOs and devices (a running agent's socket, say) are never app files."""
    mode = os.lstat(os.path.join(dirpath, name)).st_mode
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def _ignored(
    rel: str,
    top: pathspec.GitIgnoreSpec,
    ignores: list[tuple[str, pathspec.GitIgnoreSpec]],
    *,
    is_dir: bool,
) -> bool:
    """Whether the root ignore rules or a .gitignore of an enclosing directory
    (matched relative to that directory) leave ``rel`` out."""
    probe = rel + "/" if is_dir else rel
    if top.match_file(probe):
        return True
    return any(spec.match_file(probe[len(base) :]) for base, spec in ignores)


def app_entries(
    context: Path, *, include: Sequence[str], exclude: Sequence[str], workdir: str
) -> list[LayerEntry]:
    """Layer entries placing the selected files under ``workdir``."""
    under = workdir.strip("/")
    entries = [LayerEntry(under)]
    for rel in select_files(context, include=include, exclude=exclude):
        entry = entry_for(context / rel, f"{under}/{rel}")
        if entry is not None:
            entries.append(entry)
    return entries
