"""The spec mapped to build inputs, with the validated result cached.

A warm rebuild should not pay for importing pydantic and validating a spec that
has not changed: the fields the build needs are cached in the state directory,
keyed by the spec files' paths and bytes, the destination and the code that
validates them. Any change to one of those is a miss and a full validation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import immute.core
from immute import __version__
from immute.client.specfile import spec_paths, state_dir
from immute.core.digests import canonical_json
from immute.images.inputs import BuildInputs
from immute.images.store import write_cache

if TYPE_CHECKING:
    from immute.core.spec_loading import LoadedSpec


def fields_from_spec(loaded: LoadedSpec, spec_path: Path) -> dict[str, Any]:
    """What the build needs from a loaded spec, as JSON-able data."""
    spec = loaded.spec
    dockerfile = spec.build.dockerfile
    return {
        "app": spec.app,
        "context": str((spec_path.parent / spec.build.context).resolve()),
        "processes": {name: list(p.command) for name, p in spec.processes.items()},
        "include": list(spec.build.include),
        "exclude": list(spec.build.exclude),
        "dependencies": list(spec.build.dependencies),
        "stack": spec.build.stack if dockerfile is None else f"dockerfile:{dockerfile}",
        "dockerfile": None
        if dockerfile is None
        else str((spec_path.parent / dockerfile).resolve()),
        "workdir": spec.build.workdir,
        "env": dict(spec.env),
        "spec_digest": loaded.spec_digest,
    }


def inputs_from_fields(
    fields: dict[str, Any], *, offline: bool = False, wheelhouse: Path | None = None
) -> BuildInputs:
    from immute.images.dependencies import default_dependency_files

    context = Path(fields["context"])
    dependencies = tuple(fields["dependencies"]) or default_dependency_files(context)
    return BuildInputs(
        app=str(fields["app"]),
        context=context,
        processes={str(k): tuple(v) for k, v in fields["processes"].items()},
        include=tuple(fields["include"]),
        exclude=tuple(fields["exclude"]),
        dependency_files=dependencies,
        stack=str(fields["stack"]),
        dockerfile=Path(fields["dockerfile"]) if fields.get("dockerfile") else None,
        workdir=str(fields["workdir"]),
        env={str(k): str(v) for k, v in fields["env"].items()},
        spec_digest=str(fields["spec_digest"]),
        offline=offline,
        wheelhouse=wheelhouse,
    )


def inputs_from_spec(
    loaded: LoadedSpec, spec_path: Path, *, offline: bool = False, wheelhouse: Path | None = None
) -> BuildInputs:
    """The build inputs a loaded spec describes; paths are relative to the spec."""
    fields = fields_from_spec(loaded, spec_path)
    return inputs_from_fields(fields, offline=offline, wheelhouse=wheelhouse)


def load_build_fields(
    file: str | None, destination: str | None, *, runtime: str | None = None
) -> dict[str, Any]:
    """The build fields of the spec: from the cache when nothing they depend on
    changed, else by loading and validating the spec (which raises its errors)."""
    cache = _cache_file(file, destination, runtime)
    if cache is not None:
        try:
            fields = json.loads(cache.read_text(encoding="utf-8"))
            if isinstance(fields, dict):
                return fields
        except (OSError, ValueError):
            pass
    from immute.client.specfile import read_spec

    loaded = read_spec(file, destination, runtime=runtime)
    fields = fields_from_spec(loaded, spec_paths(file, destination)[0])
    if cache is not None:
        write_cache(cache, json.dumps(fields).encode())
    return fields


def _cache_file(file: str | None, destination: str | None, runtime: str | None) -> Path | None:
    try:
        sources = [
            [str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest()]
            for path in spec_paths(file, destination)
        ]
    except OSError:
        return None
    key = hashlib.sha256(
        canonical_json(
            {
                "immute": __version__,
                "code": _code_fingerprint(),
                "destination": destination,
                "runtime": runtime,
                "sources": sources,
            }
        )
    ).hexdigest()
    return state_dir(file) / "cache" / "spec" / f"{key}.json"


def _code_fingerprint() -> list[list[object]]:
    """Identity of the code that validates specs, so editing it invalidates the cache."""
    modules = [*Path(immute.core.__file__).parent.glob("*.py"), Path(__file__)]
    return sorted([p.name, s.st_mtime_ns, s.st_size] for p in modules for s in [p.stat()])
