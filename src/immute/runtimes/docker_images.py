"""The Docker engine as a source of stacks: images looked up and saved through
the SDK, Dockerfiles built through the Docker CLI.

``docker build`` runs with BuildKit where the CLI has it (the ``buildx`` plugin,
or a CLI older than 23 that carries BuildKit itself), else with the classic
builder, which a newer CLI without ``buildx`` still offers. Either way the
build's epoch goes in as ``SOURCE_DATE_EPOCH`` (environment and build
argument), which BuildKit 0.11 and later apply to the image's timestamps. An
engine without a ``bridge`` network (``dockerd --bridge=none``, as CI runs it)
cannot give a BuildKit ``RUN`` step a network of its own, so there the build
uses the host's, as immute's containers do. The context is the Dockerfile's
own directory, with its ``.dockerignore``; immute's state directory must not be
in it, since the engine would be sent the image store on every build.
"""

from __future__ import annotations

import collections
import functools
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from immute.errors import EngineError, ImageError, failure_line
from immute.runtimes.docker import connect, engine_errors

if TYPE_CHECKING:
    from docker import DockerClient

BUILD_TIMEOUT = 3600
_CLI_VERSION = re.compile(r"version (\d+)\.")


class EngineImages:
    """The local engine's images; connects on first use, so a build whose stack
    is already in immute's store never needs an engine."""

    def __init__(self, *, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir

    @functools.cached_property
    def client(self) -> DockerClient:
        return connect()

    def close(self) -> None:
        client: DockerClient | None = self.__dict__.pop("client", None)
        if client is not None:
            client.close()

    def image_id(self, reference: str) -> str | None:
        from docker.errors import ImageNotFound, NullResource

        with engine_errors():
            try:
                return str(self.client.images.get(reference).id)
            except (ImageNotFound, NullResource):
                return None

    def save(self, image_id: str, out: Path) -> None:
        with engine_errors(), out.open("wb") as handle:
            for chunk in self.client.images.get(image_id).save(named=False):
                handle.write(chunk)

    def build(
        self, dockerfile: Path, *, context: Path, epoch: int, progress: Callable[[str], None]
    ) -> str:
        where = f"build.dockerfile {dockerfile}"
        if not dockerfile.is_file():
            raise ImageError(f"{where}: no such file")
        self._refuse_state_inside(context, where)
        docker = shutil.which("docker")
        if docker is None:
            raise ImageError(
                f"{where}: the docker CLI is not installed (apt-get install docker.io), "
                "or pin a base image in build.stack instead"
            )
        with tempfile.TemporaryDirectory(prefix="immute-docker-build-") as temp:
            iidfile = Path(temp) / "iid"
            argv = [docker, "build", "--force-rm", "--iidfile", str(iidfile)]
            argv += ["--file", str(dockerfile)]
            argv += ["--build-arg", f"SOURCE_DATE_EPOCH={epoch}"]
            buildkit = _has_buildkit(docker)
            if buildkit:
                argv.append("--progress=plain")
            if not self._has_bridge():
                argv += ["--network", "host"]
            env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
            env["DOCKER_BUILDKIT"] = "1" if buildkit else "0"
            _run_build([*argv, str(context)], env=env, where=where, progress=progress)
            return iidfile.read_text(encoding="utf-8").strip()

    def _has_bridge(self) -> bool:
        with engine_errors():
            return any(n.name == "bridge" for n in self.client.networks.list(names=["bridge"]))

    def _refuse_state_inside(self, context: Path, where: str) -> None:
        if self.state_dir is None:
            return
        try:
            inside = self.state_dir.resolve().relative_to(context.resolve())
        except ValueError:
            return
        ignored = _dockerignore(context)
        if inside.parts and inside.parts[0] not in ignored:
            raise ImageError(
                f"{where}: the build context {context} holds immute's state directory "
                f"{inside}; put the Dockerfile in a directory of its own (stack/Dockerfile) "
                f"or list {inside.parts[0]} in {context / '.dockerignore'}"
            )


def _dockerignore(context: Path) -> set[str]:
    try:
        lines = (context / ".dockerignore").read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    return {line.strip().strip("/") for line in lines if line.strip()}


def _has_buildkit(docker: str) -> bool:
    try:
        buildx = subprocess.run(
            [docker, "buildx", "version"], capture_output=True, check=False, timeout=60
        )
        if buildx.returncode == 0:
            return True
        version = subprocess.run(
            [docker, "--version"], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return False
    major = _CLI_VERSION.search(version.stdout)
    return major is not None and int(major.group(1)) < 23


def _run_build(
    argv: list[str], *, env: dict[str, str], where: str, progress: Callable[[str], None]
) -> None:
    """Run ``docker build``, its output to ``progress``; a failure is one line."""
    tail: collections.deque[str] = collections.deque(maxlen=20)
    try:
        child = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
        )
    except OSError as exc:
        raise ImageError(f"{where}: cannot run docker: {exc}") from None
    assert child.stdout is not None
    # Reading the output blocks until docker ends it: the limit kills a hung build.
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        child.kill()

    limit = threading.Timer(BUILD_TIMEOUT, kill)
    limit.start()
    with child:
        for line in child.stdout:
            text = line.rstrip()
            if text:
                tail.append(text)
                progress(f"docker build: {text}")
        returncode = child.wait()
    limit.cancel()
    if timed_out.is_set():
        raise ImageError(f"{where}: docker build did not finish within {BUILD_TIMEOUT} s")
    if returncode != 0:
        detail = failure_line("\n".join(tail))
        if "Cannot connect to the Docker daemon" in detail:
            raise EngineError(f"{where}: {detail}; start dockerd or set DOCKER_HOST")
        raise ImageError(f"{where}: docker build failed (exit {returncode}): {detail}")
