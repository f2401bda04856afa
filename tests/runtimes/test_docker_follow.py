"""Following a container's log streams, fed by a stand-in for the SDK's stream
(the engine side is covered by the docker runtime's contract tests)."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest

from immute.core.instances import LogStream
from immute.runtimes import docker_follow
from immute.runtimes.docker_follow import LogFollow
from immute.runtimes.docker_logs import LogCursor

BASE_NS = 1_700_000_000 * 1_000_000_000


class FakeStream:
    """Chunks put in by the test, until closed."""

    def __init__(self) -> None:
        self.chunks: queue.Queue[bytes | None] = queue.Queue()
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self.chunks.get(timeout=10)) is not None:
            yield chunk

    def close(self) -> None:
        self.closed = True
        self.chunks.put(None)


def stamp(n: int) -> bytes:
    seconds, nanos = divmod(BASE_NS + n * 1000, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode() + b".%09dZ" % nanos


def follow_stdout() -> tuple[LogFollow, FakeStream]:
    stream = FakeStream()
    follow = LogFollow("web-1", LogCursor(), ["stdout"])

    def open_stream(name: LogStream, since: float | None) -> FakeStream:
        assert (name, since) == ("stdout", None)
        return stream

    follow.begin(open_stream)
    return follow, stream


def wait_for(follow: LogFollow, position: LogCursor, count: int) -> list[str]:
    texts: list[str] = []
    for _ in range(500):
        texts += [line.text for line in follow.read(position, limit=count - len(texts)).lines]
        if len(texts) >= count:
            return texts
        time.sleep(0.01)
    raise AssertionError(f"only {texts}")


def test_lines_split_across_chunks_arrive_once_in_order() -> None:
    follow, stream = follow_stdout()
    stream.chunks.put(stamp(1) + b" one\n" + stamp(2) + b" tw")
    stream.chunks.put(b"o\n" + stamp(2) + b" two again\n")
    position = LogCursor()
    assert wait_for(follow, position, 3) == ["one", "two", "two again"]
    assert follow.read(position, limit=10).lines == ()
    follow.close()


def test_a_reader_behind_what_another_read_dropped_is_not_covered() -> None:
    follow, stream = follow_stdout()
    for n in range(1, 6):
        stream.chunks.put(stamp(n) + b" line %d\n" % n)
    behind = LogCursor()
    assert wait_for(follow, behind, 2) == ["line 1", "line 2"]
    ahead = LogCursor(dict(behind.positions))
    assert wait_for(follow, ahead, 3) == ["line 3", "line 4", "line 5"]
    assert follow.covers(ahead)
    assert not follow.covers(behind)
    follow.close()


def test_an_unread_follow_stops_and_closes_its_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_follow, "MAX_BUFFERED", 3)
    follow, stream = follow_stdout()
    stream.chunks.put(b"".join(stamp(n) + b" x\n" for n in range(5)))
    for _ in range(500):
        if not follow.live:
            break
        time.sleep(0.01)
    assert not follow.live
    assert stream.closed
