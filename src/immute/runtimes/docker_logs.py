"""Cursors over the Docker engine's logs, which are addressed by time.

The engine answers ``since=T`` with every line stamped at or after ``T``, and
several lines can share one stamp, so a cursor holds, per stream, the last
stamp read (nanoseconds) and how many lines with exactly that stamp were read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from immute.core.instances import LogLine, LogStream
from immute.errors import InstanceError

# A float carries about 16 significant digits: ask from a little earlier and
# drop what was read by its exact stamp.
SINCE_MARGIN_S = 1e-3


def parse_line(entry: str) -> tuple[int, str]:
    """``(nanoseconds since the epoch, text)`` of one ``timestamps=True`` log line."""
    stamp, _, text = entry.partition(" ")
    return stamp_ns(stamp), text


def stamp_ns(stamp: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 UTC time with up to 9 fraction digits."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        seconds = int(datetime.fromisoformat(head + "+00:00").timestamp())
    except ValueError:
        raise InstanceError(f"unexpected engine log time {stamp!r}") from None
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)


@dataclass
class LogCursor:
    """Where reading stopped in each stream: ``{stream: (stamp_ns, lines at that stamp)}``."""

    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, cursor: str) -> LogCursor:
        positions: dict[str, tuple[int, int]] = {}
        for part in filter(None, cursor.split(";")):
            stream, _, rest = part.partition("=")
            stamp, _, count = rest.partition(",")
            if stream not in ("stdout", "stderr") or not (stamp.isdigit() and count.isdigit()):
                raise InstanceError(f"invalid log cursor {cursor!r}")
            positions[stream] = (int(stamp), int(count))
        return cls(positions)

    def render(self) -> str:
        return ";".join(f"{s}={t},{n}" for s, (t, n) in sorted(self.positions.items()))

    def since(self, stream: str) -> float | None:
        """The engine's ``since`` for a stream: a little before the last stamp read."""
        stamp = self.positions.get(stream, (0, 0))[0]
        return stamp / 1e9 - SINCE_MARGIN_S if stamp else None

    def fresh(self, stream: str, entries: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
        """The ``(stamp_ns, text)`` entries (in the engine's order) not read before;
        call :meth:`advance` with the stamp of each one taken, before asking for the next."""
        last, count = self.positions.get(stream, (0, 0))
        seen_at_last = 0
        for stamp, text in entries:
            if stamp < last:
                continue
            if stamp == last:
                seen_at_last += 1
                if seen_at_last <= count:
                    continue
            yield stamp, text

    def take(
        self,
        stream: LogStream,
        entries: Iterable[tuple[int, str]],
        *,
        instance_id: str,
        lines: list[LogLine],
        limit: int,
    ) -> bool:
        """Append the :meth:`fresh` entries to ``lines``, advancing past each, until
        ``lines`` holds ``limit``; True when fresh entries were left over."""
        for at_ns, text in self.fresh(stream, entries):
            if len(lines) >= limit:
                return True
            self.advance(stream, at_ns)
            lines.append(LogLine(instance_id, stream, text, at=at_ns / 1e9))
        return False

    def advance(self, stream: str, stamp: int) -> None:
        last, count = self.positions.get(stream, (0, 0))
        self.positions[stream] = (last, count + 1) if stamp == last else (stamp, 1)
