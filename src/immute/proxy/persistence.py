"""The route table on disk: written atomically on every change, read at start."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from immute.core.routes import RouteTable, table_from_json, table_to_json
from immute.errors import RouteError


def save_table(path: Path, table: RouteTable) -> None:
    """Write temp + fsync + rename, so a crash leaves the old table or the new one."""
    data = json.dumps(table_to_json(table), indent=2, sort_keys=True).encode() + b"\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_table(path: Path) -> RouteTable:
    """The saved table, or an empty one when there is no file yet."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RouteTable()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RouteError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    return table_from_json(value, where=str(path))


class Persister:
    """Saves the table after every change without blocking the event loop: the
    write and fsync run in a thread, back-to-back changes coalesce into the
    latest table, and `flush` waits until what changed so far is on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._latest: RouteTable | None = None
        self._task: asyncio.Task[None] | None = None

    def changed(self, table: RouteTable) -> None:
        self._latest = table
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._write())
            self._task.add_done_callback(self._report)

    def _report(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # The proxy keeps serving from memory; the next change tries again.
            sys.stderr.write(f"error: cannot save {self.path}: {task.exception()}\n")

    async def _write(self) -> None:
        while self._latest is not None:
            table, self._latest = self._latest, None
            await asyncio.to_thread(save_table, self.path, table)

    async def flush(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
