"""The route table on disk: written atomically on every change, read at start."""

from __future__ import annotations

import json
import os
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
