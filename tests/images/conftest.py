"""Local wheel indexes for the image tests: installs with no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from images.image_testkit import local_index
from images.local_wheels import make_wheel


@pytest.fixture(scope="session")
def wheel_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of real wheels that pip installs from with no network."""
    index = tmp_path_factory.mktemp("wheel-index")
    make_wheel(index, "tinydep", "1.0")
    make_wheel(index, "otherdep", "2.0")
    return index


@pytest.fixture
def local_pip(wheel_index: Path) -> dict[str, str]:
    """Environment that points the installers (uv, pip) at the local wheels only."""
    return local_index(wheel_index)
