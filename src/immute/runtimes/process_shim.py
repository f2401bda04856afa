"""The per-instance shim of the process runtime, run as a script, stdlib only.

Why a shim: an instance must outlive the agent that started it, and its exit
status must not be lost when nobody is watching. The agent runs this script;
it forks a child that detaches into its own session and becomes the parent of
the instance (as containerd's shim does for containers). The first process
reports the instance's pid and exits, so the agent never has the instance as a
child. The detached shim waits for the instance and writes its exit status.

The instance's stdout and stderr go straight to two append-only files in the
instance's state directory, opened here and inherited by the instance: the
kernel holds them, so output is kept whether or not the agent or even the shim
is alive, and the agent reads them at its own pace with byte-offset cursors.

Input on stdin, JSON: ``dir``, ``argv``, ``cwd``, ``env`` (env holds secrets, so
it travels through the pipe and is never written to disk). Output on stdout,
JSON: ``pid``, ``start_ticks``, ``started_at``, ``shim_pid``,
``shim_start_ticks``, or ``error``. Files written into
``dir`` atomically: ``pid.json`` (as reported) and ``exit.json``
(``exit_code`` as 128 + N for signal N, ``exited_at``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


@dataclass(frozen=True)
class Launch:
    directory: str
    argv: list[str]
    cwd: str
    env: dict[str, str]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Launch:
        return cls(
            directory=str(raw["dir"]),
            argv=[str(arg) for arg in raw["argv"]],
            cwd=str(raw["cwd"]),
            env={str(key): str(value) for key, value in raw["env"].items()},
        )


def write_json_atomically(path: str, value: Mapping[str, object]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def start_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    return int(raw[raw.rindex(b")") + 2 :].split()[19])


def run_instance(launch: Launch, *, report_fd: int, out: int, err: int) -> None:
    """In the detached child: start the instance, report it, wait, record the exit."""
    try:
        proc = subprocess.Popen(
            launch.argv,
            cwd=launch.cwd,
            env=launch.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    except OSError as exc:
        report = {"error": f"{exc.strerror or exc}: {exc.filename or launch.argv[0]}"}
        os.write(report_fd, json.dumps(report).encode())
        return
    os.close(out)
    os.close(err)
    started = {
        "pid": proc.pid,
        "start_ticks": start_ticks(proc.pid),
        "started_at": time.time(),
        "shim_pid": os.getpid(),
        "shim_start_ticks": start_ticks(os.getpid()),
    }
    write_json_atomically(os.path.join(launch.directory, "pid.json"), started)
    os.write(report_fd, json.dumps(started).encode())
    os.close(report_fd)
    code = proc.wait()
    exited = {"exit_code": 128 - code if code < 0 else code, "exited_at": time.time()}
    write_json_atomically(os.path.join(launch.directory, "exit.json"), exited)


def main() -> int:
    launch = Launch.parse(json.loads(sys.stdin.buffer.read()))
    out = os.open(os.path.join(launch.directory, "stdout.log"), LOG_FLAGS, 0o600)
    err = os.open(os.path.join(launch.directory, "stderr.log"), LOG_FLAGS, 0o600)
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        os.setsid()
        # Let go of the agent's pipes so it sees end-of-file when the first process exits.
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        try:
            run_instance(launch, report_fd=write_end, out=out, err=err)
        finally:
            os._exit(0)
    os.close(write_end)
    os.close(out)
    os.close(err)
    with os.fdopen(read_end, "rb") as report:
        answer = report.read()
    sys.stdout.buffer.write(answer)
    return 0 if answer else 1


if __name__ == "__main__":
    sys.exit(main())
