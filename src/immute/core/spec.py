"""The spec: ``immute.yaml``, the version-controlled desired state of one app.

One set of pydantic models is the single source of the file's validation, its
JSON Schema (``immute schema``) and the README's configuration reference.
Cross-field rules that pydantic cannot place on one key live in ``spec_rules``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from immute.core.spec_types import (
    AbsolutePath,
    Command,
    CountOrPercent,
    Duration,
    EnvName,
    EnvValue,
    Name,
    Percent,
    Size,
    fail,
)
from immute.core.wording import shown

RUNTIMES = ("process", "docker")
STRATEGIES = ("rolling", "blue-green", "canary", "recreate")


class Model(BaseModel):
    """Strict, closed, immutable: YAML types are taken as written, unknown keys fail."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Build(Model):
    """How the app's image is built."""

    context: str = Field(
        ".", description="Directory, relative to the spec, whose files form the app layer."
    )
    include: list[str] = Field(
        default_factory=list,
        description="Glob patterns of files to include (default: everything not excluded).",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns to leave out, on top of `.gitignore` and `.immuteignore`.",
    )
    dependencies: list[str] = Field(
        default_factory=list,
        description="Dependency inputs installed into the dependency layer, such as "
        "`requirements.txt` or `pyproject.toml` (default: whichever of those exists).",
    )
    stack: str = Field(
        "host",
        description="`host` (this machine's OS and Python, for the process runtime) or a "
        "base image pinned by digest, `sha256:...` or `name@sha256:...`: the manifest digest "
        "of an image in immute's store, or a config digest, which is the Docker engine's "
        "image ID (an image only the engine has is saved from it and imported into the "
        "store, and must match). Dependencies are installed for the base's own Python.",
    )
    dockerfile: str | None = Field(
        None,
        description="A Dockerfile, relative to the spec, that builds the stack instead: "
        "`docker build` (BuildKit where available, with `SOURCE_DATE_EPOCH`) with the "
        "Dockerfile's directory as context, the result imported into immute's store by digest.",
    )
    workdir: AbsolutePath = Field("/app", description="Where the app layer lives in the image.")


class Check(Model):
    """A probe: exactly one of `http`, `tcp` or `command`."""

    http: str | None = Field(None, description="HTTP path to GET; 2xx or 3xx passes.")
    tcp: bool | None = Field(None, description="`true`: a TCP connect to the port passes.")
    command: Command | None = Field(None, description="Command run in the instance; exit 0 passes.")
    interval: Duration = Field(1000, description="Time between probes.")
    timeout: Duration = Field(1000, description="How long one probe may take.")
    healthy_threshold: int = Field(1, ge=1, description="Passes in a row that make it healthy.")
    unhealthy_threshold: int = Field(
        3, ge=1, description="Failures in a row that make it unhealthy."
    )

    @field_validator("http")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise fail(f'expected a path starting with "/", got {shown(value)}')
        return value

    def probe_kinds(self) -> list[str]:
        return [k for k in ("http", "tcp", "command") if getattr(self, k) not in (None, False)]


class Readiness(Check):
    """When a new instance may take traffic."""

    interval: Duration = Field(200, description="Time between probes.")
    healthy_threshold: int = Field(2, ge=1, description="Passes in a row that make it ready.")
    min_uptime: Duration = Field(
        1000,
        description="For processes with no probe (workers): ready once up this long.",
    )


class Liveness(Check):
    """When a running instance is replaced because it stopped answering."""

    interval: Duration = Field(10_000, description="Time between probes.")


class Health(Model):
    readiness: Readiness = Field(
        default_factory=Readiness,
        description="Readiness probe (default: TCP connect for routed processes, "
        "`min_uptime` for others).",
    )
    liveness: Liveness | None = Field(None, description="Liveness probe (default: none).")


class Resources(Model):
    cpus: float | None = Field(None, gt=0, description="CPU limit, in cores (docker runtime).")
    memory: Size | None = Field(None, description='Memory limit such as "256Mi" (docker runtime).')


class Process(Model):
    """One process type, like a Procfile line."""

    command: Command = Field(description="Command line, as a string or an argv list.")
    instances: int = Field(1, ge=0, description="How many instances run.")
    routed: bool | None = Field(
        None,
        description="Whether the router sends HTTP to it on `$PORT` (default: only for `web`).",
    )
    hosts: list[str] = Field(
        default_factory=list,
        description="Host names routed to it when several apps share a listener (default: any).",
    )
    health: Health = Field(default_factory=Health, description="Readiness and liveness probes.")
    grace: Duration = Field(10_000, description="Time between SIGTERM and SIGKILL on stop.")
    resources: Resources = Field(default_factory=Resources, description="Resource limits.")


