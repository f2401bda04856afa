"""The build context's file list, remembered while what it was made from stands.

Which files go into the app layer depends on the names in every directory the
walk entered and on the ignore files it read, not on the files' contents (the
layer reads those afresh on every build). Adding, removing or renaming an entry
changes its directory's mtime and ctime, and rewriting an ignore file changes its
own, so a previous walk's list is reused while every such witness stats exactly
as it did; anything else walks again (and then matches patterns with pathspec,
whose import a warm rebuild would otherwise pay for).

A change made within the same clock tick as the walk can leave a timestamp
unchanged, so a walk whose witnesses changed less than ``RACY_SECONDS`` before it
began is not remembered, as git does for its index.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from immute.images.store import write_cache

RACY_SECONDS = 2.0
_FORMAT = 1

Witness = tuple[str, int, int, int, int, int]
"""``(relative path, st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)``."""


def witness(path: str, rel: str) -> Witness:
    info = os.stat(path)
    return (rel, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class Recorder:
    """The witnesses of one walk, and where to remember its result."""

    def __init__(self, directory: Path, *, context: Path, patterns: Sequence[Sequence[str]]):
        self.started_ns = time.time_ns()
        self.context = context
        self.witnesses: list[Witness] = []
        code = Path(__file__).with_name("context.py").stat()
        key = json.dumps(
            [_FORMAT, str(context.resolve()), [list(p) for p in patterns], code.st_mtime_ns]
        )
        self.path = directory / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def saw(self, path: str, rel: str) -> None:
        self.witnesses.append(witness(path, rel))

    def recall(self) -> list[str] | None:
        """The remembered file list, or None when any witness differs (or none is kept)."""
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
            for old in record["witnesses"]:
                if witness(os.path.join(self.context, str(old[0])), str(old[0])) != tuple(old):
                    return None
            files = record["files"]
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
        return [str(f) for f in files] if isinstance(files, list) else None

    def remember(self, files: list[str]) -> None:
        """Keep ``files`` for the next build unless a witness is too recent to trust."""
        racy = self.started_ns - int(RACY_SECONDS * 1e9)
        if any(max(w[4], w[5]) >= racy for w in self.witnesses):
            return
        data = json.dumps({"witnesses": self.witnesses, "files": files}).encode()
        write_cache(self.path, data)
