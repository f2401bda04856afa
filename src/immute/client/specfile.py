"""Find and read the spec files of an app: ``immute.yaml`` and its destination
overlay ``immute.<dest>.yaml``, then hand their texts to the pure loader."""

from __future__ import annotations

import os
import re
from pathlib import Path

from immute.core.spec_loading import LoadedSpec, Source, load_spec
from immute.errors import NotFoundError, UsageError

DEFAULT_SPEC = "immute.yaml"
_DESTINATION = re.compile(r"[a-z][a-z0-9-]{0,30}")


def spec_paths(file: str | None, destination: str | None) -> list[Path]:
    """The base spec and, with a destination, its overlay beside it."""
    base = Path(file or DEFAULT_SPEC)
    if destination is None:
        return [base]
    if not _DESTINATION.fullmatch(destination):
        raise UsageError(f"-d/--destination: {destination!r} is not a destination name like prod")
    stem = base.name.removesuffix(".yaml").removesuffix(".yml")
    return [base, base.with_name(f"{stem}.{destination}.yaml")]


def read_spec(file: str | None = None, destination: str | None = None) -> LoadedSpec:
    """Load, validate and normalise the spec; raise SpecError listing every problem."""
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
    repository = os.path.abspath(spec_paths(file, None)[0].parent)
    return load_spec(sources, repository=repository)


def state_dir(file: str | None = None) -> Path:
    """``$IMMUTE_STATE_DIR``, else ``.immute/`` beside the spec."""
    override = os.environ.get("IMMUTE_STATE_DIR")
    if override:
        return Path(override)
    return Path(file or DEFAULT_SPEC).parent / ".immute"
