"""The log shipper against the real process runtime and real processes that print."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from contract.instance_apps import app_root, app_spec, stop_everything, wait_for_exit
from immute.agent.log_shipper import LogShipper
from immute.core.instances import InstanceLabels
from immute.runtimes.process import ProcessRuntime
from immute.store import Store
from store.support import cli_env, run_cli

# Prints COUNT numbered lines on stdout and every tenth number on stderr, pausing
# PAUSE seconds after each hundred: a busy instance whose output we can check.
PRINTER = """
import os, sys, time
count, pause = int(os.environ["COUNT"]), float(os.environ.get("PAUSE", "0"))
for i in range(count):
    print(f"out {i}", flush=True)
    if i % 10 == 0:
        print(f"err {i}", file=sys.stderr, flush=True)
    if i % 100 == 99:
        time.sleep(pause)
"""
CHILD = Path(__file__).with_name("log_shipping_child.py")
WAIT = 60.0


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ProcessRuntime]:
    runtime = ProcessRuntime(tmp_path / "runtime")
    yield runtime
    asyncio.run(stop_everything(runtime))


async def start_printer(
    runtime: ProcessRuntime, root: Path, instance_id: str, *, count: int, pause: float = 0.0
) -> InstanceLabels:
    spec = app_spec(
        root,
        instance_id,
        argv=(sys.executable, "-c", PRINTER),
        env={"COUNT": str(count), "PAUSE": str(pause)},
        port=None,
    )
    await runtime.start(spec)
    return spec.labels


def stored(state_dir: Path, instance_id: str) -> tuple[list[str], list[str]]:
    """The instance's stored stdout and stderr texts, in order."""
    with Store.open(state_dir) as store:
        lines = store.logs.query(instance=instance_id, limit=None).lines
    return (
        [line.text for line in lines if line.stream == "stdout"],
        [line.text for line in lines if line.stream == "stderr"],
    )


def expected(count: int) -> tuple[list[str], list[str]]:
    return [f"out {i}" for i in range(count)], [f"err {i}" for i in range(0, count, 10)]


async def ship_until_complete(
    runtime: ProcessRuntime, state_dir: Path, labels: InstanceLabels
) -> None:
    async with LogShipper(runtime, state_dir, interval=0.02, batch_lines=64) as shipper:
        shipper.ship(labels)
        assert await shipper.finish(labels.instance_id, timeout=WAIT)
        assert shipper.shipping() == []


def test_every_line_of_a_real_process_is_stored_once_and_outlives_it(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    state_dir = tmp_path / "state"

    async def scenario() -> None:
        labels = await start_printer(runtime, app_root(tmp_path), "printer-1", count=700)
        await ship_until_complete(runtime, state_dir, labels)
        await runtime.remove(labels.instance_id)

    asyncio.run(scenario())
    assert stored(state_dir, "printer-1") == expected(700)
    with Store.open(state_dir) as store:
        cursor = store.logs.cursor("hello", "printer-1")
        line = store.logs.query(limit=1).lines[0]
    assert cursor.complete
    assert (line.app, line.release, line.process) == ("hello", "v1", "web")
    shown = run_cli(
        "logs", "--instance", "printer-1", "--grep", "out", "-n", "3", env=cli_env(state_dir)
    )
    assert shown.returncode == 0, shown.stderr
    assert [row.split(" | ")[1] for row in shown.stdout.splitlines()] == [
        "out 697",
        "out 698",
        "out 699",
    ]


def test_several_instances_ship_at_once(tmp_path: Path, runtime: ProcessRuntime) -> None:
    state_dir = tmp_path / "state"

    async def scenario() -> None:
        root = app_root(tmp_path)
        printers = [await start_printer(runtime, root, f"p-{n}", count=300) for n in range(3)]
        async with LogShipper(runtime, state_dir, interval=0.02, batch_lines=50) as shipper:
            for labels in printers:
                shipper.ship(labels)
            for labels in printers:
                assert await shipper.finish(labels.instance_id, timeout=WAIT)

    asyncio.run(scenario())
    for n in range(3):
        assert stored(state_dir, f"p-{n}") == expected(300)


def test_shipping_resumes_exactly_after_the_shipper_is_killed(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    """SIGKILL the shipping process three times while the instance prints: no loss, no dup."""
    state_dir, count = tmp_path / "state", 2000
    labels = asyncio.run(
        start_printer(runtime, app_root(tmp_path), "busy-1", count=count, pause=0.2)
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CHILD.parent.parent), *sys.path])}
    argv = [sys.executable, str(CHILD), str(state_dir), str(runtime.instances_dir.parent)]
    argv.append(json.dumps(asdict(labels)))
    seen = 0
    for kill in range(3):
        child = subprocess.Popen(argv, env=env)
        try:
            seen = wait_for_more_lines(state_dir, "busy-1", than=seen)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=WAIT)
        if kill == 0:
            assert seen < count + count // 10, "the first kill should land mid-stream"
    asyncio.run(ship_until_complete(runtime, state_dir, labels))
    assert stored(state_dir, "busy-1") == expected(count)


def wait_for_more_lines(state_dir: Path, instance_id: str, *, than: int) -> int:
    """How many lines are stored, once there are more than ``than`` (bounded in time)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if (state_dir / "state.db").exists():
            out, err = stored(state_dir, instance_id)
            if len(out) + len(err) > than:
                return len(out) + len(err)
        time.sleep(0.02)
    raise AssertionError(f"no new lines of {instance_id} within {WAIT}s")


def test_a_removed_instance_ends_its_task(tmp_path: Path, runtime: ProcessRuntime) -> None:
    state_dir = tmp_path / "state"

    async def scenario() -> None:
        labels = await start_printer(runtime, app_root(tmp_path), "gone-1", count=10, pause=30)
        await runtime.remove(labels.instance_id)
        async with LogShipper(runtime, state_dir, interval=0.02) as shipper:
            shipper.ship(labels)
            assert await shipper.finish(labels.instance_id, timeout=WAIT)

    asyncio.run(scenario())
    assert stored(state_dir, "gone-1") == ([], [])


def test_follow_and_flush_by_id_as_the_agent_destroys_instances(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    """Followed while it runs, or never followed (adopted after a restart): flush stores all."""
    state_dir = tmp_path / "state"

    async def scenario() -> None:
        root = app_root(tmp_path)
        # Prints 100 lines, then sleeps until stopped.
        followed = await start_printer(runtime, root, "followed-1", count=200, pause=30)
        adopted = await start_printer(runtime, root, "adopted-1", count=50)
        async with LogShipper(runtime, state_dir, interval=0.02) as shipper:
            shipper.follow(followed.instance_id)
            await asyncio.to_thread(wait_for_more_lines, state_dir, "followed-1", than=109)
            await wait_for_exit(runtime, adopted.instance_id)
            for instance_id in (followed.instance_id, adopted.instance_id):
                await runtime.stop(instance_id, grace=1)
                await shipper.flush(instance_id)
                await runtime.remove(instance_id)
            assert shipper.shipping() == []

    asyncio.run(scenario())
    assert stored(state_dir, "followed-1") == expected(100)
    assert stored(state_dir, "adopted-1") == expected(50)
