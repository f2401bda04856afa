"""The docker runtime end to end: the example app built on a Debian base image
imported into immute's store, deployed as containers through the CLI and a
real agent, under load; state in a volume outlives releases and rollbacks; the
root file system is read-only.

Skipped with the reason where no Docker engine answers; failed instead when
IMMUTE_REQUIRE_DOCKER=1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contract import docker_kit
from deploy.support import App
from loadgen import Load

pytestmark = [pytest.mark.slow, pytest.mark.docker]

if TYPE_CHECKING:
    from docker.models.containers import Container

VOLUME_APP = Path(__file__).with_name("apps") / "volume_app.py"


def fetch(app: App, path: str) -> tuple[str, str]:
    """(body, x-release) of one GET through the router."""
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.read().decode(), response.getheader("x-release") or ""
    finally:
        conn.close()


@pytest.fixture
def docker_app(tmp_path: Path) -> Iterator[App]:
    """The example app with a unique name, on the imported base, ``runtime: docker``."""
    docker_kit.require_engine()
    tar = docker_kit.base_image_tar()
    app = App(tmp_path)
    name = f"dock-{uuid.uuid4().hex[:8]}"
    imported: list[str] = []
    try:
        imported = app.run("image", "import", str(tar), timeout=300).stdout.split()
        app.spec["app"] = name
        app.spec["build"] = {"stack": imported[1]}
        app.spec["runtime"] = "docker"
        app.spec["processes"]["web"]["instances"] = 2
        app.write_spec()
        yield app
    finally:
        # Before teardown, which deletes the app's directory and its image store.
        app.run("down", check=False, timeout=60)
        app.run("volumes", "rm", f"immute-{name}-data", "--yes", check=False)
        if imported:
            docker_kit.forget_engine_images(app.state / "images", keep=imported[1])
        app.teardown()


def test_example_app_deploys_as_containers_and_rolls_back_under_load(docker_app: App) -> None:
    app = docker_app
    app.spec["retain"] = {"images": 2}
    app.write_spec()
    app.greet("Hello, v1")
    app.run("deploy", "-m", "first", timeout=300)
    with Load(app.port, connections=8) as load:
        time.sleep(0.3)
        app.greet("Hello, v2")
        app.run("deploy", "-m", "second", timeout=300)
        v2_image = engine_id_of(app, "v2")
        assert engine_has(v2_image)
        time.sleep(0.3)
        app.run("rollback", timeout=300)
        time.sleep(0.3)
        app.greet("Hello, v4")
        app.run("deploy", "-m", "fourth", timeout=300)
        time.sleep(0.3)
    assert load.result.failed == 0, load.result
    assert all(load.result.by_release[v] > 0 for v in ("v2", "v3", "v4")), load.result
    assert app.get() == (200, "v4")
    rows = json.loads(app.run("status", "--json").stdout)
    assert rows, "status lists the running instances"
    assert not engine_has(v2_image), "retention took v2's image out of the engine too"


def test_runtime_option_deploys_a_spec_without_runtime_as_containers(docker_app: App) -> None:
    app = docker_app
    del app.spec["runtime"]
    app.write_spec()
    refused = app.run("deploy", check=False)
    assert refused.returncode == 2
    assert "the process runtime runs on the host stack" in refused.stderr
    app.run("deploy", "--runtime", "docker", timeout=300)
    assert app.get() == (200, "v1")
    assert len(containers_of(app)) == 2


def containers_of(app: App) -> list[Container]:
    """The app's running containers, found by the runtime's own labels."""
    import docker

    with contextlib.closing(docker.from_env()) as client:
        found = client.containers.list(filters={"label": f"immute.app={app.spec['app']}"})
    return found


def engine_id_of(app: App, release: str) -> str:
    """The engine's ID (config digest) of a release's image, from the app's store."""
    from immute.images.store import ImageStore

    rows = json.loads(app.run("history", "--json").stdout)
    digest = next(r["image_digest"] for r in rows if f"v{r['number']}" == release)
    return ImageStore(app.state / "images", create=False).manifest(digest).config.digest


def engine_has(image_id: str) -> bool:
    import docker
    from docker.errors import ImageNotFound

    with contextlib.closing(docker.from_env()) as client:
        try:
            client.images.get(image_id)
        except ImageNotFound:
            return False
    return True


def test_an_unreachable_engine_is_one_line_naming_what_to_do(tmp_path: Path) -> None:
    import subprocess
    import sys

    for host in (f"unix://{tmp_path}/no-engine.sock", "tcp://127.0.0.1:9"):
        env = {**os.environ, "DOCKER_HOST": host}
        argv = [sys.executable, "-m", "immute", "volumes"]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        (line,) = result.stderr.splitlines()
        assert "start dockerd" in line or "is dockerd running?" in line, line


def test_volume_data_survives_deploys_and_rollbacks_and_the_root_is_read_only(
    docker_app: App,
) -> None:
    app = docker_app
    shutil.copy(VOLUME_APP, app.dir / "app.py")
    app.spec["volumes"] = {"data": {"path": "/data"}}
    app.spec["scratch"] = ["/scratch"]
    app.spec["processes"]["web"]["instances"] = 1
    app.spec["processes"]["web"]["resources"] = {"cpus": 0.5, "memory": "256Mi"}
    app.spec["processes"]["web"]["health"]["readiness"]["http"] = "/"
    app.write_spec()
    app.run("deploy", "-m", "v1", timeout=300)
    assert fetch(app, "/write?written-by-v1") == ("written-by-v1\n", "v1")
    assert fetch(app, "/root-write")[0] == "refused: Read-only file system"
    assert fetch(app, "/tmp-write")[0] == "written"
    assert fetch(app, "/scratch-write")[0] == "written"
    (container,) = containers_of(app)
    host = container.attrs["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["NetworkMode"]) == (5 * 10**8, 256 << 20, "host")
    assert (host["ReadonlyRootfs"], host["SecurityOpt"]) == (True, ["no-new-privileges"])
    assert container.labels["immute.release"] == "v1"

    app.greet("Hello, v2")
    app.run("deploy", "-m", "v2", timeout=300)
    assert fetch(app, "/read") == ("written-by-v1\n", "v2")
    assert fetch(app, "/write?written-by-v2") == ("written-by-v1\nwritten-by-v2\n", "v2")

    app.run("rollback", timeout=300)
    assert fetch(app, "/read") == ("written-by-v1\nwritten-by-v2\n", "v3")
    logged = [json.loads(line) for line in app.run("logs", "--json").stdout.splitlines()]
    assert sum("volume app on" in row["text"] for row in logged) >= 3, "one per release"
    listed = json.loads(app.run("volumes", "--json").stdout)
    assert f"immute-{app.spec['app']}-data" in [v["name"] for v in listed]
