"""Rules that span several keys, and the normalisation that fills in defaults
which depend on other keys (the strategy's type, a process's name).

``check`` returns every problem as ``(path, message)``; ``normalise`` is
idempotent, so a normalised spec dumped and loaded again has the same digest.
"""

from __future__ import annotations

import posixpath
import re

from immute.core.quantities import parse_count_or_percent
from immute.core.spec import Analysis, CanaryStep, Check, Process, Spec, Strategy
from immute.core.wording import shown
from immute.core.yaml_source import Path

Problem = tuple[Path, str]

_ONLY_FOR = {
    "max_surge": "rolling",
    "max_unavailable": "rolling",
    "standby": "blue-green",
    "steps": "canary",
    "analysis": "canary",
    "sticky": "canary",
}
_SECRET_LIKE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
_NOT_A_VALUE = re.compile(r"_(FILE|PATH|NAME|ID|URL_ENV)$", re.I)


def check(spec: Spec, *, repository: str | None = None) -> list[Problem]:
    """Every cross-key problem of a structurally valid spec.

    ``repository`` is the absolute directory of the spec, used to refuse a secrets
    file kept inside it (where it would end up under version control).
    """
    return [
        *_check_strategy(spec.strategy),
        *_check_processes(spec),
        *_check_env_and_secrets(spec),
        *_check_secrets_file(spec.secrets_file, repository),
        *_check_volumes(spec),
        *_check_build(spec),
    ]


def _check_strategy(strategy: Strategy) -> list[Problem]:
    problems: list[Problem] = []
    for key, owner in _ONLY_FOR.items():
        if getattr(strategy, key) is not None and strategy.type != owner:
            message = f'applies only to the "{owner}" strategy, not "{strategy.type}"'
            problems.append((("strategy", key), message))
    if (
        strategy.type == "rolling"
        and _is_zero(strategy.max_surge)
        and _is_zero(strategy.max_unavailable)
    ):
        message = "max_surge and max_unavailable cannot both be 0: the rollout could never progress"
        problems.append((("strategy", "max_surge"), message))
    previous = 0.0
    for index, step in enumerate(strategy.steps or []):
        weight = float(step.weight[:-1])
        if not previous < weight < 100:
            message = (
                f"weights must rise step by step and stay below 100%, got {shown(step.weight)}"
            )
            problems.append((("strategy", "steps", index, "weight"), message))
        previous = max(previous, weight)
    if strategy.sticky is not None and (strategy.sticky.cookie is None) == (
        strategy.sticky.header is None
    ):
        problems.append((("strategy", "sticky"), "set exactly one of cookie or header"))
    return problems


def _is_zero(value: int | str | None) -> bool:
    return value is not None and parse_count_or_percent(value) in (0, "0%")


