"""Building instances of the test app (``apps/instance_app.py``) for runtime and health tests."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from immute.core.instances import InstanceLabels, InstanceSpec
from immute.runtimes.base import Runtime
from immute.runtimes.ports import free_port

APP_SOURCE = Path(__file__).with_name("apps") / "instance_app.py"
DIGEST = "sha256:" + "ab" * 32
WAIT = 15.0


def app_root(parent: Path) -> Path:
    """A read-only root like the image builder materialises: the app in /app."""
    root = parent / "root"
    (root / "app").mkdir(parents=True)
    shutil.copy(APP_SOURCE, root / "app" / "app.py")
    for path in (root / "app" / "app.py", root / "app", root):
        path.chmod(0o444 if path.is_file() else 0o555)
    return root


def app_spec(
    root: Path,
    instance_id: str,
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = -1,
    stop_grace: float = 5.0,
    argv: tuple[str, ...] | None = None,
    python: str = sys.executable,
    image_digest: str = DIGEST,
    image_id: str = "",
    image_export: Callable[[Path], object] | None = None,
) -> InstanceSpec:
    """A spec for the test app; ``port=-1`` picks a free loopback port.

    ``python`` runs ``app.py`` unless ``argv`` says otherwise; container runtimes
    run ``image_id``, loading it through ``image_export`` if need be."""
    return InstanceSpec(
        labels=InstanceLabels(
            instance_id=instance_id,
            app="hello",
            process="web",
            release="v1",
            image_digest=image_digest,
        ),
        root_dir=root,
        workdir="/app",
        argv=argv or (python, "app.py"),
        env=dict(env or {}),
        port=free_port() if port == -1 else port,
        stop_grace=stop_grace,
        image_id=image_id,
        image_export=image_export,
    )


def wait_for_http(port: int | None, path: str = "/") -> httpx.Response:
    """The first answer from the instance, polling while it boots (bounded in time)."""
    assert port is not None
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2.0)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def stop_everything(runtime: Runtime) -> None:
    """Leave nothing running after a test, whatever it did."""
    for info in await runtime.observe():
        await runtime.stop(info.instance_id, grace=0.5)
        await runtime.remove(info.instance_id)


async def wait_for_exit(runtime: Runtime, instance_id: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        states = {i.instance_id: i.state.value for i in await runtime.observe()}
        if states.get(instance_id) == "exited":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{instance_id} still running after {WAIT}s")
