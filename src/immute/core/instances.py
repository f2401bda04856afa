"""Plain data about instances, shared by the runtimes, the agent and the planner.

No I/O here: the runtimes fill these values from the processes or containers
they observe, and the pure core plans over them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Container, Iterable, Mapping
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
class Mount:
    """State mounted into an instance (container runtimes): a named volume, or
    the host directory ``bind`` when the user named one."""

    name: str
    path: str
    bind: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class InstanceSpec:
    """Everything a runtime needs to start one instance.

    ``root_dir`` is the image's materialised read-only root (process runtime);
    ``workdir`` is a path inside the image (an OCI ``WorkingDir`` such as
    ``/app``), so the process runtime runs in ``root_dir / "app"`` and Docker in
    ``/app``. ``env`` holds secret values: runtimes pass it to the instance and
    never write it down. ``port`` is None for workers that listen on nothing;
    otherwise the runtime adds ``PORT`` to the environment.

    ``runtime`` names the runtime meant to run it (the agent hands it over).
    The rest matters to container runtimes only: ``image_id`` is the image's
    config digest (the ID an engine gives it), ``image_export`` writes the image
    as a ``docker load`` tar at the path it is given (called only when the
    engine lacks the image), ``scratch`` the writable tmpfs paths besides ``/tmp``, ``mounts`` the
    volumes, ``cpus`` and ``memory`` (bytes) the limits.
    """

    labels: InstanceLabels
    root_dir: Path
    argv: tuple[str, ...]
    workdir: str = "/"
    env: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    stop_grace: float = 10.0
    runtime: str = "process"
    image_id: str = ""
    image_export: Callable[[Path], object] | None = None
    scratch: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    cpus: float | None = None
    memory: int | None = None

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


def ready_counts(
    instances: Iterable[InstanceInfo], *, ready: Container[str]
) -> dict[str, dict[str, int]]:
    """Running instances whose id is in ``ready``, counted per process and release.

    This is the planner's ``Observed``: the agent passes what a runtime observed
    and the ids its readiness checks passed.
    """
    counts: dict[str, dict[str, int]] = {}
    for info in instances:
        if info.state is InstanceState.RUNNING and info.instance_id in ready:
            per_release = counts.setdefault(info.labels.process, {})
            per_release[info.labels.release] = per_release.get(info.labels.release, 0) + 1
    return counts