class CanaryStep(Model):
    weight: Percent = Field(description='Share of requests sent to the new release, like "10%".')
    pause: Duration = Field(30_000, description="How long to hold this weight, analysing.")


class Analysis(Model):
    """Automatic canary analysis from the router's own metrics."""

    max_error_rate: Percent = Field("1%", description="Highest 5xx rate of the canary.")
    max_p99_ratio: float = Field(
        2.0, gt=0, description="Highest canary p99 latency as a multiple of the stable one."
    )
    min_requests: int = Field(20, ge=0, description="Requests needed before judging a step.")


class Sticky(Model):
    """Keep one user on one release during a canary."""

    cookie: str | None = Field(None, description="Cookie whose value picks the release.")
    header: str | None = Field(None, description="Header whose value picks the release.")


class Strategy(Model):
    """How a new release replaces the running one."""

    type: Literal["rolling", "blue-green", "canary", "recreate"] = Field(
        "rolling", description="`rolling`, `blue-green`, `canary` or `recreate`."
    )
    max_surge: CountOrPercent | None = Field(
        None, description='rolling: extra instances allowed during the rollout (default "25%").'
    )
    max_unavailable: CountOrPercent | None = Field(
        None, description="rolling: instances that may be missing during the rollout (default 0)."
    )
    standby: Duration | None = Field(
        None, description='blue-green: how long the previous set stays up for rollback ("10m").'
    )
    steps: list[CanaryStep] | None = Field(
        None, description="canary: traffic weights and pauses (default 10% then 50%, 30s each)."
    )
    analysis: Analysis | None = Field(None, description="canary: automatic analysis thresholds.")
    sticky: Sticky | None = Field(
        None, description="canary: route by cookie or header, not by request."
    )
    progress_deadline: Duration = Field(600_000, description="Longest time any one step may take.")
    bake: Duration = Field(
        0, description="How long the previous release stays ready after a deploy."
    )


class Volume(Model):
    """State that outlives every release."""

    path: AbsolutePath = Field(description="Where the volume is mounted inside instances.")
    bind: AbsolutePath | None = Field(
        None, description="A host directory to bind instead of a named volume."
    )
    read_only: bool = Field(False, description="Mount read-only.")
    processes: list[str] = Field(
        default_factory=list, description="Process types that mount it (default: all)."
    )


class Retain(Model):
    """Retention: what is kept after each deploy."""

    releases: int = Field(20, ge=1, description="Releases kept in history.")
    images: int = Field(10, ge=1, description="Images of the most recent releases kept.")
    logs: Duration = Field(7 * 86_400_000, description="How long logs are kept.")


class Router(Model):
    listen: str = Field(
        "127.0.0.1:8080",
        description="Address the router listens on, HOST:PORT. A change (like one of `hold`) "
        "applies at the next deploy: a new router process takes over the routes while the "
        "old one finishes its in-flight requests.",
    )
    hold: Duration = Field(
        10_000, description="How long a request waits for a ready instance before a 503."
    )
    drain: Duration = Field(30_000, description="How long in-flight requests may finish on drain.")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise fail(f'expected HOST:PORT like "127.0.0.1:8080", got {shown(value)}')
        return value


class Spec(Model):
    """The whole desired state of one app."""

    app: Name = Field(description="The app's name: lowercase letters, digits and '-'.")
    build: Build = Field(default_factory=Build, description="How the image is built.")
    processes: dict[Name, Process] = Field(
        min_length=1, description="Process types by name (`web`, `worker`...)."
    )
    strategy: Strategy = Field(
        default_factory=Strategy, description="How releases replace each other."
    )
    env: dict[EnvName, EnvValue] = Field(
        default_factory=dict, description="Plain environment variables for every process."
    )
    secrets: list[EnvName] = Field(
        default_factory=list,
        description="Names of secret variables; values come from the environment or "
        "`secrets_file` at deploy time, never from the spec.",
    )
    secrets_file: str | None = Field(
        None, description="A KEY=VALUE file outside the repository holding secret values."
    )
    volumes: dict[Name, Volume] = Field(default_factory=dict, description="Persistent volumes.")
    scratch: list[AbsolutePath] = Field(
        default_factory=list, description="Writable scratch paths (tmpfs) besides /tmp."
    )
    release_command: Command | None = Field(
        None, description="Runs once from the new image before it takes traffic (migrations)."
    )
    retain: Retain = Field(default_factory=Retain, description="Retention.")
    runtime: Literal["process", "docker"] = Field(
        "process", description="Where instances run: `process` or `docker`."
    )
    router: Router = Field(default_factory=Router, description="The router in front of the app.")

    @field_validator("secrets", mode="before")
    @classmethod
    def _no_values(cls, value: object) -> object:
        if isinstance(value, dict):
            raise fail(
                "secret values never go in the spec: list only their names; values come "
                "from the environment or secrets_file at deploy time"
            )
        return value
