from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from immute.store import Store
from store.support import ALICE, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path, clock: FakeClock) -> Iterator[Store]:
    with Store.open(state_dir, identity=ALICE, clock=clock) as opened:
        yield opened
