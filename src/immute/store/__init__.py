"""SQLite state: releases, the audit log, deploy locks (later instances, plans, logs)."""

from immute.store.audit import AuditEntry
from immute.store.context import Identity
from immute.store.locks import Lock, LockState, age_text
from immute.store.state import Store

__all__ = ["AuditEntry", "Identity", "Lock", "LockState", "Store", "age_text"]
