"""What Linux's /proc says about processes: identity, liveness, process groups.

A pid alone does not identify a process across time (pids are reused), so a
process is known by its pid, its start time in clock ticks since boot (field 22
of ``/proc/PID/stat``) and the boot id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str
    pgrp: int
    start_ticks: int


def boot_id() -> str:
    return (PROC / "sys/kernel/random/boot_id").read_text().strip()


def read_stat(pid: int) -> ProcStat | None:
    """The parsed ``/proc/PID/stat``, or None when there is no such process."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name sits in parentheses and may itself contain ") ".
    fields = raw[raw.rindex(b")") + 2 :].split()
    return ProcStat(
        pid=pid, state=fields[0].decode(), pgrp=int(fields[2]), start_ticks=int(fields[19])
    )


def is_running(pid: int, start_ticks: int) -> bool:
    """True when that very process exists and has not exited (zombies have)."""
    stat = read_stat(pid)
    return stat is not None and stat.start_ticks == start_ticks and stat.state not in "ZX"


def live_group_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that have not exited."""
    members = []
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None and stat.pgrp == pgid and stat.state not in "ZX":
                members.append(stat.pid)
    return members
