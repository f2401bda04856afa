"""The ``docker`` runtime: instances are containers on the local Docker engine.

The release's image goes from immute's store into the engine as our own export
(``docker load``); the engine's image ID must equal the image's config digest,
so a container never runs anything but the bytes immute holds. Containers run
with a read-only root, tmpfs at ``/tmp`` and the spec's scratch paths, no new
privileges, host networking (the instance listens on ``127.0.0.1:$PORT``), and
labels that say what they are: a restarted agent finds its containers by the
``immute.state`` label, whose value is this runtime's state directory, so two
apps on one engine never see each other's containers.

State directory: only ``exports/`` (temporary image tars while loading).
Volumes are created here but never removed: they outlive every release.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import math
import os
import re
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from immute.core.instances import (
    InstanceInfo,
    InstanceLabels,
    InstanceSpec,
    InstanceState,
    LogBatch,
    LogLine,
    LogStream,
    Mount,
)
from immute.errors import EngineError, ImageError, InstanceError, NotFoundError
from immute.runtimes.docker_follow import LogFollow, Stream
from immute.runtimes.docker_logs import LogCursor, parse_line

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
PREFIX = "immute."
STATE_LABEL = f"{PREFIX}state"
VOLUME_LABEL = f"{PREFIX}volume"
LABEL_FIELDS = ("instance_id", "app", "process", "release", "image_digest", "config_digest")
STREAMS: tuple[LogStream, LogStream] = ("stdout", "stderr")
ENGINE_TIMEOUT = 120
DEFAULT_HOST = "unix:///var/run/docker.sock"
T = TypeVar("T")


def connect() -> DockerClient:
    """A client of the engine that ``DOCKER_HOST`` (or the default socket) names.

    Raises ``EngineError`` saying how to start one when none answers."""
    import docker
    from docker.errors import DockerException

    host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        raise EngineError(
            f"no Docker engine socket at {host.removeprefix('unix://')}: start dockerd "
            "(`systemctl start docker` or `.ci/start-docker`) or set DOCKER_HOST"
        )
    client: DockerClient | None = None
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT)
        client.ping()
    except DockerException as exc:
        if client is not None:
            client.close()
        raise EngineError(
            "the Docker engine does not answer (is dockerd running? start it with "
            "`systemctl start docker` or `.ci/start-docker`, or set DOCKER_HOST): "
            f"{_first_line(exc)}"
        ) from None
    return client


class DockerRuntime:
    """Runs instances as containers; see the module docstring."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir).resolve()
        self._follows: dict[str, LogFollow] = {}
        # Reads run on worker threads, two readers (the shipper, a deploy's log
        # tail) may start a follow of one instance at once: one must win.
        self._follows_lock = threading.Lock()

    @functools.cached_property
    def client(self) -> DockerClient:
        """Connected on first use: an app that never runs a container needs no engine."""
        return connect()

    async def _call(self, work: Callable[[], T]) -> T:
        """Run blocking SDK work in a thread; engine failures become one-line errors."""

        def guarded() -> T:
            with engine_errors():
                return work()

        return await asyncio.to_thread(guarded)

    def _container(self, instance_id: str) -> Container | None:
        from docker.errors import NotFound

        _check_id(instance_id)
        # Under its name, or under the one earlier immute versions gave (without the
        # state directory's tag), so that containers they started are still found.
        for name in (container_name(self.state_dir, instance_id), f"immute-{instance_id}"):
            try:
                container = self.client.containers.get(name)
            except NotFound:
                continue
            if container.labels.get(STATE_LABEL) == str(self.state_dir):
                return container
        return None

    async def start(self, spec: InstanceSpec) -> InstanceInfo:
        _check_id(spec.instance_id)
        return await self._call(lambda: self._start(spec))

    def _start(self, spec: InstanceSpec) -> InstanceInfo:
        from docker.errors import APIError

        if self._container(spec.instance_id) is not None:
            raise InstanceError(f"instance {spec.instance_id} already exists")
        image_id = self._ensure_image(spec)
        for mount in spec.mounts:
            self._ensure_volume(mount, app=spec.labels.app)
        try:
            container = self.client.containers.create(image_id, **_run_options(spec, self))
        except APIError as exc:
            raise _refused(spec.instance_id, exc) from None
        try:
            container.start()
        except APIError as exc:
            with contextlib.suppress(APIError):
                container.remove(force=True)
            raise _refused(spec.instance_id, exc) from None
        container.reload()
        return _info(container)

    def _ensure_image(self, spec: InstanceSpec) -> str:
        """The engine's ID of the instance's image, loaded from our export if need be."""
        from docker.errors import ImageNotFound

        wanted = spec.image_id
        if not wanted.startswith("sha256:"):
            raise InstanceError(f"instance {spec.instance_id}: no image ID (config digest) given")
        try:
            found = str(self.client.images.get(wanted).id)
        except ImageNotFound:
            found = self._load(spec)
        if found != wanted:
            raise ImageError(
                f"the engine's image {found} is not {wanted} (the config of "
                f"{spec.labels.image_digest}): refusing to run it"
            )
        return wanted

    def _load(self, spec: InstanceSpec) -> str:
        if spec.image_export is None:
            raise ImageError(
                f"image {spec.labels.image_digest} is not in the Docker engine and "
                "nothing can export it: build or import it into immute's store"
            )
        exports = self.state_dir / "exports"
        exports.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=exports) as temp:
            tar = Path(temp) / "image.tar"
            spec.image_export(tar)
            with tar.open("rb") as handle:
                loaded = self.client.images.load(handle)
        ids = [str(image.id) for image in loaded]
        return ids[0] if len(ids) == 1 else ",".join(ids) or "(nothing)"

    def _ensure_volume(self, mount: Mount, *, app: str) -> None:
        from docker.errors import NotFound

        if mount.bind is not None:
            return
        try:
            self.client.volumes.get(mount.name)
        except NotFound:
            labels = {f"{PREFIX}app": app, VOLUME_LABEL: mount.name}
            self.client.volumes.create(mount.name, labels=labels)

    async def stop(self, instance_id: str, *, grace: float | None = None) -> None:
        await self._call(lambda: self._stop(instance_id, grace))

    def _stop(self, instance_id: str, grace: float | None) -> None:
        from docker.errors import NotFound

        container = self._container(instance_id)
        if container is None or container.status not in ("running", "restarting", "paused"):
            return
        if grace is None:
            grace = float(container.labels.get(f"{PREFIX}stop-grace", "10"))
        with contextlib.suppress(NotFound):
            container.stop(timeout=math.ceil(grace))
            container.wait(timeout=ENGINE_TIMEOUT)

    async def observe(self) -> list[InstanceInfo]:
        return await self._call(self._observe)

    def _observe(self) -> list[InstanceInfo]:
        # A container removed between the engine's list and its inspect is simply gone.
        found = self.client.containers.list(
            all=True, filters={"label": f"{STATE_LABEL}={self.state_dir}"}, ignore_removed=True
        )
        infos = [_info(c) for c in found if c.labels.get(STATE_LABEL) == str(self.state_dir)]
        return sorted(infos, key=lambda info: info.instance_id)

    async def read_logs(self, instance_id: str, *, cursor: str = "", limit: int = 1000) -> LogBatch:
        return await self._call(lambda: self._read_logs(instance_id, cursor, limit))

    def _read_logs(self, instance_id: str, cursor: str, limit: int) -> LogBatch:
        position = LogCursor.parse(cursor)
        follow = self._follows.get(instance_id)
        if follow is not None and follow.live and follow.covers(position):
            return follow.read(position, limit)
        container = self._container(instance_id)
        if container is None:
            raise NotFoundError(f"no instance {instance_id}")
        # Decided before reading: once it has exited, the engine holds everything it wrote.
        final = container.status in ("exited", "dead", "created")
        lines: list[LogLine] = []
        truncated = False
        for stream in STREAMS:
            raw = container.logs(
                stdout=stream == "stdout",
                stderr=stream == "stderr",
                timestamps=True,
                since=position.since(stream),
            )
            entries = map(parse_line, raw.decode(errors="replace").splitlines())
            truncated |= position.take(
                stream, entries, instance_id=instance_id, lines=lines, limit=limit
            )
        if not final:
            self._follow(container, instance_id, position)
        return LogBatch(tuple(lines), position.render(), complete=final and not truncated)

    def _follow(self, container: Container, instance_id: str, position: LogCursor) -> None:
        """Follow the container's streams from ``position`` for the reads to come."""
        from docker.errors import DockerException
        from requests.exceptions import RequestException

        def open_stream(stream: LogStream, since: float | None) -> Stream:
            opened: Stream = container.logs(
                stdout=stream == "stdout",
                stderr=stream == "stderr",
                timestamps=True,
                since=since,
                stream=True,
                follow=True,
            )
            return opened

        follow = LogFollow(instance_id, position, STREAMS)
        with self._follows_lock:
            self._unfollow(instance_id)
            try:
                follow.begin(open_stream)
            except (DockerException, RequestException):
                follow.close()  # the next read asks the engine again
                return
            self._follows[instance_id] = follow

    def _unfollow(self, instance_id: str) -> None:
        follow = self._follows.pop(instance_id, None)
        if follow is not None:
            follow.close()

    async def forget_images(self, image_ids: Collection[str]) -> list[str]:
        """Images a pruned release no longer needs go from the engine too; one a
        container still uses (or a tag elsewhere keeps) stays."""
        return await self._call(lambda: self._forget_images(image_ids))

    def _forget_images(self, image_ids: Collection[str]) -> list[str]:
        from docker.errors import APIError

        removed = []
        for image_id in sorted(image_ids):
            with contextlib.suppress(APIError):
                self.client.images.remove(image_id)
                removed.append(image_id)
        return removed

    async def remove(self, instance_id: str) -> None:
        await self._call(lambda: self._remove(instance_id))

    def _remove(self, instance_id: str) -> None:
        from docker.errors import NotFound

        self._stop(instance_id, None)
        with self._follows_lock:
            self._unfollow(instance_id)
        container = self._container(instance_id)
        if container is not None:
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=False)


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """SDK and transport failures inside as one-line ``EngineError``s; immute's own
    errors pass unchanged."""
    from docker.errors import APIError, DockerException
    from requests.exceptions import RequestException

    try:
        yield
    except APIError as exc:
        raise EngineError(f"the Docker engine refused: {_first_line(exc)}") from None
    except (DockerException, RequestException) as exc:
        raise EngineError(f"the Docker engine stopped answering: {_first_line(exc)}") from None


