"""Build an image without a daemon: stack, dependency layer, app layer, config.

Layers come in order of how rarely they change. Every byte is a function of the
inputs (see ``layer_tar`` and ``core.oci_image``), so the same inputs give the
same manifest digest in any directory, on any machine, at any time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from immute.core.oci_image import (
    LABEL_REVISION,
    LABEL_SPEC_DIGEST,
    LABEL_STACK,
    LABEL_STACK_DIGEST,
    MEDIA_CONFIG,
    MEDIA_LAYER_GZIP,
    Descriptor,
    ImageMetadata,
    build_epoch,
    image_config,
    image_manifest,
    rfc3339,
)
from immute.errors import ImageError
from immute.images.context import app_entries
from immute.images.dependencies import dependency_layer
from immute.images.inputs import (
    DEFAULT_PATH,
    DEPS_PREFIX,
    BuildInputs,
    BuildResult,
    LayerReport,
)
from immute.images.layer_tar import write_layer
from immute.images.stacks import Stack, StackEngine, resolve_stack
from immute.images.store import ImageStore

if TYPE_CHECKING:
    from immute.images.base_python import BasePython

_ARCHITECTURES = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def _no_progress(_: str) -> None:
    pass


def build(
    store: ImageStore,
    inputs: BuildInputs,
    *,
    progress: Callable[[str], None] = _no_progress,
    engine: StackEngine | None = None,
) -> BuildResult:
    """Build the image into the store and name it ``<app>:latest``; ``engine``
    supplies stacks that are not in the store yet (see ``stacks``)."""
    with store.writing():
        return _build(store, inputs, progress, engine)


def _build(
    store: ImageStore,
    inputs: BuildInputs,
    progress: Callable[[str], None],
    engine: StackEngine | None,
) -> BuildResult:
    revision, epoch, stack = _stack_at_head(store, inputs, engine=engine, progress=progress)
    progress(f"stack {stack.digest or inputs.stack}: {len(stack.layers)} base layer(s)")
    python = _python_of(store, stack) if inputs.dependency_files else None
    ours = _our_layers(store, inputs, epoch=epoch, progress=progress, python=python)
    with_deps = any(r.role == "dependencies" for r in ours)
    config = image_config(
        base=stack.config,
        metadata=_metadata(inputs, revision, with_deps=with_deps, stack=stack),
        diff_ids=[layer.diff_id for layer in ours],
        history=[f"immute {layer.role} layer" for layer in ours],
        created=rfc3339(epoch),
        architecture=_ARCHITECTURES.get(os.uname().machine, os.uname().machine),
    )
    config_desc = store.put_json(config)
    manifest = image_manifest(
        Descriptor(MEDIA_CONFIG, config_desc.digest, config_desc.size),
        [*stack.layers, *(Descriptor(MEDIA_LAYER_GZIP, r.digest, r.size) for r in ours)],
    )
    manifest_desc = store.put_json(manifest)
    name = f"{inputs.app}:latest"
    store.add_image(manifest_desc, name=name)
    progress(f"image {manifest_desc.digest} named {name}")
    reports = (*_stack_reports(stack), *ours)
    return BuildResult(
        manifest_desc.digest,
        config_desc.digest,
        name,
        reports,
        stack=inputs.stack,
        stack_digest=stack.digest,
        python=None if python is None else python.to_json(),
    )


def stack_python(
    store: ImageStore,
    inputs: BuildInputs,
    *,
    engine: StackEngine | None,
    progress: Callable[[str], None] = _no_progress,
) -> BasePython | None:
    """The Python of the stack ``inputs`` names (taken into the store as a build
    would); None on the host stack."""
    with store.writing():
        _, _, stack = _stack_at_head(store, inputs, engine=engine, progress=progress)
        return _python_of(store, stack)


def _stack_at_head(
    store: ImageStore,
    inputs: BuildInputs,
    *,
    engine: StackEngine | None,
    progress: Callable[[str], None],
) -> tuple[str | None, int, Stack]:
    """(source revision, build epoch, the stack resolved into the store)."""
    revision, commit_time = _git_head(inputs)
    epoch = _epoch(commit_time)
    stack = resolve_stack(store, inputs, engine=engine, epoch=epoch, progress=progress)
    return revision, epoch, stack


def _python_of(store: ImageStore, stack: Stack) -> BasePython | None:
    """The stack's Python; None on the host stack."""
    if stack.manifest is None:
        return None
    from immute.images.base_python import base_python  # reads tar layers: not for host

    return base_python(store, stack.manifest)


