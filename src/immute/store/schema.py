"""The state database's schema, as an ordered list of forward migrations.

``MIGRATIONS[i]`` takes a database from schema version ``i`` to ``i + 1`` (the
version lives in ``PRAGMA user_version``). Migrations are only ever appended:
once released, an entry is never edited, so every older database can be brought
forward by running the entries it has not seen. Later capabilities (instances,
the plan journal, log segments) arrive as new entries.

The append-only rules are SQLite triggers rather than code so that they hold for
any writer, including someone with the ``sqlite3`` shell.
"""

from __future__ import annotations

Migration = tuple[str, ...]

_V1_RELEASES: Migration = (
    """
    CREATE TABLE releases (
        id INTEGER PRIMARY KEY,
        app TEXT NOT NULL,
        number INTEGER NOT NULL CHECK (number >= 1),
        image_digest TEXT NOT NULL,
        config_digest TEXT NOT NULL,
        spec_digest TEXT NOT NULL,
        source_revision TEXT,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'active', 'failed', 'superseded', 'rolled-back')),
        rollback_of INTEGER CHECK (rollback_of IS NULL OR rollback_of < number),
        UNIQUE (app, number)
    )
    """,
    # Retention names what it prunes here, inside its own transaction, and
    # empties it before committing: a bare DELETE on releases always fails. The
    # newest release of an app is never pruned, so release numbers never repeat.
    """
    CREATE TABLE release_prunes (
        app TEXT NOT NULL,
        number INTEGER NOT NULL,
        PRIMARY KEY (app, number)
    )
    """,
    """
    CREATE TRIGGER releases_append_only BEFORE UPDATE ON releases
    WHEN NEW.id IS NOT OLD.id OR NEW.app IS NOT OLD.app OR NEW.number IS NOT OLD.number
        OR NEW.image_digest IS NOT OLD.image_digest OR NEW.config_digest IS NOT OLD.config_digest
        OR NEW.spec_digest IS NOT OLD.spec_digest
        OR NEW.source_revision IS NOT OLD.source_revision
        OR NEW.created_by IS NOT OLD.created_by OR NEW.created_at IS NOT OLD.created_at
        OR NEW.message IS NOT OLD.message OR NEW.rollback_of IS NOT OLD.rollback_of
    BEGIN
        SELECT RAISE(ABORT, 'releases are append-only: only the status may change');
    END
    """,
    """
    CREATE TRIGGER releases_pruned_only BEFORE DELETE ON releases
    WHEN OLD.status IN ('pending', 'active')
        OR OLD.number = (SELECT max(number) FROM releases WHERE app = OLD.app)
        OR NOT EXISTS (
            SELECT 1 FROM release_prunes WHERE app = OLD.app AND number = OLD.number
        )
    BEGIN
        SELECT RAISE(ABORT,
            'releases are deleted only by retention, never pending, active or newest');
    END
    """,
)

_V1_AUDIT: Migration = (
    """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        who TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    )
    """,
    """
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END
    """,
    """
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END
    """,
)

# pid is NULL for a manual lock (`immute lock acquire`): it is held by a person,
# not a process, so it never goes stale and lasts until released.
_V1_LOCKS: Migration = (
    """
    CREATE TABLE locks (
        app TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER CHECK (pid IS NULL OR pid > 0),
        acquired_at TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT ''
    )
    """,
)

MIGRATIONS: tuple[Migration, ...] = (_V1_RELEASES + _V1_AUDIT + _V1_LOCKS,)

SCHEMA_VERSION = len(MIGRATIONS)
