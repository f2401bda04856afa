"""Stacks from the Docker engine: a Dockerfile built on the test base image, and a
base image named by its engine ID, each taken into immute's store by digest; the
app built on them runs as containers and sees the Dockerfile's addition and a
dependency installed for the base's Python. Bad stacks are one-line errors.

Skipped with the reason where no Docker engine answers; failed instead when
IMMUTE_REQUIRE_DOCKER=1.
"""

from __future__ import annotations

import http.client
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract import docker_kit
from deploy.support import App
from images.local_wheels import make_wheel

STACK_APP = Path(__file__).with_name("apps") / "stack_app.py"


@pytest.fixture
def stack_app(tmp_path: Path) -> Iterator[App]:
    """The stack app, ``runtime: docker``, its dependency from a local wheel."""
    app = App(tmp_path)
    try:
        shutil.copy(STACK_APP, app.dir / "app.py")
        (app.dir / "requirements.txt").write_text("tinydep==1.0\n")
        make_wheel(tmp_path / "wheels", "tinydep", "1.0")
        app.env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path / "wheels"))
        app.spec.update(app=f"stack-{uuid.uuid4().hex[:8]}", runtime="docker")
        app.spec["processes"]["web"]["instances"] = 1
        yield app
    finally:
        app.run("down", check=False, timeout=60)
        if (app.state / "images").is_dir():
            docker_kit.forget_engine_images(app.state / "images", keep="")
        app.teardown()


def build_json(app: App) -> dict[str, object]:
    value = json.loads(app.run("build", "--json", timeout=300).stdout)
    assert isinstance(value, dict)
    return value


def error_line(app: App) -> str:
    result = app.run("build", check=False, timeout=120)
    assert result.returncode != 0, result.stdout
    # Progress lines are indented; the error is the one line that is not.
    (line,) = [ln for ln in result.stderr.splitlines() if not ln.startswith(" ")]
    return line


@pytest.mark.slow
@pytest.mark.docker
def test_a_dockerfile_stack_runs_with_its_addition_and_deps_for_the_bases_python(
    stack_app: App,
) -> None:
    app = stack_app
    tag, _ = docker_kit.base_in_engine()
    (app.dir / "stack").mkdir()
    (app.dir / "stack" / "Dockerfile").write_text(
        f"FROM {tag}\nRUN echo from-the-dockerfile > /etc/immute-stack-note\n"
    )
    app.spec["build"] = {"dockerfile": "stack/Dockerfile"}
    app.write_spec()
    built = build_json(app)
    assert built["python"] == {"interpreter": "cpython-3.11", "platform": "glibc-2.36-x86_64"}
    stack = built["stack_digest"]
    listed = json.loads(app.run("images", "--json").stdout)
    assert [r["names"] for r in listed if r["digest"] == stack] == [
        [f"{app.spec['app']}-stack:latest"]
    ]
    assert build_json(app)["manifest_digest"] == built["manifest_digest"], "reproducible"

    app.run("deploy", "-m", "on a Dockerfile stack", timeout=300)
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    conn.request("GET", "/")
    facts = json.loads(conn.getresponse().read())
    conn.close()
    assert facts == {
        "note": "from-the-dockerfile",
        "tinydep": "1.0",
        "tinydep_file": "/opt/immute/deps/tinydep/__init__.py",
        "python": "3.11",
    }

    (app.dir / "stack" / "Dockerfile").write_text(f"FROM {tag}\nRUN false\n")
    line = error_line(app)
    assert "docker build failed" in line and "stack/Dockerfile" in line, line


@pytest.mark.slow
@pytest.mark.docker
def test_an_engine_image_pinned_by_its_id_is_imported_by_digest(stack_app: App) -> None:
    app = stack_app
    tag, image_id = docker_kit.base_in_engine()
    app.spec["build"] = {"stack": f"{tag}@{image_id}"}
    app.write_spec()
    built = build_json(app)
    from immute.images.store import ImageStore

    store = ImageStore(app.state / "images", create=False)
    assert store.manifest(str(built["stack_digest"])).config.digest == image_id
    assert built["stack"] == f"{tag}@{image_id}"


@pytest.mark.docker
def test_a_wrong_or_missing_base_is_one_line_saying_what_to_do(stack_app: App) -> None:
    app = stack_app
    tag, image_id = docker_kit.base_in_engine()
    wrong = "sha256:" + "0" * 64
    app.spec["build"] = {"stack": f"{tag}@{wrong}"}
    app.write_spec()
    line = error_line(app)
    assert f"{tag} is {image_id}, not the pinned digest" in line, line
    app.spec["build"] = {"stack": f"immute-no-such-base:1@{wrong}"}
    app.write_spec()
    line = error_line(app)
    assert "immute image import FILE" in line and "docker pull" in line, line


def test_dockerfile_stack_errors_without_cli_engine_or_with_state_in_context(
    tmp_path: Path,
) -> None:
    app = App(tmp_path)
    try:
        (app.dir / "stack").mkdir()
        (app.dir / "stack" / "Dockerfile").write_text("FROM scratch\n")
        app.spec.update(runtime="docker", build={"dockerfile": "stack/Dockerfile"})
        app.write_spec()
        state = app.env["IMMUTE_STATE_DIR"]
        app.env["IMMUTE_STATE_DIR"] = str(app.dir / "stack" / "state")
        assert "holds immute's state directory" in error_line(app)
        (app.dir / "stack" / ".dockerignore").write_text("state\n")
        app.env["DOCKER_HOST"] = f"unix://{tmp_path}/no-engine.sock"
        assert "start dockerd" in error_line(app)
        app.env["IMMUTE_STATE_DIR"] = state
        assert "start dockerd" in error_line(app)
        app.env.pop("DOCKER_HOST")
        app.env["PATH"] = str(tmp_path / "empty")
        line = error_line(app)
        assert "docker CLI is not installed" in line, line
    finally:
        app.teardown()
