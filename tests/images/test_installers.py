"""Installer versions are remembered while the file that carries them is unchanged."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from immute.images import installers


def test_a_version_is_asked_again_only_when_its_witness_changes(tmp_path: Path) -> None:
    witness = tmp_path / "bin" / "tool"
    witness.parent.mkdir()
    witness.write_text("v1")
    answers = iter(["1.0", "2.0"])
    asked: list[str] = []

    def ask() -> str:
        asked.append(answer := next(answers))
        return answer

    cache = tmp_path / "cache"
    assert installers._remembered("tool", str(witness), cache, ask) == "1.0"
    assert installers._remembered("tool", str(witness), cache, ask) == "1.0"
    assert asked == ["1.0"]
    witness.write_text("v2, an upgrade")
    os.utime(witness, ns=(1, 1))
    assert installers._remembered("tool", str(witness), cache, ask) == "2.0"
    assert asked == ["1.0", "2.0"]


def test_this_interpreters_pip_is_found_and_reports_its_version(tmp_path: Path) -> None:
    pip = installers.pip_installer(sys.executable, cache=tmp_path)
    assert pip.name == "pip" and pip.version[0].isdigit()
    assert list(tmp_path.glob("pip-*")), "the version is remembered"
    assert installers.pip_installer(sys.executable, cache=tmp_path) == pip
