"""The runtime Protocol: the few things the agent asks of any place instances run.

A runtime starts instances from a spec, stops them, says what is actually
running (so a restarted agent can re-adopt what its predecessor started), hands
out what the instances wrote, and forgets them. It owns no policy: health,
replacement, backoff and routing are the agent's.

How the built-in and the planned runtimes map onto it:

==============  =======================================  ==========================================
method          ``process`` (this machine, host stack)   ``docker`` (issue 6, Docker SDK)
==============  =======================================  ==========================================
``start``       a detached shim starts the argv in its   ``docker load`` our export if the engine
                own session from ``root_dir/workdir``;   lacks it, then ``containers.run`` with
                stdout/stderr go to per-instance files   labels from ``InstanceLabels``, host
                                                         network, read-only root, ``PORT`` in env
``stop``        SIGTERM to the process group, SIGKILL    ``container.stop(timeout=grace)`` (the
                after the grace period                   engine does SIGTERM then SIGKILL)
``observe``     per-instance records; identity is pid    ``containers.list(all=True)`` filtered on
                + start time from ``/proc`` + boot id    the ``immute.state`` label; identity is
                                                         the container id and its labels
``read_logs``   byte offsets into the two log files      ``container.logs(timestamps=True,
                (the cursor)                             since=...)``, cursor = last timestamp
``remove``      delete the instance's state directory    ``container.remove(force=True)``
==============  =======================================  ==========================================

All methods are coroutines so a runtime that blocks (the Docker SDK) can run
in a thread without stalling the agent's event loop.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Collection, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from immute.core.instances import InstanceInfo, InstanceSpec, LogBatch
from immute.errors import NotFoundError

LogSink = Callable[[LogBatch], Awaitable[None]]
"""Receives each non-empty batch; storing lines and cursor together makes delivery exact."""


@runtime_checkable
class Runtime(Protocol):
    """Where instances run. Every method is safe to call again after a crash."""

    async def start(self, spec: InstanceSpec) -> InstanceInfo:
        """Start one instance and return once its process or container exists.

        Does not wait for readiness (that is the agent's health check). Raises
        ``InstanceError`` when it cannot be started (missing command, bad
        working directory, engine refusal), with nothing left behind.
        """
        ...

    async def stop(self, instance_id: str, *, grace: float | None = None) -> None:
        """Ask the instance to stop, force it after ``grace`` seconds, return when gone.

        ``grace`` defaults to the spec's ``stop_grace``. Returns None without error
        when the instance already exited or is unknown. The instance stays
        observable (as exited) and its logs readable until :meth:`remove`.
        """
        ...

    async def observe(self) -> list[InstanceInfo]:
        """Every instance this runtime's state knows, running or exited, in id order.

        Works from a fresh runtime object over the same state: that is how a
        restarted agent re-adopts instances. An instance reported RUNNING is
        verifiably the one that was started (not a reused pid or a stranger).
        """
        ...

    async def read_logs(self, instance_id: str, *, cursor: str = "", limit: int = 1000) -> LogBatch:
        """Lines written since ``cursor`` (``""`` = from the start), at most ``limit``.

        Raises ``NotFoundError`` for an instance the runtime does not know.
        """
        ...

    async def remove(self, instance_id: str) -> None:
        """Stop the instance if it still runs, then forget it and its logs. Idempotent."""
        ...


@runtime_checkable
class ImageHolder(Protocol):
    """A runtime that keeps its own copies of images (an engine's image store)."""

    async def forget_images(self, image_ids: Collection[str]) -> list[str]:
        """Delete these images (by config digest) where nothing uses them; the ones deleted."""
        ...


RuntimeFactory = Callable[[Path], Runtime]
"""Builds a runtime over an app's runtime state directory."""

BUILTIN_RUNTIMES: Mapping[str, str] = {
    "process": "immute.runtimes.process:ProcessRuntime",
    "docker": "immute.runtimes.docker:DockerRuntime",
}
"""Built-in runtimes by name, imported only when chosen (the Docker SDK is heavy)."""

ENTRY_POINT_GROUP = "immute.runtimes"


def runtime_names() -> list[str]:
    """Built-in runtimes and those that installed packages declare as entry points."""
    extra = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(BUILTIN_RUNTIMES) | extra)


def load_runtime(name: str, *, state_dir: Path) -> Runtime:
    """The runtime called ``name``, over ``state_dir``; unknown names list what exists."""
    if name in BUILTIN_RUNTIMES:
        module_name, _, attribute = BUILTIN_RUNTIMES[name].partition(":")
        factory: RuntimeFactory = getattr(importlib.import_module(module_name), attribute)
        return factory(state_dir)
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        plugin: RuntimeFactory = ep.load()
        return plugin(state_dir)
    known = ", ".join(runtime_names())
    raise NotFoundError(f"unknown runtime {name!r}; known runtimes: {known}")


async def follow_logs(
    runtime: Runtime,
    instance_id: str,
    sink: LogSink,
    *,
    cursor: str = "",
    interval: float = 0.2,
) -> str:
    """Feed ``sink`` with the instance's lines until it has exited and all are read.

    Returns the final cursor. Cancel it to stop early; the cursor handed to the
    sink with the last batch is where to resume.
    """
    while True:
        batch = await runtime.read_logs(instance_id, cursor=cursor)
        if batch.lines:
            await sink(batch)
        cursor = batch.cursor
        if batch.complete:
            return cursor
        if not batch.lines:
            await asyncio.sleep(interval)
