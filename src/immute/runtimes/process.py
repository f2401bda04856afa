"""The ``process`` runtime: instances are processes on this machine (the host stack).

Layout of the state directory, one folder per instance::

    instances/<id>/record.json   labels, port, argv, grace, boot id (written before start)
    instances/<id>/pid.json      pid + start ticks of the instance and of its shim
    instances/<id>/exit.json     exit code and time, written by the shim
    instances/<id>/stdout.log    what the instance wrote, append-only
    instances/<id>/stderr.log

Every instance runs under a detached shim (see ``process_shim``) in its own
session and process group, so it outlives the agent and the shim records its
exit. Environment values are never written to disk: they hold secrets.
"""

from __future__ import annotations

import asyncio
import json
import marshal
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from immute.core.instances import (
    InstanceInfo,
    InstanceLabels,
    InstanceSpec,
    InstanceState,
    LogBatch,
    LogLine,
    LogStream,
)
from immute.errors import InstanceError, NotFoundError
from immute.runtimes import procfs
from immute.runtimes.log_files import read_lines

SHIM = Path(__file__).with_name("process_shim.py")
INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
SHIM_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0
SETTLE_TIMEOUT = 2.0
POLL = 0.02
STREAMS: tuple[LogStream, LogStream] = ("stdout", "stderr")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return value


def _write_json_atomically(path: Path, value: Mapping[str, object]) -> None:
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