def _stack_reports(stack: Stack) -> list[LayerReport]:
    diff_ids = ((stack.config or {}).get("rootfs") or {}).get("diff_ids") or []
    return [
        LayerReport("stack", d.digest, str(diff_id), d.size, True)
        for d, diff_id in zip(stack.layers, diff_ids, strict=False)
    ]


def _our_layers(
    store: ImageStore,
    inputs: BuildInputs,
    *,
    epoch: int,
    progress: Callable[[str], None],
    python: BasePython | None,
) -> list[LayerReport]:
    """The dependency layer (cached or built; absent without dependency files),
    for the base's Python when ``python`` is given, and the app layer."""
    layers = []
    deps = dependency_layer(store, inputs, progress=progress, target=python)
    if deps is not None:
        state = "cached" if deps.cached else "built"
        progress(f"dependency layer {deps.blob.digest[:19]} ({state})")
        blob = deps.blob
        layers.append(
            LayerReport("dependencies", blob.digest, blob.diff_id, blob.size, deps.cached)
        )
    progress("app layer: collecting the build context")
    entries = app_entries(
        inputs.context,
        include=inputs.include,
        exclude=[*inputs.exclude, *_state_inside(store, inputs)],
        workdir=inputs.workdir,
        remember=store.root / "cache" / "context",
    )
    app = write_layer(store, entries, mtime=epoch)
    progress(f"app layer {app.digest[:19]} ({len(entries)} entries)")
    layers.append(LayerReport("app", app.digest, app.diff_id, app.size, False))
    return layers


def _state_inside(store: ImageStore, inputs: BuildInputs) -> list[str]:
    """An anchored pattern for the state directory when it lies inside the context
    (``$IMMUTE_STATE_DIR=./state``): the store must not end up in its own image."""
    state = store.root.resolve().parent
    try:
        rel = state.relative_to(inputs.context.resolve())
    except ValueError:
        return []
    return [f"/{rel.as_posix()}/"] if rel.parts else []


def _epoch(commit_time: int | None) -> int:
    try:
        return build_epoch(os.environ.get("SOURCE_DATE_EPOCH"), commit_time)
    except ValueError as exc:
        raise ImageError(str(exc)) from None


def _git_head(inputs: BuildInputs) -> tuple[str | None, int | None]:
    """(revision, commit time) of the context's repository, or Nones outside one."""
    if not _maybe_in_repository(inputs.context):
        return inputs.source_revision, None
    import subprocess

    argv = ["git", "-C", str(inputs.context), "log", "-1", "--format=%H %ct"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return inputs.source_revision, None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 2 or not parts[1].isdigit():
        return inputs.source_revision, None
    return inputs.source_revision or parts[0], int(parts[1])


def _maybe_in_repository(context: Path) -> bool:
    """False when git could not find a repository for ``context``: no ``$GIT_DIR``
    and neither a ``.git`` nor a bare repository in it or above it. Spares every
    build outside a repository the start of a git process."""
    if "GIT_DIR" in os.environ:
        return True
    here = context.resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return True
        if (directory / "HEAD").is_file() and (directory / "objects").is_dir():
            return True
    return False


def _metadata(
    inputs: BuildInputs, revision: str | None, *, with_deps: bool, stack: Stack
) -> ImageMetadata:
    base = stack.config
    env: dict[str, str] = {"PYTHONDONTWRITEBYTECODE": "1"}
    if with_deps:
        base_env = dict(
            e.partition("=")[::2] for e in ((base or {}).get("config") or {}).get("Env") or []
        )
        env["PYTHONPATH"] = f"/{DEPS_PREFIX}"
        env["PATH"] = f"/{DEPS_PREFIX}/bin:{base_env.get('PATH', DEFAULT_PATH)}"
    env.update(inputs.env)
    labels = {LABEL_STACK: inputs.stack, **inputs.labels}
    if stack.digest is not None:
        labels[LABEL_STACK_DIGEST] = stack.digest
    if revision:
        labels[LABEL_REVISION] = revision
    if inputs.spec_digest:
        labels[LABEL_SPEC_DIGEST] = inputs.spec_digest
    return ImageMetadata(
        workdir=inputs.workdir, env=env, processes=dict(inputs.processes), labels=labels
    )
