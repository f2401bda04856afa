"""Apps' persistent volumes on the Docker engine, for ``immute volumes``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from immute.runtimes.docker_volumes import VolumeInfo


def list_volumes() -> list[VolumeInfo]:
    from immute.runtimes.docker_volumes import list_volumes as listed

    return listed()


def remove_volume(name: str) -> None:
    from immute.runtimes.docker_volumes import remove_volume as remove

    remove(name)
