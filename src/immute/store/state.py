"""The state store: one SQLite database in the app's state directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from immute.store.audit import AuditLog
from immute.store.context import Clock, Identity, StoreContext, utc_now
from immute.store.database import DATABASE_NAME, open_database, schema_version
from immute.store.locks import DeployLocks
from immute.store.releases import Releases


class Store:
    """Releases, the audit log and deploy locks of one state directory.

    Use as a context manager, or call ``close``. Every change is one transaction
    that also appends its audit entry.
    """

    def __init__(self, ctx: StoreContext, *, alive: Callable[[int], bool] | None = None) -> None:
        self._ctx = ctx
        self.audit = AuditLog(ctx)
        self.releases = Releases(ctx, self.audit)
        self.locks = DeployLocks(ctx, self.audit, alive=alive)

    @classmethod
    def open(
        cls,
        state_dir: Path,
        *,
        identity: Identity | None = None,
        clock: Clock = utc_now,
        alive: Callable[[int], bool] | None = None,
    ) -> Store:
        conn = open_database(state_dir / DATABASE_NAME)
        ctx = StoreContext(conn=conn, identity=identity or Identity.current(), clock=clock)
        return cls(ctx, alive=alive)

    @staticmethod
    def exists(state_dir: Path) -> bool:
        """Whether the state directory holds a database (reading commands create none)."""
        return (state_dir / DATABASE_NAME).is_file()

    @property
    def schema_version(self) -> int:
        return schema_version(self._ctx.conn)

    def close(self) -> None:
        self._ctx.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