async def _wait_until(condition_met: Callable[[], bool], *, timeout: float) -> bool:
    """Poll ``condition_met()`` until true or ``timeout`` seconds pass; returns the last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition_met():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL)
    return True


class ProcessRuntime:
    """Runs instances as detached local processes; see the module docstring."""

    def __init__(self, state_dir: Path) -> None:
        self.instances_dir = Path(state_dir) / "instances"

    def _dir(self, instance_id: str) -> Path:
        if not INSTANCE_ID.fullmatch(instance_id):
            raise InstanceError(f"invalid instance id {instance_id!r}: use letters, digits, . _ -")
        return self.instances_dir / instance_id

    async def start(self, spec: InstanceSpec) -> InstanceInfo:
        directory = self._dir(spec.instance_id)
        cwd = _working_directory(spec)
        self.instances_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            raise InstanceError(f"instance {spec.instance_id} already exists") from None
        _write_json_atomically(directory / "record.json", _record(spec))
        env = dict(spec.env)
        if spec.port is not None:
            env["PORT"] = str(spec.port)
        launch = {"dir": str(directory), "argv": list(spec.argv), "cwd": str(cwd), "env": env}
        report = await _run_shim(marshal.dumps(launch))
        if "error" in report:
            shutil.rmtree(directory, ignore_errors=True)
            raise InstanceError(f"cannot start instance {spec.instance_id}: {report['error']}")
        return self._info(directory)

    async def stop(self, instance_id: str, *, grace: float | None = None) -> None:
        directory = self._dir(instance_id)
        record = _read_json(directory / "record.json")
        started = _read_json(directory / "pid.json")
        if record is None or started is None or not self._running(directory):
            return
        pgid = int(started["pid"])
        grace = float(record["stop_grace"]) if grace is None else grace
        gone = await self._signal_and_wait(pgid, signal.SIGTERM, timeout=grace)
        if not gone and not await self._signal_and_wait(pgid, signal.SIGKILL, timeout=KILL_TIMEOUT):
            raise InstanceError(f"instance {instance_id} (pid {pgid}) survived SIGKILL")
        await self._settle(directory)

    async def _settle(self, directory: Path) -> None:
        """Wait for the shim to record the exit of an instance that just ended.

        Between the instance's end and the shim's write of ``exit.json`` lies a
        moment when only the shim knows the status; waiting it out means callers
        see an exit code rather than "unknown".
        """
        started = _read_json(directory / "pid.json")
        if started is None or (directory / "exit.json").exists() or self._running(directory):
            return
        shim_pid, shim_ticks = int(started["shim_pid"]), int(started["shim_start_ticks"])
        await _wait_until(
            lambda: not procfs.is_running(shim_pid, shim_ticks), timeout=SETTLE_TIMEOUT
        )

    @staticmethod
    async def _signal_and_wait(pgid: int, signum: signal.Signals, *, timeout: float) -> bool:
        """Signal the whole process group; True once none of its processes is left."""
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            return True
        return await _wait_until(lambda: not procfs.live_group_members(pgid), timeout=timeout)

    async def observe(self) -> list[InstanceInfo]:
        if not self.instances_dir.is_dir():
            return []
        found = sorted(d for d in self.instances_dir.iterdir() if (d / "record.json").exists())
        for directory in found:
            await self._settle(directory)
        return [self._info(directory) for directory in found]

    async def read_logs(self, instance_id: str, *, cursor: str = "", limit: int = 1000) -> LogBatch:
        directory = self._dir(instance_id)
        if not (directory / "record.json").exists():
            raise NotFoundError(f"no instance {instance_id}")
        offsets = _parse_cursor(cursor)
        # Decided before reading: if it had exited, everything it wrote is on disk now.
        final = not self._running(directory)
        lines: list[LogLine] = []
        at_end = True
        now = time.time()
        for index, stream in enumerate(STREAMS):
            read = read_lines(
                directory / f"{stream}.log", offsets[index], limit=limit - len(lines), final=final
            )
            lines += [LogLine(instance_id, stream, text, at=now) for text in read.lines]
            offsets[index] = read.offset
            at_end = at_end and read.at_end
        return LogBatch(tuple(lines), f"{offsets[0]}:{offsets[1]}", complete=final and at_end)

    async def remove(self, instance_id: str) -> None:
        await self.stop(instance_id)
        shutil.rmtree(self._dir(instance_id), ignore_errors=True)

    def _running(self, directory: Path) -> bool:
        record = _read_json(directory / "record.json")
        started = _read_json(directory / "pid.json")
        if record is None or started is None or (directory / "exit.json").exists():
            return False
        return record["boot_id"] == procfs.boot_id() and procfs.is_running(
            int(started["pid"]), int(started["start_ticks"])
        )

    def _info(self, directory: Path) -> InstanceInfo:
        record = _read_json(directory / "record.json")
        if record is None:
            raise NotFoundError(f"no instance {directory.name}")
        started = _read_json(directory / "pid.json") or {}
        running = self._running(directory)
        exited = _read_json(directory / "exit.json") or {}
        return InstanceInfo(
            labels=InstanceLabels(**record["labels"]),
            state=InstanceState.RUNNING if running else InstanceState.EXITED,
            handle=str(started.get("pid", "")),
            port=record["port"],
            started_at=float(started.get("started_at", record["created_at"])),
            exited_at=exited.get("exited_at"),
            exit_code=exited.get("exit_code"),
        )


def _working_directory(spec: InstanceSpec) -> Path:
    """``workdir`` inside the materialised root; it must exist and stay inside it."""
    root = Path(spec.root_dir).resolve()
    cwd = (root / spec.workdir.lstrip("/")).resolve()
    if not cwd.is_relative_to(root):
        raise InstanceError(f"working directory {spec.workdir!r} leaves the image root")
    if not cwd.is_dir():
        raise InstanceError(f"working directory {spec.workdir!r} does not exist in {root}")
    return cwd


def _record(spec: InstanceSpec) -> dict[str, object]:
    return {
        "labels": asdict(spec.labels),
        "port": spec.port,
        "argv": list(spec.argv),
        "root_dir": str(spec.root_dir),
        "workdir": spec.workdir,
        "env_names": sorted(spec.env),
        "stop_grace": spec.stop_grace,
        "boot_id": procfs.boot_id(),
        "created_at": time.time(),
    }


async def _run_shim(launch: bytes) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        str(SHIM),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(launch), SHIM_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"error": "the process shim did not answer"}
    if not out:
        return {"error": f"the process shim failed: {err.decode(errors='replace').strip()[-200:]}"}
    report: dict[str, Any] = marshal.loads(out)
    return report


def _parse_cursor(cursor: str) -> list[int]:
    if not cursor:
        return [0, 0]
    out, sep, err = cursor.partition(":")
    if not (sep and out.isdigit() and err.isdigit()):
        raise InstanceError(f"invalid log cursor {cursor!r}")
    return [int(out), int(err)]
