"""The runtimes of one app as one runtime: each instance stays with the one that started it.

A spec chooses its runtime per release, so during a deploy from a ``process``
release to a ``docker`` one both run side by side. A runtime counts as in use
once its state directory exists, so a restarted agent observes (and re-adopts)
containers without ever asking an engine that an app never used.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from immute.core.instances import InstanceInfo, InstanceSpec, LogBatch
from immute.errors import NotFoundError
from immute.runtimes.base import ImageHolder, Runtime, load_runtime

DEFAULT = "process"


class RuntimeSet:
    """Satisfies the runtime Protocol by handing each call to the right runtime."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._loaded: dict[str, Runtime] = {}
        self._owners: dict[str, str] = {}

    def state_of(self, name: str) -> Path:
        # The process runtime keeps the directory it always had.
        return self.state_dir / ("runtime" if name == DEFAULT else f"runtime-{name}")

    def get(self, name: str) -> Runtime:
        if name not in self._loaded:
            self._loaded[name] = load_runtime(name, state_dir=self.state_of(name))
        return self._loaded[name]

    def in_use(self) -> list[str]:
        others = sorted(p.name.removeprefix("runtime-") for p in self.state_dir.glob("runtime-*"))
        return sorted({DEFAULT, *others, *self._loaded})

    async def start(self, spec: InstanceSpec) -> InstanceInfo:
        runtime = self.get(spec.runtime)
        self.state_of(spec.runtime).mkdir(parents=True, exist_ok=True)
        info = await runtime.start(spec)
        self._owners[spec.instance_id] = spec.runtime
        return info

    async def _owner(self, instance_id: str) -> Runtime | None:
        if instance_id not in self._owners:
            await self.observe()
        name = self._owners.get(instance_id)
        return None if name is None else self.get(name)

    async def stop(self, instance_id: str, *, grace: float | None = None) -> None:
        runtime = await self._owner(instance_id)
        if runtime is not None:
            await runtime.stop(instance_id, grace=grace)

    async def observe(self) -> list[InstanceInfo]:
        found: list[InstanceInfo] = []
        for name in self.in_use():
            seen = await self.get(name).observe()
            self._owners.update((info.instance_id, name) for info in seen)
            found += seen
        return sorted(found, key=lambda info: info.instance_id)

    async def read_logs(self, instance_id: str, *, cursor: str = "", limit: int = 1000) -> LogBatch:
        runtime = await self._owner(instance_id)
        if runtime is None:
            raise NotFoundError(f"no instance {instance_id}")
        return await runtime.read_logs(instance_id, cursor=cursor, limit=limit)

    async def forget_images(self, image_ids: Collection[str]) -> list[str]:
        """Let the runtimes in use that hold images of their own delete these."""
        removed: list[str] = []
        for name in self.in_use():
            runtime = self.get(name)
            if isinstance(runtime, ImageHolder) and image_ids:
                removed += await runtime.forget_images(image_ids)
        return removed

    async def remove(self, instance_id: str) -> None:
        runtime = await self._owner(instance_id)
        if runtime is not None:
            await runtime.remove(instance_id)
            self._owners.pop(instance_id, None)
