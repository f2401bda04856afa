"""SQLite state: releases, the audit log, deploy locks, central logs (later instances, plans)."""

from immute.store.audit import AuditEntry
from immute.store.context import Identity
from immute.store.locks import Lock, LockState, age_text
from immute.store.logs import LogAppend, LogPage, ShipCursor, StoredLine
from immute.store.state import Store

__all__ = [
    "AuditEntry",
    "Identity",
    "Lock",
    "LockState",
    "LogAppend",
    "LogPage",
    "ShipCursor",
    "Store",
    "StoredLine",
    "age_text",
]
