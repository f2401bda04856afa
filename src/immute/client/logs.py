"""What ``immute logs`` calls: lines from the central log store as JSON-ready values.

The store holds every line any instance wrote, so this works the same for
instances that are long gone. Reading never creates the state directory.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from immute.client.specfile import state_dir
from immute.core.quantities import parse_duration
from immute.errors import UsageError
from immute.store import LogPage, Store, StoredLine

JSONDict = dict[str, object]

FOLLOW_MIN_INTERVAL = 0.1
FOLLOW_MAX_INTERVAL = 1.0
"""Following polls quickly while lines arrive and backs off to this when idle."""

FOLLOW_PAGE = 1000
_RELEASE = re.compile(r"v?([1-9][0-9]*)")


@dataclass(frozen=True)
class LogFilter:
    """What the user asked for, as typed: validated by :func:`parse_filter`."""

    app: str | None = None
    release: str | None = None
    process: str | None = None
    instance: str | None = None
    since: datetime | None = None
    grep: str | None = None


def parse_filter(
    *,
    app: str | None = None,
    release: str | None = None,
    process: str | None = None,
    instance: str | None = None,
    since: str | None = None,
    grep: str | None = None,
    now: datetime | None = None,
) -> LogFilter:
    """Check and normalise the options: ``--release 3`` or ``v3``; ``--since 10m`` or a time.

    Raises UsageError naming the option.
    """
    if release is not None:
        match = _RELEASE.fullmatch(release.strip())
        if match is None:
            raise UsageError(f"--release: expected a release like v3, got {release!r}")
        release = f"v{match.group(1)}"
    return LogFilter(
        app=app,
        release=release,
        process=process,
        instance=instance,
        since=None if since is None else parse_since(since, now=now or datetime.now(UTC)),
        grep=grep or None,
    )


def parse_since(text: str, *, now: datetime) -> datetime:
    """A duration back from ``now`` (``10m``, ``1h30m``) or an ISO 8601 time (UTC if no zone)."""
    try:
        return now - timedelta(milliseconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f'--since: expected a duration like "10m" or a time like 2026-01-02T15:04:05Z,'
            f" got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def recent_lines(
    spec_file: str | None, wanted: LogFilter, *, limit: int | None
) -> tuple[list[JSONDict], int]:
    """The newest ``limit`` matching lines (all when None), oldest first, and the position
    after them to follow from."""
    directory = state_dir(spec_file)
    if not Store.exists(directory):
        return [], 0
    with Store.open(directory) as store:
        page = _query(store, wanted, limit=limit, after_id=None)
    return [line_json(line) for line in page.lines], page.position


def follow_lines(
    spec_file: str | None, wanted: LogFilter, *, after_id: int
) -> Iterator[list[JSONDict]]:
    """Lines stored after ``after_id``, as they arrive, one list per poll; never ends.

    Polls the store (other processes write it), waiting between polls from
    ``FOLLOW_MIN_INTERVAL`` up to ``FOLLOW_MAX_INTERVAL`` while nothing comes. Waits
    for the state database when there is none yet. Stop it by closing the iterator
    (or Ctrl-C).
    """
    directory = state_dir(spec_file)
    interval = FOLLOW_MIN_INTERVAL
    while not Store.exists(directory):
        time.sleep(interval)
        interval = min(interval * 2, FOLLOW_MAX_INTERVAL)
        yield []
    with Store.open(directory) as store:
        while True:
            page = _query(store, wanted, limit=FOLLOW_PAGE, after_id=after_id)
            after_id = page.position
            yield [line_json(line) for line in page.lines]
            if len(page.lines) == FOLLOW_PAGE:
                continue
            interval = FOLLOW_MIN_INTERVAL if page.lines else min(interval * 2, FOLLOW_MAX_INTERVAL)
            time.sleep(interval)


def line_json(line: StoredLine) -> JSONDict:
    return {
        "id": line.id,
        "at": line.at.isoformat(timespec="milliseconds"),
        "app": line.app,
        "release": line.release,
        "process": line.process,
        "instance": line.instance,
        "stream": line.stream,
        "text": line.text,
    }


def _query(store: Store, wanted: LogFilter, *, limit: int | None, after_id: int | None) -> LogPage:
    return store.logs.query(
        app=wanted.app,
        release=wanted.release,
        process=wanted.process,
        instance=wanted.instance,
        since=wanted.since,
        grep=wanted.grep,
        limit=limit,
        after_id=after_id,
    )
