"""What every runtime does, checked against real instances of a real HTTP app.

Parametrised over the runtimes: ``process`` always; ``docker`` against a real
engine (skipped with the reason when none answers, failed when
``IMMUTE_REQUIRE_DOCKER=1``), with the test app in an image built on a Debian
base image.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from immute.core.instances import InstanceInfo, InstanceSpec, InstanceState, LogBatch, LogLine
from immute.errors import InstanceError, NotFoundError
from immute.images.archive import export_image
from immute.images.store import ImageStore
from immute.runtimes.base import Runtime, follow_logs, load_runtime

from . import docker_kit
from .instance_apps import (
    APP_SOURCE,
    app_root,
    app_spec,
    stop_everything,
    wait_for_exit,
    wait_for_http,
)

RUNTIMES = ["process", pytest.param("docker", marks=pytest.mark.docker)]


@pytest.fixture(params=RUNTIMES)
def runtime_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "docker":
        docker_kit.require_engine()
    return name


@pytest.fixture(scope="session")
def docker_app_image() -> tuple[ImageStore, str]:
    """The test app's image on the Debian base, in the image store kept between runs."""
    store = docker_kit.shared_store()
    return store, docker_kit.app_image(store, source=APP_SOURCE, argv=["python3", "app.py"])


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def runtime(runtime_name: str, state_dir: Path) -> Iterator[Runtime]:
    runtime = load_runtime(runtime_name, state_dir=state_dir)
    yield runtime
    asyncio.run(stop_everything(runtime))


MakeSpec = Callable[..., InstanceSpec]


