"""The remembered build-context selection is reused only while it is still true."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from immute.images import context, context_cache
from immute.images.context import select_files

LONG_AGO = 1_600_000_000


def _age(*paths: Path) -> None:
    """Timestamps far in the past, so that any later change gives a different one."""
    for path in paths:
        os.utime(path, (LONG_AGO, LONG_AGO))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "pkg").mkdir(parents=True)
    for name, text in {
        "app.py": "print()\n",
        "debug.log": "x\n",
        "secret.txt": "x\n",
        ".gitignore": "*.log\n",
        ".immuteignore": "secret.txt\n",
        "pkg/mod.py": "x = 1\n",
        "pkg/.gitignore": "gen_*.py\n",
    }.items():
        (root / name).write_text(text)
    _age(root, root / "pkg", root / ".gitignore", root / ".immuteignore", root / "pkg/.gitignore")
    return root


def _selection(root: Path, cache: Path) -> list[str]:
    return select_files(root, include=[], exclude=["*.md"], remember=cache)


def _replace_by_symlink(root: Path) -> None:
    (root / "app.py").unlink()
    (root / "app.py").symlink_to("pkg/mod.py")


def _add_directory(root: Path) -> None:
    (root / "lib").mkdir()
    (root / "lib" / "x.py").write_text("")


CHANGES: dict[str, Callable[[Path], object]] = {
    "file added in a subdirectory": lambda r: (r / "pkg" / "new.py").write_text("x\n"),
    "ignored file added": lambda r: (r / "pkg" / "gen_a.py").write_text("x\n"),
    "file removed": lambda r: (r / "pkg" / "mod.py").unlink(),
    "file renamed": lambda r: (r / "app.py").rename(r / "main.py"),
    "directory added": _add_directory,
    "file replaced by a symlink": _replace_by_symlink,
    ".gitignore rewritten, same size": lambda r: (r / ".gitignore").write_text("app.*\n"),
    "nested .gitignore rewritten": lambda r: (r / "pkg" / ".gitignore").write_text("mod.*\n"),
    ".immuteignore rewritten": lambda r: (r / ".immuteignore").write_text("app.py\n"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_remembered_selection_follows_every_change_to_the_context(
    tree: Path, tmp_path: Path, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context_cache, "RACY_SECONDS", 0.0)
    cache = tmp_path / "cache"
    first = _selection(tree, cache)
    assert first == [".gitignore", ".immuteignore", "app.py", "pkg/.gitignore", "pkg/mod.py"]
    assert len(list(cache.iterdir())) == 1, "the walk was remembered"
    walks: list[int] = []
    real_walk = context._walk

    def counted(*args: object, **kwargs: object) -> list[str]:
        walks.append(1)
        return real_walk(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(context, "_walk", counted)
    assert _selection(tree, cache) == first and walks == [], "unchanged: no walk"
    CHANGES[change](tree)
    fresh = real_walk(tree, include=[], exclude=["*.md"], recorder=None)
    assert _selection(tree, cache) == fresh
    assert walks == [1], "changed: walked again"
    if change not in ("ignored file added", "file replaced by a symlink"):
        assert _selection(tree, cache) != first


def test_a_walk_right_after_a_change_is_not_remembered(tree: Path, tmp_path: Path) -> None:
    """Within the racy window a later change could keep the same timestamp."""
    (tree / "pkg" / "fresh.py").write_text("x\n")
    cache = tmp_path / "cache"
    assert "pkg/fresh.py" in _selection(tree, cache)
    assert not cache.exists() or not list(cache.iterdir())