def container_name(state_dir: Path, instance_id: str) -> str:
    """Names are global on an engine: a tag of the state directory keeps two
    deployments of one app (two state directories, same instance ids) apart."""
    tag = hashlib.sha256(str(state_dir).encode()).hexdigest()[:8]
    return f"immute-{tag}-{instance_id}"


def _check_id(instance_id: str) -> None:
    if not INSTANCE_ID.fullmatch(instance_id):
        raise InstanceError(f"invalid instance id {instance_id!r}: use letters, digits, . _ -")


def _label_key(field_name: str) -> str:
    return PREFIX + field_name.replace("_", "-")


def _labels(spec: InstanceSpec, runtime: DockerRuntime) -> dict[str, str]:
    labels = {_label_key(name): getattr(spec.labels, name) for name in LABEL_FIELDS}
    labels[STATE_LABEL] = str(runtime.state_dir)
    labels[f"{PREFIX}stop-grace"] = repr(spec.stop_grace)
    labels[f"{PREFIX}port"] = "" if spec.port is None else str(spec.port)
    return labels


def _run_options(spec: InstanceSpec, runtime: DockerRuntime) -> dict[str, Any]:
    from docker.types import Mount as DockerMount

    env = dict(spec.env)
    if spec.port is not None:
        env["PORT"] = str(spec.port)
    tmpfs = {path: "rw,nosuid,nodev" for path in ("/tmp", *spec.scratch)}
    mounts = [
        DockerMount(
            target=m.path,
            source=m.bind or m.name,
            type="bind" if m.bind else "volume",
            read_only=m.read_only,
        )
        for m in spec.mounts
    ]
    options: dict[str, Any] = {
        "name": container_name(runtime.state_dir, spec.instance_id),
        "entrypoint": list(spec.argv[:1]),
        "command": list(spec.argv[1:]),
        "working_dir": spec.workdir,
        "environment": env,
        "labels": _labels(spec, runtime),
        "network_mode": "host",
        "read_only": True,
        "tmpfs": tmpfs,
        "mounts": mounts,
        "security_opt": ["no-new-privileges"],
        "stop_signal": "SIGTERM",
    }
    if spec.cpus is not None:
        options["nano_cpus"] = round(spec.cpus * 1e9)
    if spec.memory is not None:
        options["mem_limit"] = spec.memory
    return options


