"""Find and read the spec files of an app: ``immute.yaml`` and its destination
overlay ``immute.<dest>.yaml``, then hand their texts to the pure loader."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from immute.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from immute.core.spec_loading import LoadedSpec

DEFAULT_SPEC = "immute.yaml"
_DESTINATION = re.compile(r"[a-z][a-z0-9-]{0,30}")
_RUNTIME = re.compile(r"[a-z][a-z0-9_-]{0,30}")
RUNTIME_OPTION = "--runtime"
"""The name the ``--runtime`` override goes by in spec errors."""


def spec_paths(file: str | None, destination: str | None) -> list[Path]:
    """The base spec and, with a destination, its overlay beside it."""
    base = Path(file or DEFAULT_SPEC)
    if destination is None:
        return [base]
    if not _DESTINATION.fullmatch(destination):
        raise UsageError(f"-d/--destination: {destination!r} is not a destination name like prod")
    stem = base.name.removesuffix(".yaml").removesuffix(".yml")
    return [base, base.with_name(f"{stem}.{destination}.yaml")]


def read_spec(
    file: str | None = None, destination: str | None = None, *, runtime: str | None = None
) -> LoadedSpec:
    """Load, validate and normalise the spec; raise SpecError listing every problem.

    ``runtime`` (``--runtime``) overrides the spec's ``runtime`` as one more
    overlay, so the spec's own checks apply and name the option."""
    # Imported here: pydantic is costly to import and some callers only need paths.
    from immute.core.spec_loading import Source, load_spec

    sources = []
    for path in spec_paths(file, destination):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            hint = " (run `immute init` to write one)" if path.name == DEFAULT_SPEC else ""
            raise NotFoundError(f"{path}: no such spec file{hint}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise NotFoundError(f"{path}: cannot read the spec: {exc}") from None
        sources.append(Source(str(path), text))
    if runtime is not None:
        if not _RUNTIME.fullmatch(runtime):
            raise UsageError(f"--runtime: {runtime!r} is not a runtime name like docker")
        sources.append(Source(RUNTIME_OPTION, f"runtime: {runtime}\n"))
    repository = os.path.abspath(spec_paths(file, None)[0].parent)
    return load_spec(sources, repository=repository)


def state_dir(file: str | None = None) -> Path:
    """``$IMMUTE_STATE_DIR``, else ``.immute/`` beside the spec."""
    override = os.environ.get("IMMUTE_STATE_DIR")
    if override:
        return Path(override)
    return Path(file or DEFAULT_SPEC).parent / ".immute"