def _check_processes(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    catch_all = []
    hosts_seen: dict[str, str] = {}
    for name, process in spec.processes.items():
        here: Path = ("processes", name)
        routed = _routed(name, process)
        for kind, probe in (
            ("readiness", process.health.readiness),
            ("liveness", process.health.liveness),
        ):
            problems += _check_probe(
                probe, (*here, "health", kind), routed=routed, required=kind == "liveness"
            )
        if routed and not process.hosts:
            catch_all.append(name)
        if process.hosts and not routed:
            problems.append(((*here, "hosts"), "only routed processes have hosts"))
        for index, host in enumerate(process.hosts):
            if host in hosts_seen:
                problems.append(
                    (
                        (*here, "hosts", index),
                        f"{shown(host)} is routed to {hosts_seen[host]} already",
                    )
                )
            hosts_seen.setdefault(host, name)
    for name in catch_all[1:]:
        message = (
            f"only one routed process can take every host ({catch_all[0]} does); give it hosts"
        )
        problems.append((("processes", name, "routed"), message))
    return problems


def _check_probe(probe: Check | None, path: Path, *, routed: bool, required: bool) -> list[Problem]:
    if probe is None:
        return []
    kinds = probe.probe_kinds()
    if len(kinds) > 1:
        return [(path, f"set one probe, not {' and '.join(kinds)}")]
    if required and not kinds:
        return [(path, "set one probe: http, tcp or command")]
    if kinds and kinds[0] in ("http", "tcp") and not routed:
        return [((*path, kinds[0]), "needs a routed process: this one has no port")]
    return []


def _check_env_and_secrets(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    for key in spec.env:
        if _SECRET_LIKE.search(key) and not _NOT_A_VALUE.search(key):
            message = (
                f"looks like a secret: list {key} under secrets and give its value at deploy time"
            )
            problems.append((("env", key), message))
    seen: set[str] = set()
    for index, name in enumerate(spec.secrets):
        if name in seen:
            problems.append((("secrets", index), f"{name} is listed twice"))
        if name in spec.env:
            problems.append((("secrets", index), f"{name} is also set in env"))
        seen.add(name)
    return problems


def _check_secrets_file(secrets_file: str | None, repository: str | None) -> list[Problem]:
    if secrets_file is None or secrets_file.startswith("~/"):
        return []
    if not secrets_file.startswith("/"):
        return [(("secrets_file",), "give an absolute path or ~/..., outside the repository")]
    inside = (
        repository is not None and posixpath.commonpath([secrets_file, repository]) == repository
    )
    if inside:
        return [
            (("secrets_file",), "must live outside the repository, where it cannot be committed")
        ]
    return []


def _check_volumes(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    paths: dict[str, str] = {}
    for name, volume in spec.volumes.items():
        if volume.path in paths:
            message = f"{volume.path} is mounted by volume {paths[volume.path]} already"
            problems.append((("volumes", name, "path"), message))
        paths.setdefault(volume.path, name)
        for index, process in enumerate(volume.processes):
            if process not in spec.processes:
                known = ", ".join(spec.processes)
                message = f"no process named {shown(process)} (processes: {known})"
                problems.append((("volumes", name, "processes", index), message))
    return problems


def _check_build(spec: Spec) -> list[Problem]:
    if spec.build.dockerfile is not None and spec.build.stack != "host":
        return [(("build", "dockerfile"), "set either a stack image or a dockerfile, not both")]
    if spec.runtime == "process" and (spec.build.stack != "host" or spec.build.dockerfile):
        key = "stack" if spec.build.stack != "host" else "dockerfile"
        message = "the process runtime runs on the host stack; use runtime: docker for a base image"
        return [(("build", key), message)]
    if spec.runtime == "docker" and spec.build.stack == "host" and spec.build.dockerfile is None:
        message = (
            "the docker runtime needs a base image with Python: set build.stack "
            "(name@sha256:...) or build.dockerfile"
        )
        return [(("build", "stack"), message)]
    return []


def _routed(name: str, process: Process) -> bool:
    return process.routed if process.routed is not None else name == "web"


def normalise(spec: Spec) -> Spec:
    """Fill in the defaults that depend on other keys; idempotent."""
    processes = {name: _normalise_process(name, p) for name, p in spec.processes.items()}
    return spec.model_copy(
        update={"processes": processes, "strategy": _normalise_strategy(spec.strategy)}
    )


def _normalise_process(name: str, process: Process) -> Process:
    routed = _routed(name, process)
    readiness = process.health.readiness
    if routed and not readiness.probe_kinds():
        readiness = readiness.model_copy(update={"tcp": True})
    health = process.health.model_copy(update={"readiness": readiness})
    return process.model_copy(update={"routed": routed, "health": health})


def _normalise_strategy(strategy: Strategy) -> Strategy:
    defaults: dict[str, object] = {}
    if strategy.type == "rolling":
        defaults = {"max_surge": "25%", "max_unavailable": 0}
    elif strategy.type == "blue-green":
        defaults = {"standby": 600_000}
    elif strategy.type == "canary":
        steps = [CanaryStep.model_validate({"weight": w, "pause": "30s"}) for w in ("10%", "50%")]
        defaults = {"steps": steps, "analysis": Analysis()}
    update = {k: v for k, v in defaults.items() if getattr(strategy, k) is None}
    return strategy.model_copy(update=update)
