from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.support import App


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    created = App(tmp_path)
    try:
        yield created
    finally:
        created.teardown()
