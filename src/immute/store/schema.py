"""The state database's schema, as an ordered list of forward migrations.

``MIGRATIONS[i]`` takes a database from schema version ``i`` to ``i + 1`` (the
version lives in ``PRAGMA user_version``). Migrations are only ever appended:
once released, an entry is never edited, so every older database can be brought
forward by running the entries it has not seen. Later capabilities (instances,
the plan journal) arrive as new entries.

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

# The agent's desired and observed world: the normalised specs that releases point
# at (never secret values), every instance it started, and the deploy journal.
_V2_AGENT: Migration = (
    """
    CREATE TABLE specs (
        digest TEXT PRIMARY KEY,
        body TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        app TEXT NOT NULL,
        process TEXT NOT NULL,
        release INTEGER NOT NULL,
        port INTEGER,
        state TEXT NOT NULL
            CHECK (state IN ('starting', 'ready', 'standby', 'stopping', 'gone')),
        standby_until REAL,
        created_at TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX instances_live ON instances (app, state)",
    """
    CREATE TABLE deploys (
        id INTEGER PRIMARY KEY,
        app TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback', 'restart')),
        release INTEGER NOT NULL,
        previous INTEGER,
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
        started_at TEXT NOT NULL,
        finished_at TEXT,
        reason TEXT NOT NULL DEFAULT ''
    )
    """,
    """
    CREATE TABLE deploy_steps (
        deploy INTEGER NOT NULL REFERENCES deploys (id),
        seq INTEGER NOT NULL,
        step TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        outcome TEXT,
        PRIMARY KEY (deploy, seq)
    )
    """,
)

# Central logs: every line any instance wrote, so logs outlive instances.
#
# One row per line, not per segment: SQLite inserts rows in batches at hundreds of
# thousands a second, and per-line rows let every filter (release, process,
# instance, time, text) and the follow position be plain indexed SQL. What is the
# same for every line of an instance lives once in ``log_sources``, with the
# shipping cursor: a batch's lines and its cursor commit in one transaction, so a
# shipper that crashes anywhere resumes exactly after the last line stored.
#
# ``log_lines.id`` is AUTOINCREMENT so that ids are never reused after retention
# deleted the newest lines: ``immute logs -f`` resumes after an id and must never
# skip a line that reuses one. ``at`` is milliseconds since the epoch (UTC) and
# ``stream`` is the file descriptor (1 stdout, 2 stderr): small and fast to compare
# at millions of rows.
_V3_LOGS: Migration = (
    """
    CREATE TABLE log_sources (
        id INTEGER PRIMARY KEY,
        app TEXT NOT NULL,
        release TEXT NOT NULL,
        process TEXT NOT NULL,
        instance TEXT NOT NULL,
        cursor TEXT NOT NULL DEFAULT '',
        complete INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),
        UNIQUE (app, instance)
    )
    """,
    """
    CREATE TABLE log_lines (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source INTEGER NOT NULL REFERENCES log_sources (id),
        at INTEGER NOT NULL,
        stream INTEGER NOT NULL CHECK (stream IN (1, 2)),
        text TEXT NOT NULL
    )
    """,
    # An index on (source) holds the rowid too: one instance's lines in id order.
    "CREATE INDEX log_lines_by_source ON log_lines (source)",
    "CREATE INDEX log_lines_by_time ON log_lines (at)",
)

MIGRATIONS: tuple[Migration, ...] = (
    _V1_RELEASES + _V1_AUDIT + _V1_LOCKS,
    _V2_AGENT,
    _V3_LOGS,
)

SCHEMA_VERSION = len(MIGRATIONS)