def _refused(instance_id: str, exc: Any) -> InstanceError:
    detail = _first_line(getattr(exc, "explanation", None) or exc)
    return InstanceError(f"cannot start instance {instance_id}: the engine refused: {detail}")


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__


def _info(container: Container) -> InstanceInfo:
    labels: Mapping[str, str] = container.labels
    state: dict[str, Any] = container.attrs.get("State") or {}
    running = bool(state.get("Running"))
    port = labels.get(f"{PREFIX}port", "")
    finished = _timestamp(state.get("FinishedAt"))
    return InstanceInfo(
        labels=InstanceLabels(**{name: labels.get(_label_key(name), "") for name in LABEL_FIELDS}),
        state=InstanceState.RUNNING if running else InstanceState.EXITED,
        handle=str(container.id),
        port=int(port) if port else None,
        started_at=_timestamp(state.get("StartedAt")) or 0.0,
        exited_at=None if running else finished,
        exit_code=None if running or finished is None else int(state.get("ExitCode", 0)),
    )


def _timestamp(value: object) -> float | None:
    """Seconds since the epoch of an engine time (RFC 3339, nanoseconds); None for zero."""
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    head, _, fraction = value.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    digits = "".join(ch for ch in fraction if ch.isdigit())
    return seconds + (int(digits) / 10 ** len(digits) if digits else 0.0)
