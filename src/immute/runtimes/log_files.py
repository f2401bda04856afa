"""Reading instances' append-only log files by byte offset, line by line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MAX_LINE = 64 * 1024
"""Longer lines are cut into pieces of this size, so one runaway line cannot stall a reader."""

CHUNK = 256 * 1024


@dataclass(frozen=True)
class LinesRead:
    lines: list[str]
    offset: int
    at_end: bool
    """Nothing more was in the file when it was read."""


def read_lines(path: Path, offset: int, *, limit: int, final: bool) -> LinesRead:
    """Complete lines from ``offset``; with ``final`` (writer gone) also a last partial one."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read(CHUNK)
    except FileNotFoundError:
        return LinesRead([], offset, at_end=True)
    reached_eof = len(data) < CHUNK
    lines: list[bytes] = []
    pos = 0
    while len(lines) < limit and pos < len(data):
        newline = data.find(b"\n", pos, pos + MAX_LINE)
        if newline != -1:
            end, step = newline, newline + 1
        elif len(data) - pos >= MAX_LINE:
            end = step = pos + MAX_LINE
        elif final and reached_eof:
            end = step = len(data)
        else:
            break
        lines.append(data[pos:end].removesuffix(b"\r"))
        pos = step
    text = [line.decode("utf-8", errors="replace") for line in lines]
    return LinesRead(text, offset + pos, at_end=reached_eof and pos == len(data))
