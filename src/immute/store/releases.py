"""Releases as stored: numbered per app, append-only, only their status moves."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from immute.core.release import Release, ReleaseStatus, can_transition
from immute.errors import NotFoundError, StateError
from immute.store.audit import AuditLog
from immute.store.context import StoreContext, parse_timestamp, timestamp
from immute.store.database import transaction

_COLUMNS = (
    "app, number, image_digest, config_digest, spec_digest, source_revision,"
    " created_by, created_at, message, status, rollback_of"
)


class Releases:
    def __init__(self, ctx: StoreContext, audit: AuditLog) -> None:
        self._ctx = ctx
        self._audit = audit

    def create(
        self,
        app: str,
        *,
        image_digest: str,
        config_digest: str,
        spec_digest: str,
        source_revision: str | None = None,
        message: str = "",
        rollback_of: int | None = None,
    ) -> Release:
        """Record the app's next release (v1, v2, ...) as pending."""
        conn = self._ctx.conn
        with transaction(conn):
            if rollback_of is not None:
                self._get(app, rollback_of)
            row = conn.execute("SELECT max(number) FROM releases WHERE app = ?", (app,)).fetchone()
            number = (row[0] or 0) + 1
            conn.execute(
                f"INSERT INTO releases ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    app,
                    number,
                    image_digest,
                    config_digest,
                    spec_digest,
                    source_revision,
                    self._ctx.identity.who,
                    timestamp(self._ctx.now()),
                    message,
                    "pending",
                    rollback_of,
                ),
            )
            detail = f"rollback to v{rollback_of}" if rollback_of is not None else message
            self._audit.write("release.create", f"{app} v{number}", detail=detail)
            return self._get(app, number)

    def set_status(self, app: str, number: int, status: ReleaseStatus) -> Release:
        """Move a release along its life cycle; raises StateError for a move it does not allow."""
        with transaction(self._ctx.conn):
            current = self._get(app, number).status
            if not can_transition(current, status):
                raise StateError(f"{app} v{number} is {current}: it cannot become {status}")
            self._ctx.conn.execute(
                "UPDATE releases SET status = ? WHERE app = ? AND number = ?", (status, app, number)
            )
            self._audit.write("release.status", f"{app} v{number}", detail=f"{current} -> {status}")
            return self._get(app, number)

    def get(self, app: str, number: int) -> Release:
        return self._get(app, number)

    def all(self, app: str | None = None, *, limit: int | None = None) -> list[Release]:
        """The newest ``limit`` releases (all when None), of one app or all, newest first."""
        rows = self._ctx.conn.execute(
            f"SELECT {_COLUMNS} FROM releases WHERE ?1 IS NULL OR app = ?1"
            " ORDER BY id DESC LIMIT ?2",
            (app, -1 if limit is None else limit),
        )
        return [_release(row) for row in rows]

    def prune(self, app: str, numbers: Iterable[int]) -> list[int]:
        """Delete the given releases for retention; returns those that existed.

        Pending, active or newest releases are refused (StateError), and then none
        is deleted.
        """
        wanted = sorted(set(numbers))
        conn = self._ctx.conn
        try:
            with transaction(conn):
                conn.executemany(
                    "INSERT INTO release_prunes (app, number) VALUES (?, ?)",
                    [(app, n) for n in wanted],
                )
                pruned = [
                    row[0]
                    for row in conn.execute(
                        "SELECT number FROM releases JOIN release_prunes USING (app, number)"
                        " ORDER BY number"
                    )
                ]
                conn.execute(
                    "DELETE FROM releases"
                    " WHERE (app, number) IN (SELECT app, number FROM release_prunes)"
                )
                conn.execute("DELETE FROM release_prunes")
                if pruned:
                    names = ", ".join(f"v{n}" for n in pruned)
                    self._audit.write("release.prune", app, detail=names)
        except sqlite3.IntegrityError as exc:
            raise StateError(f"cannot prune releases of {app}: {exc}") from exc
        return pruned

    def _get(self, app: str, number: int) -> Release:
        row = self._ctx.conn.execute(
            f"SELECT {_COLUMNS} FROM releases WHERE app = ? AND number = ?", (app, number)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"{app} has no release v{number}")
        return _release(row)


def _release(row: sqlite3.Row) -> Release:
    return Release(**{**dict(row), "created_at": parse_timestamp(row["created_at"])})
