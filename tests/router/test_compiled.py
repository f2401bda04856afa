"""The router's hot path is compiled with mypyc where it can be (setup.py), and
the same modules still run as plain Python where it cannot."""

from __future__ import annotations

import importlib
import os
import tomllib
from pathlib import Path

import pytest
from router_helpers import KeepAliveClient, Procs

import immute
from compiled_router import EXTENSIONS, RUNTIME, plain_env

SOURCE = Path(immute.__file__).parent
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
COMPILED = tomllib.loads(PYPROJECT.read_text())["tool"]["immute"]["compiled"]


def compiled_files() -> dict[str, Path]:
    """The listed modules that are extension modules in this install, and their files."""
    files = {}
    for path in COMPILED:
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        if module.__file__ is not None and module.__file__.endswith(EXTENSIONS):
            files[path] = Path(module.__file__)
    return files


def test_hot_path_is_compiled_when_asked() -> None:
    if os.environ.get("IMMUTE_COMPILE") != "1":
        pytest.skip("IMMUTE_COMPILE=1 is not set, so the hot path may be plain Python here")
    assert sorted(compiled_files()) == sorted(COMPILED)


def test_compiled_modules_are_not_older_than_their_source() -> None:
    """An edit to a compiled module takes effect only after a rebuild: catch the
    stale build rather than test code that is not the source."""
    compiled = compiled_files()
    if not compiled:
        pytest.skip("the hot path is plain Python in this install")
    stale = [
        path
        for path, file in compiled.items()
        if (SOURCE.parent / path).stat().st_mtime > file.stat().st_mtime
    ]
    assert not stale, f"rebuild with `make .venv/.immute-installed`: {stale} changed since"


def mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.anyio
async def test_plain_python_router_proxies_like_the_compiled_one(
    procs: Procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = procs.backend("app")
    compiled_router = procs.router(admin=tmp_path / "compiled.sock")
    monkeypatch.setenv("PYTHONPATH", plain_env(tmp_path)["PYTHONPATH"])
    plain_router = procs.router(admin=tmp_path / "plain.sock")
    assert RUNTIME not in mapped(plain_router.process.pid)
    if compiled_files():
        assert RUNTIME in mapped(compiled_router.process.pid)
    for router in (compiled_router, plain_router):
        await router.api.set_targets("web", [backend.target()])
        client = KeepAliveClient("127.0.0.1", router.port)
        answers = [
            await client.request("GET", "/"),
            await client.request("POST", "/echo", b"x" * 9),
        ]
        await client.close()
        assert answers == [(200, b"app"), (200, b"x" * 9)]
