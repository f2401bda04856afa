"""Opening the state database: pragmas, schema migrations, write transactions."""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from immute.errors import StateError
from immute.store.schema import MIGRATIONS, Migration

DATABASE_NAME = "state.db"

# Long enough to outlast any one of our transactions (they are all short), short
# enough that a wedged writer surfaces as an error rather than a hang.
BUSY_TIMEOUT_S = 15.0


def open_database(
    path: Path, *, migrations: Sequence[Migration] = MIGRATIONS
) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` and bring its schema forward.

    Raises StateError when the file is not a usable SQLite database or was written
    by a newer immute (a schema version beyond ``len(migrations)``).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so every write
        # transaction takes the write lock up front instead of upgrading mid-way.
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"cannot open state database {path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        with _setup_lock(path):
            conn.execute("PRAGMA journal_mode = WAL")
            _migrate(conn, path, migrations)
    except OSError as exc:
        conn.close()
        raise StateError(f"cannot open state database {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StateError(f"state database {path} is unusable: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed when the block ends, rolled back if it raises.

    Raises StateError when another writer keeps the database locked past the busy
    timeout.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise StateError(
            f"the state database stayed busy for {BUSY_TIMEOUT_S:.0f}s: {exc}"
        ) from exc
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def _setup_lock(path: Path) -> Iterator[None]:
    """Let one process at a time set the database up.

    Two connections switching a new file to WAL together get "database is
    locked" at once: SQLite does not wait on its busy timeout there.
    """
    with path.with_name(path.name + ".setup-lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _migrate(conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    known = len(migrations)
    if schema_version(conn) == known:
        return
    with transaction(conn):
        # Read again under the write lock: another process may have migrated
        # between the check above and BEGIN IMMEDIATE.
        version = schema_version(conn)
        if version > known:
            raise StateError(
                f"state database {path} has schema version {version}, newer than the "
                f"{known} this immute knows: upgrade immute"
            )
        for migration in migrations[version:]:
            for statement in migration:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {known:d}")
