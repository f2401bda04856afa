"""OCI image documents as plain data: configs, manifests, indexes, docker-archive
manifests, and the choices that make a build reproducible (its timestamp, the
dependency cache key). Pure: every input, clock included, is passed in."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from immute.core.digests import digest_of

OCI_LAYOUT_VERSION = "1.0.0"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
LAYER_MEDIA_TYPES = frozenset(
    {MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR}
)
GZIP_LAYER_TYPES = frozenset({MEDIA_LAYER_GZIP, DOCKER_LAYER_GZIP})

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_STORED_AT = "dev.immute.stored-at"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_SPEC_DIGEST = "dev.immute.spec-digest"
LABEL_PROCESS_PREFIX = "dev.immute.process."
LABEL_STACK = "dev.immute.stack"
LABEL_STACK_DIGEST = "dev.immute.stack-digest"

# 1980-01-01: the oldest time every archive format (zip included) can hold, used
# when neither SOURCE_DATE_EPOCH nor a commit gives the build a time.
DEFAULT_EPOCH = 315_532_800

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class Descriptor(NamedTuple):
    """A pointer to a blob: what it is, its digest and its size in bytes."""

    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def is_digest(text: str) -> bool:
    """Whether ``text`` is a full ``sha256:<64 hex>`` digest."""
    return _DIGEST.fullmatch(text) is not None


def hex_of(digest: str) -> str:
    """The hex part of a digest; raises ValueError when it is not a sha256 digest."""
    if not is_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest.split(":", 1)[1]


def build_epoch(source_date_epoch: str | None, commit_time: int | None) -> int:
    """The one timestamp of a build: SOURCE_DATE_EPOCH, else the last commit's time,
    else a constant. Raises ValueError for a SOURCE_DATE_EPOCH that is not an integer."""
    if source_date_epoch:
        if not source_date_epoch.isdigit():
            raise ValueError(
                f"SOURCE_DATE_EPOCH must be a non-negative integer, got {source_date_epoch!r}"
            )
        return int(source_date_epoch)
    if commit_time is not None:
        return commit_time
    return DEFAULT_EPOCH


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dependency_key(
    *,
    files: Mapping[str, str],
    stack: str,
    interpreter: str,
    platform: str,
    installer: str,
    prefix: str,
) -> str:
    """Cache key of a dependency layer: what it depends on and nothing else (not the
    source code, not the time), so a code-only change reuses it."""
    return digest_of(
        {
            "files": dict(files),
            "stack": stack,
            "interpreter": interpreter,
            "platform": platform,
            "installer": installer,
            "prefix": prefix,
        }
    )


class ImageMetadata(NamedTuple):
    """What the config says about how to run the image."""

    workdir: str
    env: Mapping[str, str]
    processes: Mapping[str, Sequence[str]]
    labels: Mapping[str, str]


def default_process(processes: Mapping[str, Sequence[str]]) -> str | None:
    """The process a plain ``docker run`` starts: ``web`` if there is one, else the first."""
    if "web" in processes:
        return "web"
    return min(processes) if processes else None


def image_config(
    *,
    base: Mapping[str, Any] | None,
    metadata: ImageMetadata,
    diff_ids: Sequence[str],
    history: Sequence[str],
    created: str,
    architecture: str,
) -> dict[str, Any]:
    """The image config: the base's, extended with our layers, env, labels and command.

    ``history`` names each of our layers (its ``created_by``); the base's diff ids
    and history come first."""
    base = base or {}
    base_config = dict(base.get("config") or {})
    env = _merge_env(base_config.get("Env") or [], metadata.env)
    labels = {**(base_config.get("Labels") or {}), **metadata.labels}
    for name, argv in metadata.processes.items():
        labels[LABEL_PROCESS_PREFIX + name] = _argv_label(argv)
    config: dict[str, Any] = {**base_config, "Env": env, "WorkingDir": metadata.workdir}
    config["Labels"] = labels
    main = default_process(metadata.processes)
    if main is not None:
        config["Cmd"] = list(metadata.processes[main])
        config.pop("Entrypoint", None)
    base_diff_ids = list((base.get("rootfs") or {}).get("diff_ids") or [])
    base_history = list(base.get("history") or [])
    return {
        "architecture": base.get("architecture", architecture),
        "os": base.get("os", "linux"),
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": base_diff_ids + list(diff_ids)},
        "history": base_history + [{"created": created, "created_by": h} for h in history],
    }


def _argv_label(argv: Sequence[str]) -> str:
    return json.dumps(list(argv), separators=(",", ":"), ensure_ascii=False)


def _merge_env(base_env: Sequence[str], env: Mapping[str, str]) -> list[str]:
    merged: dict[str, str] = {}
    for item in base_env:
        name, _, value = item.partition("=")
        merged[name] = value
    merged.update(env)
    return [f"{name}={value}" for name, value in merged.items()]


def image_manifest(config: Descriptor, layers: Sequence[Descriptor]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }


def image_index(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": list(entries)}


def docker_archive_manifest(
    *, config_digest: str, layer_digests: Sequence[str], repo_tags: Sequence[str]
) -> list[dict[str, Any]]:
    """``manifest.json`` of a docker-archive whose files are the OCI layout's blobs."""
    return [
        {
            "Config": f"blobs/sha256/{hex_of(config_digest)}",
            "RepoTags": list(repo_tags),
            "Layers": [f"blobs/sha256/{hex_of(d)}" for d in layer_digests],
        }
    ]


def descriptor_from_json(value: Any, *, where: str) -> Descriptor:
    """Parse a descriptor; raises ValueError naming ``where`` when it is malformed."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(digest, str) or not is_digest(digest):
        raise ValueError(f"{where}: bad digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"{where}: bad size {size!r}")
    return Descriptor(media_type if isinstance(media_type, str) else "", digest, size)
