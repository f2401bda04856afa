"""What only the process runtime promises: /proc identity, process groups, secrets off disk."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from contract.instance_apps import app_root, app_spec, stop_everything, wait_for_http
from immute.core.instances import InstanceState
from immute.errors import InstanceError, NotFoundError
from immute.runtimes import procfs
from immute.runtimes.base import load_runtime, runtime_names
from immute.runtimes.ports import free_port
from immute.runtimes.process import ProcessRuntime

GROUP_WITH_STUBBORN_CHILD = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
print(child.pid, flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(60)
"""


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ProcessRuntime]:
    runtime = ProcessRuntime(tmp_path / "state")
    yield runtime
    asyncio.run(stop_everything(runtime))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return app_root(tmp_path)


def alive(pid: int) -> bool:
    """Exists and has not exited (a zombie waiting for init to reap it has)."""
    stat = procfs.read_stat(pid)
    return stat is not None and stat.state not in "ZX"


def first_stdout_line(runtime: ProcessRuntime, instance_id: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        batch = asyncio.run(runtime.read_logs(instance_id))
        if batch.lines:
            return batch.lines[0].text
        time.sleep(0.05)
    raise AssertionError("the instance wrote nothing")


def test_stop_kills_the_whole_process_group_after_the_grace(
    runtime: ProcessRuntime, root: Path
) -> None:
    argv = (sys.executable, "-c", GROUP_WITH_STUBBORN_CHILD)
    asyncio.run(runtime.start(app_spec(root, "group", argv=argv, port=None, stop_grace=0.3)))
    child = int(first_stdout_line(runtime, "group"))
    assert alive(child)
    asyncio.run(runtime.stop("group"))
    assert not alive(child)
    (info,) = asyncio.run(runtime.observe())
    assert (info.state, info.exit_code, info.port) == (InstanceState.EXITED, 0, None)


def test_an_instance_whose_shim_was_killed_too_is_exited_with_status_unknown(
    runtime: ProcessRuntime, root: Path, tmp_path: Path
) -> None:
    spec = app_spec(root, "web-1")
    asyncio.run(runtime.start(spec))
    wait_for_http(spec.port)
    started = json.loads((tmp_path / "state/instances/web-1/pid.json").read_text())
    os.kill(started["shim_pid"], signal.SIGKILL)
    os.kill(started["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while alive(started["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    (info,) = asyncio.run(ProcessRuntime(tmp_path / "state").observe())
    assert (info.state, info.exit_code) == (InstanceState.EXITED, None)
    asyncio.run(runtime.stop("web-1"))


def test_a_reused_pid_is_not_mistaken_for_the_instance(
    runtime: ProcessRuntime, root: Path, tmp_path: Path
) -> None:
    spec = app_spec(root, "web-1")
    asyncio.run(runtime.start(spec))
    pid_file = tmp_path / "state/instances/web-1/pid.json"
    started = json.loads(pid_file.read_text())
    os.kill(started["shim_pid"], signal.SIGKILL)
    # The same pid with another start time is what a reused pid looks like.
    pid_file.write_text(json.dumps({**started, "start_ticks": started["start_ticks"] - 1}))
    (info,) = asyncio.run(runtime.observe())
    assert info.state is InstanceState.EXITED
    asyncio.run(runtime.stop("web-1"))
    assert wait_for_http(spec.port).status_code == 200
    pid_file.write_text(json.dumps(started))


def test_env_values_are_never_written_to_the_state_dir(
    runtime: ProcessRuntime, root: Path, tmp_path: Path
) -> None:
    secret = "s3cr3t-value-" + os.urandom(4).hex()
    spec = app_spec(root, "web-1", env={"DATABASE_PASSWORD": secret})
    asyncio.run(runtime.start(spec))
    assert wait_for_http(spec.port).status_code == 200
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("workdir", "message"),
    [("/../..", "leaves the image root"), ("/nowhere", "does not exist")],
)
def test_a_working_directory_outside_or_missing_is_refused(
    runtime: ProcessRuntime, root: Path, workdir: str, message: str
) -> None:
    spec = app_spec(root, "web-1")
    with pytest.raises(InstanceError, match=message):
        asyncio.run(runtime.start(replace(spec, workdir=workdir)))
    assert asyncio.run(runtime.observe()) == []


@pytest.mark.parametrize("instance_id", ["../escape", "", "a/b", "-x"])
def test_instance_ids_that_are_not_plain_names_are_refused(
    runtime: ProcessRuntime, root: Path, instance_id: str
) -> None:
    with pytest.raises(InstanceError, match="invalid instance id"):
        asyncio.run(runtime.start(app_spec(root, instance_id)))


def test_a_bad_log_cursor_is_refused(runtime: ProcessRuntime, root: Path) -> None:
    asyncio.run(runtime.start(app_spec(root, "web-1")))
    with pytest.raises(InstanceError, match="invalid log cursor"):
        asyncio.run(runtime.read_logs("web-1", cursor="x:1"))


def test_unknown_runtime_names_list_the_known_ones(tmp_path: Path) -> None:
    assert "process" in runtime_names()
    with pytest.raises(NotFoundError, match=r"unknown runtime 'nope'; known runtimes: .*process"):
        load_runtime("nope", state_dir=tmp_path)


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_a_command_that_is_not_executable_is_refused_naming_it(
    runtime: ProcessRuntime, root: Path
) -> None:
    with pytest.raises(InstanceError, match=r"Permission denied: \./app\.py"):
        asyncio.run(runtime.start(app_spec(root, "web-1", argv=("./app.py",))))


def test_commands_are_found_on_the_instance_path_not_the_agents(
    runtime: ProcessRuntime, root: Path
) -> None:
    python_dir = str(Path(sys.executable).parent)
    spec = app_spec(root, "web-1", argv=(Path(sys.executable).name, "app.py"))
    with pytest.raises(InstanceError, match="No such file or directory"):
        asyncio.run(runtime.start(replace(spec, env={"PATH": "/nonexistent"})))
    asyncio.run(runtime.start(replace(spec, env={"PATH": python_dir})))
    assert wait_for_http(spec.port).status_code == 200
