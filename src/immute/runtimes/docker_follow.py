"""Following a running container's logs instead of asking the engine again and again.

The engine's json-file driver answers ``since=T`` by scanning the container's
whole log, so polling a chatty container several times a second costs the
engine more with every line it has ever written. Instead, after one exact read
the runtime opens one follow stream per output stream (each on a thread of its
own, since the SDK's streams block) from where that read stopped; the stream
fills a buffer that later reads take from without calling the engine at all.
When a stream ends (the container stopped, the engine restarted) or its buffer
holds more than ``MAX_BUFFERED`` unread lines (nobody reads), the follow is
over and the runtime goes back to one exact read, which also decides whether
the instance's logs are complete. A read drops what it has passed, so a reader
behind that point (another cursor) is told the follow no longer covers it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from immute.core.instances import LogBatch, LogLine, LogStream
from immute.runtimes.docker_logs import LogCursor, parse_line

log = logging.getLogger(__name__)

MAX_BUFFERED = 100_000
"""Unread lines per stream before the follow gives up (and reads go back to the engine)."""

OpenStream = Callable[[LogStream, float | None], "Stream"]
"""Opens the engine's follow stream of one output stream from a ``since`` time."""


class Stream(Protocol):
    """What the SDK's ``logs(stream=True, follow=True)`` returns: chunks, and a way out."""

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


@dataclass
class _Pipe:
    """The lines one thread has read from one follow stream and not yet handed out."""

    stream: LogStream
    entries: list[tuple[int, str]] = field(default_factory=list)
    open: bool = True
    source: Stream | None = None
    dropped_before: int = 0
    """Entries stamped before this were dropped: a position before it is not covered."""


class LogFollow:
    """Follow streams of one container, started at ``position``; read with :meth:`read`."""

    def __init__(self, instance_id: str, position: LogCursor, streams: Iterable[LogStream]) -> None:
        self.instance_id = instance_id
        self.start = LogCursor(dict(position.positions))
        self._lock = threading.Lock()
        self._pipes = {stream: _Pipe(stream) for stream in streams}

    def begin(self, open_stream: OpenStream) -> None:
        """Open every stream and start its reading thread; raises what opening raised."""
        for pipe in self._pipes.values():
            pipe.source = open_stream(pipe.stream, self.start.since(pipe.stream))
        for pipe in self._pipes.values():
            threading.Thread(
                target=self._pump,
                args=(pipe, pipe.source),
                name=f"logs-{self.instance_id}",
                daemon=True,
            ).start()

    @property
    def live(self) -> bool:
        """True while every stream is still open: reads from here miss nothing."""
        with self._lock:
            return all(pipe.open for pipe in self._pipes.values())

    def covers(self, position: LogCursor) -> bool:
        """True when this follow still holds every line after ``position``: it began
        no later, and no read has dropped lines from after it, in every stream."""
        with self._lock:
            return all(
                max(self.start.positions.get(s, (0, 0))[0], pipe.dropped_before)
                <= position.positions.get(s, (0, 0))[0]
                for s, pipe in self._pipes.items()
            )

    def read(self, position: LogCursor, limit: int) -> LogBatch:
        """Buffered lines after ``position`` (advanced in place), at most ``limit``."""
        lines: list[LogLine] = []
        with self._lock:
            for stream, pipe in self._pipes.items():
                position.take(
                    stream, pipe.entries, instance_id=self.instance_id, lines=lines, limit=limit
                )
                # What is older than the position's last stamp can never be fresh again.
                last = position.positions.get(stream, (0, 0))[0]
                keep = next((i for i, (at, _) in enumerate(pipe.entries) if at >= last), None)
                pipe.entries = pipe.entries[keep:] if keep is not None else []
                pipe.dropped_before = max(pipe.dropped_before, last)
        return LogBatch(tuple(lines), position.render(), complete=False)

    def close(self) -> None:
        """Stop reading; the threads end once their stream is shut."""
        for pipe in self._pipes.values():
            if pipe.source is not None:
                _close(pipe.source, (pipe.stream, self.instance_id))

    def _pump(self, pipe: _Pipe, source: Stream) -> None:
        rest = b""
        names = (pipe.stream, self.instance_id)
        try:
            for chunk in source:
                rest += chunk
                *complete, rest = rest.split(b"\n")
                if complete:
                    fresh = [parse_line(line.decode(errors="replace")) for line in complete]
                    with self._lock:
                        pipe.entries.extend(fresh)
                        unread = len(pipe.entries)
                    if unread > MAX_BUFFERED:
                        log.info("%s of %s is not read: following it stops", *names)
                        break
        except Exception as exc:  # any end of the stream ends the follow; reads fall back
            log.debug("log stream %s of %s ended: %s", *names, exc)
        finally:
            with self._lock:
                pipe.open = False
            _close(source, names)


def _close(source: Stream, names: tuple[str, str]) -> None:
    try:
        source.close()
    except Exception as exc:  # the SDK raises whatever the socket raised
        log.debug("closing log stream %s of %s: %s", *names, exc)
