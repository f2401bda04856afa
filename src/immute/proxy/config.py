"""Limits and timeouts of the proxy, in one value passed to every part."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProxyConfig:
    listen: tuple[str, int]
    admin: Path
    state: Path
    metrics: tuple[str, int] | None = None
    access_log: Path | None = None
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    keepalive_timeout: float = 60.0
    pool_idle_timeout: float = 15.0
    pool_max_idle: int = 256
    connect_timeout: float = 5.0
    hold_timeout: float = 10.0
    retry_after: int = 1
    retry_body_limit: int = 64 * 1024
    body_buffer_limit: int = 256 * 1024
    max_attempts: int = 3
    eject_seconds: float = 1.0
    handover_timeout: float = 30.0

    @property
    def handover_path(self) -> Path:
        return self.admin.with_name(self.admin.name + ".handover")
