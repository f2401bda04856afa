"""Plain data about instances, shared by the runtimes, the agent and the planner.

No I/O here: the runtimes fill these values from the processes or containers
they observe, and the pure core plans over them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class InstanceLabels:
    """What an instance is, as recorded beside it so a restarted agent can tell.

    The process runtime keeps these in its per-instance record; the Docker
    runtime puts them on the container as labels. Nothing secret goes here.
    """

    instance_id: str
    app: str
    process: str
    release: str
    image_digest: str
    config_digest: str = ""


@dataclass(frozen=True)
class InstanceSpec:
    """Everything a runtime needs to start one instance.

    ``root_dir`` is the image's materialised read-only root (process runtime);
    ``workdir`` is a path inside the image (an OCI ``WorkingDir`` such as
    ``/app``), so the process runtime runs in ``root_dir / "app"`` and Docker in
    ``/app``. ``env`` holds secret values: runtimes pass it to the instance and
    never write it down. ``port`` is None for workers that listen on nothing;
    otherwise the runtime adds ``PORT`` to the environment.
    """

    labels: InstanceLabels
    root_dir: Path
    argv: tuple[str, ...]
    workdir: str = "/"
    env: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    stop_grace: float = 10.0

    @property
    def instance_id(self) -> str:
        return self.labels.instance_id


class InstanceState(enum.Enum):
    """What a runtime sees; health is the agent's business, not the runtime's."""

    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class InstanceInfo:
    """One instance as a runtime observed it.

    ``handle`` is the runtime's own reference (a pid for ``process``, a container
    id for ``docker``). ``exit_code`` follows the shell and Docker convention
    (128 + N when killed by signal N) and is None while running or when the
    instance ended unobserved and its status is lost.
    """

    labels: InstanceLabels
    state: InstanceState
    handle: str
    port: int | None
    started_at: float
    exited_at: float | None = None
    exit_code: int | None = None

    @property
    def instance_id(self) -> str:
        return self.labels.instance_id

    @property
    def address(self) -> str | None:
        """``127.0.0.1:PORT`` for instances that listen; every instance binds loopback."""
        return None if self.port is None else f"127.0.0.1:{self.port}"


LogStream = Literal["stdout", "stderr"]


@dataclass(frozen=True)
class LogLine:
    """One line an instance wrote, without its line ending.

    ``at`` is when the runtime read the line (process runtime) or the engine's
    timestamp (Docker): close to, not exactly, when it was written.
    """

    instance_id: str
    stream: LogStream
    text: str
    at: float


@dataclass(frozen=True)
class LogBatch:
    """Lines read from one instance and the cursor to continue after them.

    Store the lines and the cursor in one transaction and delivery is exactly
    once across agent restarts. The cursor is opaque to everyone but the runtime
    that issued it.
    """

    lines: tuple[LogLine, ...]
    cursor: str
    complete: bool = False
    """True when the instance has exited and every line it wrote has been read."""


def exit_code_from_wait_status(returncode: int) -> int:
    """Map a Popen-style return code (negative for signals) to 128 + N."""
    return 128 - returncode if returncode < 0 else returncode
