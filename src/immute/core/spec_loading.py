"""From YAML texts to a validated, normalised spec, or to every problem at once.

Pure: the caller reads the files (base first, then the destination overlay) and
passes their names and texts. Each problem names file, line, column and key path.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from immute.core import spec_rules
from immute.core.digests import digest_of
from immute.core.spec import Spec
from immute.core.wording import shown
from immute.core.yaml_source import Document, Path, dotted_path, merge_documents, parse_document
from immute.errors import SpecError, SpecProblem

CONFIG_KEYS = (
    "app",
    "processes",
    "env",
    "secrets",
    "volumes",
    "scratch",
    "release_command",
    "runtime",
)


@dataclass(frozen=True)
class Source:
    """One spec file's display name and text."""

    name: str
    text: str


@dataclass(frozen=True)
class LoadedSpec:
    """A valid, normalised spec and its identities."""

    spec: Spec
    files: tuple[str, ...]
    spec_digest: str
    config_digest: str


def load_spec(sources: Sequence[Source], *, repository: str | None = None) -> LoadedSpec:
    """Parse, merge (later sources over earlier), validate and normalise.

    ``repository`` is the spec's absolute directory (see ``spec_rules.check``).

    Raises SpecError listing every problem found: YAML problems in all files,
    then every schema problem, then (when the structure is valid) every rule.
    """
    documents, problems = [], []
    for source in sources:
        try:
            documents.append(parse_document(source.name, source.text))
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)
    document = documents[0]
    for overlay in documents[1:]:
        document = merge_documents(document, overlay)
    spec = _validate(document, repository)
    return LoadedSpec(
        spec=spec,
        files=tuple(s.name for s in sources),
        spec_digest=spec_digest(spec),
        config_digest=config_digest(spec),
    )


def spec_digest(spec: Spec) -> str:
    """Digest of the whole normalised spec."""
    return digest_of(spec.model_dump(mode="json"))


def config_digest(spec: Spec) -> str:
    """Digest of what instances are given outside the image (secret names only)."""
    dumped = spec.model_dump(mode="json")
    return digest_of({key: dumped[key] for key in CONFIG_KEYS})


def _validate(document: Document, repository: str | None) -> Spec:
    try:
        spec = Spec.model_validate(document.data)
    except ValidationError as exc:
        raise _spec_error(document, [_translate(e) for e in exc.errors()]) from None
    rule_problems = spec_rules.check(spec, repository=repository)
    if rule_problems:
        raise _spec_error(document, rule_problems)
    return spec_rules.normalise(spec)


def _spec_error(document: Document, problems: list[tuple[Path, str]]) -> SpecError:
    located = [_problem(document, path, message) for path, message in problems]
    files = list(dict.fromkeys(p.file for p in located))
    located.sort(key=lambda p: (files.index(p.file), p.line, p.column))
    return SpecError(located)


def _problem(document: Document, path: Path, message: str) -> SpecProblem:
    where = document.position(path)
    return SpecProblem(where.file, where.line, where.column, dotted_path(path), message)


def _translate(error: ErrorDetails) -> tuple[Path, str]:
    path: Path = tuple(p for p in error["loc"] if p != "[key]")
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return path, "required key is missing"
    if kind == "extra_forbidden":
        return path, _unknown_key(path)
    if kind == "immute":
        return path, error["msg"]
    expected = _EXPECTED.get(kind)
    if expected:
        return path, f"expected {expected}, got {shown(value)}"
    if kind == "literal_error":
        return (
            path,
            f"expected one of {ctx['expected'].replace(chr(39), chr(34))}, got {shown(value)}",
        )
    if kind in _BOUNDS:
        word, bound = _BOUNDS[kind]
        limit = ctx[bound]
        limit = int(limit) if isinstance(limit, float) and limit.is_integer() else limit
        return path, f"must be {word} {limit}, got {shown(value)}"
    if kind == "too_short":
        return path, f"needs at least {ctx['min_length']} entry"
    return path, error["msg"]


_EXPECTED = {
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
    "less_than_equal": ("at most", "le"),
}


def _unknown_key(path: Path) -> str:
    key = str(path[-1])
    known = _known_keys(path[:-1])
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f'; did you mean "{close[0]}"?' if close else f" (known keys: {', '.join(known)})"
    return f"unknown key {shown(key)}{hint}"


def _known_keys(path: Path) -> list[str]:
    """Field names of the model found at ``path``, walking Spec's annotations."""
    annotation: Any = Spec
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = annotation.model_fields[str(part)].annotation
        else:
            annotation = typing.get_args(annotation)[-1]  # dict value or list item
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip ``Optional``: ``X | None`` becomes ``X``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation
