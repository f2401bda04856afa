"""Named Docker volumes that immute created for apps' ``volumes``.

They hold state that outlives every release, so nothing in immute removes them
except ``immute volumes rm``, which asks first and refuses while a container
still uses the volume.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from immute.errors import EngineError, NotFoundError
from immute.runtimes.docker import PREFIX, VOLUME_LABEL, connect

if TYPE_CHECKING:
    from docker.models.volumes import VolumeCollection


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    app: str
    mountpoint: str
    created: str

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "app": self.app,
            "mountpoint": self.mountpoint,
            "created": self.created,
        }


def list_volumes() -> list[VolumeInfo]:
    """Every volume immute created on the engine, by name."""
    with contextlib.closing(connect()) as client:
        found = client.volumes.list(filters={"label": VOLUME_LABEL})
    infos = [
        VolumeInfo(
            name=str(volume.name),
            app=str((volume.attrs.get("Labels") or {}).get(f"{PREFIX}app", "")),
            mountpoint=str(volume.attrs.get("Mountpoint", "")),
            created=str(volume.attrs.get("CreatedAt", "")),
        )
        for volume in found
    ]
    return sorted(infos, key=lambda info: info.name)


def remove_volume(name: str) -> None:
    """Delete an immute volume and its data; refuses while a container uses it."""
    with contextlib.closing(connect()) as client:
        _remove(client.volumes, name)


def _remove(volumes: VolumeCollection, name: str) -> None:
    from docker.errors import APIError, NotFound

    try:
        volume = volumes.get(name)
    except NotFound:
        raise NotFoundError(f"no volume {name!r} (see `immute volumes`)") from None
    if VOLUME_LABEL not in (volume.attrs.get("Labels") or {}):
        raise NotFoundError(f"volume {name!r} was not made by immute: leaving it alone")
    try:
        volume.remove()
    except APIError as exc:
        if exc.status_code == 409:
            raise EngineError(
                f"volume {name!r} is in use by a container: stop the app first (`immute down`)"
            ) from None
        raise EngineError(
            f"the engine refused to remove volume {name!r}: {exc.explanation}"
        ) from None