@pytest.fixture
def make_spec(runtime_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> MakeSpec:
    """Specs of the test app as this runtime runs it: ``make_spec(id, env=..., ...)``.

    For ``process`` the app sits in a read-only root under the host's Python;
    for ``docker`` it is an image in immute's store, run with the image's ``python3``.
    """
    if runtime_name == "docker":
        store, digest = request.getfixturevalue("docker_app_image")
        return functools.partial(
            app_spec,
            Path("/"),
            image_digest=digest,
            image_id=store.manifest(digest).config.digest,
            image_export=functools.partial(export_image, store, digest),
            python="python3",
        )
    return functools.partial(app_spec, app_root(tmp_path))


def by_id(runtime: Runtime) -> dict[str, InstanceInfo]:
    return {info.instance_id: info for info in asyncio.run(runtime.observe())}


def all_lines(runtime: Runtime, instance_id: str) -> list[LogLine]:
    """Every line the instance wrote, once it has exited."""
    lines: list[LogLine] = []

    async def sink(batch: LogBatch) -> None:
        lines.extend(batch.lines)

    asyncio.run(asyncio.wait_for(follow_logs(runtime, instance_id, sink, interval=0.05), 15))
    return lines


def test_runtime_satisfies_the_protocol(runtime: Runtime) -> None:
    assert isinstance(runtime, Runtime)


def test_started_instance_answers_on_its_port_with_the_given_env(
    runtime: Runtime, make_spec: MakeSpec
) -> None:
    os.environ["IMMUTE_TEST_AGENT_ONLY"] = "1"
    try:
        spec = make_spec("web-1", env={"GREETING": "hello from env"})
        info = asyncio.run(runtime.start(spec))
    finally:
        del os.environ["IMMUTE_TEST_AGENT_ONLY"]
    assert info.state is InstanceState.RUNNING
    assert info.address == f"127.0.0.1:{spec.port}"
    assert info.labels == spec.labels
    body = wait_for_http(spec.port).json()
    assert body["greeting"] == "hello from env"
    assert "PORT" in body["env"]
    assert "IMMUTE_TEST_AGENT_ONLY" not in body["env"]


def test_stop_sends_sigterm_and_waits_until_gone(runtime: Runtime, make_spec: MakeSpec) -> None:
    spec = make_spec("web-1")
    asyncio.run(runtime.start(spec))
    wait_for_http(spec.port)
    asyncio.run(runtime.stop("web-1"))
    info = by_id(runtime)["web-1"]
    assert (info.state, info.exit_code) == (InstanceState.EXITED, 0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{spec.port}/", timeout=2.0)
    assert "got SIGTERM" in [line.text for line in all_lines(runtime, "web-1")]


def test_instance_ignoring_sigterm_is_killed_after_the_grace_period(
    runtime: Runtime, make_spec: MakeSpec
) -> None:
    spec = make_spec("stubborn", env={"IGNORE_SIGTERM": "1"}, stop_grace=0.3)
    asyncio.run(runtime.start(spec))
    wait_for_http(spec.port)
    asyncio.run(runtime.stop("stubborn"))
    assert by_id(runtime)["stubborn"].exit_code == 128 + signal.SIGKILL


def test_stop_of_a_gone_or_unknown_instance_is_fine(runtime: Runtime, make_spec: MakeSpec) -> None:
    spec = make_spec("web-1")
    asyncio.run(runtime.start(spec))
    wait_for_http(spec.port, "/exit?0")
    asyncio.run(wait_for_exit(runtime, "web-1"))
    asyncio.run(runtime.stop("web-1"))
    asyncio.run(runtime.stop("web-1", grace=0))
    asyncio.run(runtime.stop("never-started"))
    assert by_id(runtime)["web-1"].exit_code == 0


def test_a_new_runtime_readopts_live_instances_and_reports_dead_ones(
    runtime_name: str, runtime: Runtime, state_dir: Path, make_spec: MakeSpec
) -> None:
    live, dead = make_spec("live"), make_spec("dead")
    started = asyncio.run(runtime.start(live))
    asyncio.run(runtime.start(dead))
    wait_for_http(live.port)
    wait_for_http(dead.port, "/exit?7")
    asyncio.run(wait_for_exit(runtime, "dead"))

    restarted = load_runtime(runtime_name, state_dir=state_dir)
    seen = {info.instance_id: info for info in asyncio.run(restarted.observe())}
    assert sorted(seen) == ["dead", "live"]
    assert seen["live"].state is InstanceState.RUNNING
    assert seen["live"].handle == started.handle
    assert seen["live"].labels == live.labels
    assert seen["live"].port == live.port
    assert seen["dead"].state is InstanceState.EXITED
    assert seen["dead"].exit_code == 7
    asyncio.run(restarted.stop("live"))
    assert asyncio.run(restarted.observe())[1].exit_code == 0


def test_two_state_directories_run_the_same_instance_id_apart(
    runtime_name: str, runtime: Runtime, tmp_path: Path, make_spec: MakeSpec
) -> None:
    """Two deployments of one app on one machine (say staging and production)
    share instance ids; each runtime sees, reads and stops only its own."""
    other = load_runtime(runtime_name, state_dir=tmp_path / "other-state")
    mine, theirs = make_spec("web-1"), make_spec("web-1")
    try:
        asyncio.run(runtime.start(mine))
        asyncio.run(other.start(theirs))
        for spec in (mine, theirs):
            wait_for_http(spec.port)
        asyncio.run(other.stop("web-1"))
        assert by_id(other)["web-1"].state is InstanceState.EXITED
        assert by_id(runtime)["web-1"].state is InstanceState.RUNNING
        wait_for_http(mine.port)
    finally:
        asyncio.run(stop_everything(other))


@pytest.mark.docker
@pytest.mark.parametrize("runtime_name", ["docker"])
def test_docker_still_finds_a_container_under_the_name_earlier_versions_gave(
    runtime: Runtime, make_spec: MakeSpec
) -> None:
    docker_kit.require_engine()
    from immute.runtimes.docker import DockerRuntime

    assert isinstance(runtime, DockerRuntime)
    spec = make_spec("web-1")
    info = asyncio.run(runtime.start(spec))
    wait_for_http(spec.port)
    runtime.client.containers.get(info.handle).rename("immute-web-1")
    asyncio.run(runtime.stop("web-1"))
    assert by_id(runtime)["web-1"].state is InstanceState.EXITED
    assert "got SIGTERM" in [line.text for line in all_lines(runtime, "web-1")]


def test_logs_are_captured_by_stream_and_read_once_with_cursors(
    runtime: Runtime, make_spec: MakeSpec
) -> None:
    spec = make_spec("web-1")
    asyncio.run(runtime.start(spec))
    wait_for_http(spec.port, "/say?first")
    first = asyncio.run(runtime.read_logs("web-1"))
    wait_for_http(spec.port, "/say?second")
    asyncio.run(runtime.stop("web-1"))
    rest = asyncio.run(runtime.read_logs("web-1", cursor=first.cursor))
    first_lines = [(line.stream, line.text) for line in first.lines]
    assert ("stderr", "this goes to stderr") in first_lines
    assert ("stdout", f"listening on {spec.port}") in first_lines
    assert ("stdout", "first") in first_lines
    assert [(line.stream, line.text) for line in rest.lines] == [
        ("stdout", "second"),
        ("stdout", "got SIGTERM"),
    ]
    assert rest.complete and not first.complete
    assert {line.instance_id for line in first.lines + rest.lines} == {"web-1"}


def test_lines_of_a_running_instance_arrive_once_in_order_over_many_reads(
    runtime: Runtime, make_spec: MakeSpec
) -> None:
    """Reads while the instance runs (the docker runtime follows the engine's
    stream between them), then one after it stopped, miss and repeat nothing."""
    spec = make_spec("web-1")
    asyncio.run(runtime.start(spec))
    wait_for_http(spec.port, "/say?warm-up")
    batch = asyncio.run(runtime.read_logs("web-1"))
    said: list[str] = []
    for n in range(20):
        wait_for_http(spec.port, f"/say?line-{n}")
        for _ in range(200):
            batch = asyncio.run(runtime.read_logs("web-1", cursor=batch.cursor, limit=3))
            said += [line.text for line in batch.lines if line.text.startswith("line-")]
            if said and said[-1] == f"line-{n}":
                break
            time.sleep(0.01)
    asyncio.run(runtime.stop("web-1"))
    rest = asyncio.run(runtime.read_logs("web-1", cursor=batch.cursor))
    said += [line.text for line in rest.lines if line.text.startswith("line-")]
    assert said == [f"line-{n}" for n in range(20)]
    assert rest.complete


def test_logs_of_an_unknown_instance_are_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFoundError):
        asyncio.run(runtime.read_logs("never-started"))


def test_a_start_that_cannot_run_fails_and_leaves_nothing(
    runtime: Runtime, make_spec: MakeSpec
) -> None:
    with pytest.raises(InstanceError, match="no-such-command"):
        asyncio.run(runtime.start(make_spec("broken", argv=("no-such-command",))))
    assert by_id(runtime) == {}


def test_instance_ids_are_unique(runtime: Runtime, make_spec: MakeSpec) -> None:
    asyncio.run(runtime.start(make_spec("web-1")))
    with pytest.raises(InstanceError, match="already exists"):
        asyncio.run(runtime.start(make_spec("web-1")))


def test_remove_stops_and_forgets(runtime: Runtime, make_spec: MakeSpec) -> None:
    spec = make_spec("web-1")
    asyncio.run(runtime.start(spec))
    wait_for_http(spec.port)
    asyncio.run(runtime.remove("web-1"))
    assert by_id(runtime) == {}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{spec.port}/", timeout=2.0)
    asyncio.run(runtime.remove("web-1"))


STARTER = """
import asyncio, functools, json, sys, time
from pathlib import Path
from immute.core.instances import InstanceLabels, InstanceSpec
from immute.images.archive import export_image
from immute.images.store import ImageStore
from immute.runtimes.base import load_runtime

name, state_dir, raw = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
raw["labels"] = InstanceLabels(**raw["labels"])
raw["root_dir"] = Path(raw["root_dir"])
raw["argv"] = tuple(raw["argv"])
store = raw.pop("image_store")
if store:
    export = functools.partial(export_image, ImageStore(Path(store)), raw["labels"].image_digest)
    raw["image_export"] = export
info = asyncio.run(load_runtime(name, state_dir=state_dir).start(InstanceSpec(**raw)))
print(info.handle, flush=True)
time.sleep(60)
"""


def image_store_of(spec: InstanceSpec) -> str | None:
    """Where the spec's export reads the image from (a child rebuilds the export)."""
    export = spec.image_export
    if isinstance(export, functools.partial):
        store: ImageStore = export.args[0]
        return str(store.root)
    return None


def test_instance_outlives_the_process_that_started_it(
    runtime_name: str, runtime: Runtime, state_dir: Path, make_spec: MakeSpec
) -> None:
    spec = make_spec("survivor", env={"GREETING": "still here"})
    raw = {
        "labels": vars(spec.labels),
        "root_dir": str(spec.root_dir),
        "workdir": spec.workdir,
        "argv": list(spec.argv),
        "env": dict(spec.env),
        "port": spec.port,
        "stop_grace": spec.stop_grace,
        "image_id": spec.image_id,
        "image_store": image_store_of(spec),
    }
    agent = subprocess.Popen(
        [sys.executable, "-c", STARTER, runtime_name, str(state_dir), json.dumps(raw)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert agent.stdout is not None
    with agent.stdout:
        handle = agent.stdout.readline().strip()
    assert handle
    wait_for_http(spec.port)
    agent.send_signal(signal.SIGKILL)
    assert agent.wait(timeout=15) == -signal.SIGKILL

    assert wait_for_http(spec.port, "/say?after-the-agent-died").json()["greeting"] == "still here"
    (info,) = asyncio.run(runtime.observe())
    assert (info.state, info.handle) == (InstanceState.RUNNING, handle)
    asyncio.run(runtime.stop("survivor"))
    texts = [line.text for line in all_lines(runtime, "survivor")]
    assert "after-the-agent-died" in texts
    assert "got SIGTERM" in texts
