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
from typing import TYPE_CHECKING

from immute.errors import ImageError
from immute.images.context_cache import Recorder
from immute.images.layer_tar import LayerEntry, entry_for

if TYPE_CHECKING:
    import pathspec

ALWAYS_EXCLUDED = frozenset({".git", ".immute"})
IGNORE_FILES = (".gitignore", ".immuteignore")


def _spec(lines: Sequence[str]) -> pathspec.GitIgnoreSpec:
    # Imported here: a build whose context is unchanged never matches a pattern.
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


def _ignore_file(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageError(f"{path}: cannot read: {exc}") from None


def select_files(
    context: Path,
    *,
    include: Sequence[str],
    exclude: Sequence[str],
    remember: Path | None = None,
) -> list[str]:
    """Relative POSIX paths of the files and symlinks (not directories) selected;
    with ``remember`` (a cache directory), reused while the context's directories
    and ignore files are unchanged (see ``context_cache``)."""
    if not context.is_dir():
        raise ImageError(f"build context {context} is not a directory")
    if remember is None:
        return _walk(context, include=include, exclude=exclude, recorder=None)
    recorder = Recorder(remember, context=context, patterns=[include, exclude])
    files = recorder.recall()
    if files is None:
        files = _walk(context, include=include, exclude=exclude, recorder=recorder)
        recorder.remember(files)
    return files


def _walk(
    context: Path,
    *,
    include: Sequence[str],
    exclude: Sequence[str],
    recorder: Recorder | None,
) -> list[str]:
    top = _spec([*_ignore_file(context / ".immuteignore"), *exclude])
    wanted = _spec(include) if include else None
    ignores: list[tuple[str, pathspec.GitIgnoreSpec]] = []
    selected: list[str] = []
    for dirpath, dirnames, filenames in os.walk(context):
        rel_dir = Path(dirpath).relative_to(context).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        if recorder is not None:
            _witness(recorder, dirpath, rel_dir, filenames)
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


def _witness(recorder: Recorder, dirpath: str, rel_dir: str, filenames: list[str]) -> None:
    """Record the directory and the ignore files read in it (``.immuteignore`` only
    at the root). A missing one needs no record: creating it changes the directory."""
    recorder.saw(dirpath, rel_dir or ".")
    for name in IGNORE_FILES:
        if name in filenames and (name == ".gitignore" or not rel_dir):
            recorder.saw(os.path.join(dirpath, name), rel_dir + name)


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
    context: Path,
    *,
    include: Sequence[str],
    exclude: Sequence[str],
    workdir: str,
    remember: Path | None = None,
) -> list[LayerEntry]:
    """Layer entries placing the selected files under ``workdir``."""
    under = workdir.strip("/")
    entries = [LayerEntry(under)]
    files = select_files(context, include=include, exclude=exclude, remember=remember)
    for rel in files:
        entry = entry_for(context / rel, f"{under}/{rel}")
        if entry is not None:
            entries.append(entry)
    return entries
