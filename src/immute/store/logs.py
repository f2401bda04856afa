"""The central log store: every line instances wrote, kept after they are gone.

Shippers append a runtime's batches together with the runtime's cursor, in one
transaction, and only when the stored cursor is still the one the batch was read
from. So a shipper that crashes anywhere resumes exactly after the last stored
line, and two shippers of one instance can never store a line twice.

Retention is by age alone (``retain.logs``), also for instances that still run:
the point of retention is a bound on disk use, and a long-lived instance's old
lines are as old as anyone's. Lines only ever hold what instances wrote; immute
writes none of its own here, so no secret of immute's reaches this table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from immute.core.instances import InstanceLabels, LogBatch, LogStream
from immute.errors import StateError
from immute.store.audit import AuditLog
from immute.store.context import StoreContext
from immute.store.database import transaction

_STREAM_CODES: dict[LogStream, int] = {"stdout": 1, "stderr": 2}
_STREAMS: dict[int, LogStream] = {code: name for name, code in _STREAM_CODES.items()}

PRUNE_CHUNK = 10_000
"""Lines deleted per transaction, so retention never holds the write lock for long."""


@dataclass(frozen=True)
class StoredLine:
    id: int
    app: str
    release: str
    process: str
    instance: str
    stream: LogStream
    at: datetime
    text: str


@dataclass(frozen=True)
class LogPage:
    """Lines in id order, and ``position``: pass it as ``after_id`` for what comes next."""

    lines: list[StoredLine]
    position: int


@dataclass(frozen=True)
class ShipCursor:
    """How far an instance's lines are stored: the runtime's cursor after the last one."""

    cursor: str = ""
    complete: bool = False
    """The instance has exited and every line it wrote is stored."""


@dataclass(frozen=True)
class LogAppend:
    """One batch to store, read by the runtime starting at ``previous``."""

    labels: InstanceLabels
    batch: LogBatch
    previous: str


class LogStore:
    def __init__(self, ctx: StoreContext, audit: AuditLog) -> None:
        self._ctx = ctx
        self._audit = audit

    def cursor(self, app: str, instance: str) -> ShipCursor:
        """Where shipping of this instance resumes (``""`` when nothing is stored yet)."""
        row = self._ctx.conn.execute(
            "SELECT cursor, complete FROM log_sources WHERE app = ? AND instance = ?",
            (app, instance),
        ).fetchone()
        return ShipCursor() if row is None else ShipCursor(row[0], bool(row[1]))

    def append(self, labels: InstanceLabels, batch: LogBatch, *, previous: str) -> ShipCursor:
        """Store the batch's lines and cursor atomically; see :meth:`append_many`."""
        return self.append_many([LogAppend(labels, batch, previous)])[0]

    def append_many(self, entries: Sequence[LogAppend]) -> list[ShipCursor]:
        """Store several batches in one transaction; return each instance's stored cursor.

        A batch whose ``previous`` is not the stored cursor (another shipper got
        there first, or it was already stored before a crash) is skipped whole;
        the cursor returned for it is where its shipper should continue.
        """
        conn = self._ctx.conn
        try:
            with transaction(conn):
                return [self._append(conn, entry) for entry in entries]
        except sqlite3.Error as exc:
            # A full disk or an I/O error: the shipper retries from the stored cursor.
            raise StateError(f"cannot store log lines: {exc}") from exc

    def _append(self, conn: sqlite3.Connection, entry: LogAppend) -> ShipCursor:
        labels, batch = entry.labels, entry.batch
        row = conn.execute(
            "SELECT id, cursor, complete FROM log_sources WHERE app = ? AND instance = ?",
            (labels.app, labels.instance_id),
        ).fetchone()
        if row is None:
            source = conn.execute(
                "INSERT INTO log_sources (app, release, process, instance) VALUES (?, ?, ?, ?)",
                (labels.app, labels.release, labels.process, labels.instance_id),
            ).lastrowid
            stored = ShipCursor()
        else:
            source, stored = row[0], ShipCursor(row[1], bool(row[2]))
        if stored.complete or stored.cursor != entry.previous:
            return stored
        conn.executemany(
            "INSERT INTO log_lines (source, at, stream, text) VALUES (?, ?, ?, ?)",
            [
                (source, round(line.at * 1000), _STREAM_CODES[line.stream], line.text)
                for line in batch.lines
            ],
        )
        conn.execute(
            "UPDATE log_sources SET cursor = ?, complete = ? WHERE id = ?",
            (batch.cursor, int(batch.complete), source),
        )
        return ShipCursor(batch.cursor, batch.complete)

    def query(
        self,
        *,
        app: str | None = None,
        release: str | None = None,
        process: str | None = None,
        instance: str | None = None,
        since: datetime | None = None,
        grep: str | None = None,
        limit: int | None = 100,
        after_id: int | None = None,
    ) -> LogPage:
        """Matching lines in id (arrival) order.

        Without ``after_id``: the newest ``limit`` lines (a tail). With it: the
        oldest ``limit`` lines after that id. ``limit=None`` means all. ``grep`` is
        a case-sensitive substring. The page's position covers every line stored
        when the query ran, matching or not, so following never rescans them.
        """
        clauses, params = _filters(
            app=app, release=release, process=process, instance=instance, since=since, grep=grep
        )
        if after_id is not None:
            clauses.append("l.id > ?")
            params.append(after_id)
        where = " AND ".join(clauses) or "1"
        order = "DESC" if after_id is None else "ASC"
        wanted = -1 if limit is None else limit
        conn = self._ctx.conn
        # One read transaction: the high-water mark and the lines see one snapshot.
        conn.execute("BEGIN")
        try:
            rows = conn.execute(
                "SELECT l.id, s.app, s.release, s.process, s.instance, l.stream, l.at, l.text"
                " FROM log_lines AS l JOIN log_sources AS s ON s.id = l.source"
                f" WHERE {where} ORDER BY l.id {order} LIMIT ?",
                (*params, wanted),
            ).fetchall()
            newest = _high_water(conn)
        finally:
            conn.execute("COMMIT")
        lines = [_line(row) for row in rows]
        if after_id is None:
            return LogPage(lines[::-1], newest)
        full = limit is not None and len(lines) == limit
        return LogPage(lines, lines[-1].id if full else max(newest, after_id))

    def prune(self, older_than: datetime, *, app: str | None = None) -> int:
        """Delete lines written before ``older_than`` (of one app, or all); return how many.

        Works in chunks of ``PRUNE_CHUNK`` lines per transaction so that shippers
        are never held up for long. Also forgets instances whose shipping is
        complete and whose lines are all gone.
        """
        cutoff = _ms(older_than)
        conn = self._ctx.conn
        total = 0
        while True:
            with transaction(conn):
                deleted = conn.execute(
                    "DELETE FROM log_lines WHERE id IN (SELECT l.id FROM log_lines AS l"
                    " JOIN log_sources AS s ON s.id = l.source"
                    " WHERE l.at < ?1 AND (?2 IS NULL OR s.app = ?2) LIMIT ?3)",
                    (cutoff, app, PRUNE_CHUNK),
                ).rowcount
            total += deleted
            if deleted < PRUNE_CHUNK:
                break
        with transaction(conn):
            conn.execute(
                "DELETE FROM log_sources WHERE complete = 1 AND (?1 IS NULL OR app = ?1)"
                " AND NOT EXISTS (SELECT 1 FROM log_lines WHERE source = log_sources.id)",
                (app,),
            )
            if total:
                self._audit.write(
                    "logs.prune",
                    app or "*",
                    detail=f"{total} lines before {older_than.astimezone(UTC).isoformat()}",
                )
        return total


def _filters(
    *,
    app: str | None,
    release: str | None,
    process: str | None,
    instance: str | None,
    since: datetime | None,
    grep: str | None,
) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (
        ("s.app", app),
        ("s.release", release),
        ("s.process", process),
        ("s.instance", instance),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("l.at >= ?")
        params.append(_ms(since))
    if grep:
        clauses.append("instr(l.text, ?) > 0")
        params.append(grep)
    return clauses, params


def _high_water(conn: sqlite3.Connection) -> int:
    """The largest line id ever given out, even if retention deleted that line since."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log_lines'").fetchone()
    return 0 if row is None else int(row[0])


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _line(row: sqlite3.Row) -> StoredLine:
    return StoredLine(
        id=row[0],
        app=row[1],
        release=row[2],
        process=row[3],
        instance=row[4],
        stream=_STREAMS[row[5]],
        at=datetime.fromtimestamp(row[6] / 1000, UTC),
        text=row[7],
    )
