"""The per-instance shim of the process runtime, run as a script.

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

It imports only modules the interpreter has already loaded at start (no json,
no subprocess): every instance start pays for this script's start-up, and
under load those imports cost a tenth of a second.

Input on stdin, ``marshal``: a dict with ``dir``, ``argv``, ``cwd``, ``env``
(env holds secrets, so it travels through the pipe and is never written to
disk). Output on stdout, ``marshal``: a dict with ``pid``, ``start_ticks``,
``started_at``, ``shim_pid``, ``shim_start_ticks``, or with ``error``. Files
written into ``dir`` atomically, as JSON: ``pid.json`` (the same dict) and
``exit.json`` (``exit_code`` as 128 + N for signal N, ``exited_at``).
"""

from __future__ import annotations

import marshal
import os
import sys
import time

LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


def write_json_atomically(path: str, numbers: dict[str, float]) -> None:
    """Numbers only, so formatting them is all the JSON this needs.

    No fsync: these files only matter while this boot lasts (records from an
    earlier boot are void), and a crash of the kernel takes the instances too.
    """
    text = "{" + ", ".join(f'"{key}": {value!r}' for key, value in numbers.items()) + "}"
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def start_ticks(pid: int) -> int:
    fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    try:
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    return int(raw[raw.rindex(b")") + 2 :].split()[19])


def find_executable(command: str, env: dict[str, str]) -> str:
    """Resolve ``command`` on the instance's own PATH, as execvpe would."""
    if "/" in command:
        return command
    for directory in os.get_exec_path(env):
        candidate = os.path.join(directory, command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(2, "No such file or directory", command)


def spawn(launch: dict[str, object], argv: list[str], *, out: int, err: int) -> int:
    env = {str(k): str(v) for k, v in launch["env"].items()}  # type: ignore[attr-defined]
    os.chdir(str(launch["cwd"]))
    return os.posix_spawn(
        find_executable(argv[0], env),
        argv,
        env,
        file_actions=[(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, err, 2)],
        setsid=True,
    )


def run_instance(launch: dict[str, object], *, report_fd: int, out: int, err: int) -> None:
    """In the detached child: start the instance, report it, wait, record the exit."""
    directory = str(launch["dir"])
    argv = [str(arg) for arg in launch["argv"]]  # type: ignore[attr-defined]
    try:
        pid = spawn(launch, argv, out=out, err=err)
    except OSError as exc:
        error = f"{exc.strerror or exc}: {exc.filename or argv[0]}"
        os.write(report_fd, marshal.dumps({"error": error}))
        return
    os.close(out)
    os.close(err)
    started = {
        "pid": pid,
        "start_ticks": start_ticks(pid),
        "started_at": time.time(),
        "shim_pid": os.getpid(),
        "shim_start_ticks": start_ticks(os.getpid()),
    }
    write_json_atomically(os.path.join(directory, "pid.json"), started)
    os.write(report_fd, marshal.dumps(started))
    os.close(report_fd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    exited = {"exit_code": 128 - code if code < 0 else code, "exited_at": time.time()}
    write_json_atomically(os.path.join(directory, "exit.json"), exited)


def main() -> int:
    launch = marshal.loads(sys.stdin.buffer.read())
    directory = str(launch["dir"])
    out = os.open(os.path.join(directory, "stdout.log"), LOG_FLAGS, 0o600)
    err = os.open(os.path.join(directory, "stderr.log"), LOG_FLAGS, 0o600)
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        os.setsid()
        # Let go of the agent's pipes so it sees end-of-file when the first process exits;
        # the instance gets /dev/null as stdin from here too.
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
