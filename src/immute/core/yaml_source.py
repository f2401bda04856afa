"""Parse YAML text into plain data plus a map from key paths to source positions.

Every later error, from pydantic or from our own checks, is reported at the
line and column of the key it concerns, even after an overlay file was merged
over the base file. Pure: text in, data out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from immute.errors import SpecError, SpecProblem

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """1-based line and column in a named file."""

    file: str
    line: int
    column: int


@dataclass
class Document:
    """Plain data from one or more YAML files and where each key came from."""

    data: dict[str, Any]
    positions: dict[Path, Position]

    def position(self, path: Path) -> Position:
        """Position of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        raise KeyError(path)  # the root always has a position


def parse_document(file: str, text: str) -> Document:
    """Parse one YAML mapping; raise SpecError for syntax errors and duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        raise SpecError([SpecProblem(file, line, column, "", f"invalid YAML: {problem}")]) from exc
    finally:
        loader.dispose()
    if node is None:
        raise SpecError([SpecProblem(file, 1, 1, "", "the file is empty; expected a mapping")])
    builder = _Builder(file, loader)
    root: Path = ()
    builder.positions[root] = _position(file, node)
    data = builder.build(node, root)
    if not isinstance(data, dict):
        raise SpecError([SpecProblem(file, 1, 1, "", "expected a mapping of keys at the top")])
    if builder.problems:
        raise SpecError(builder.problems)
    return Document(data, builder.positions)


def merge_documents(base: Document, overlay: Document) -> Document:
    """Merge ``overlay`` over ``base``: mappings merge key by key, anything else
    (lists included) is replaced, and a key set to null in the overlay is removed."""
    positions = dict(base.positions)
    data = _merge(base.data, overlay.data, (), positions, overlay.positions)
    return Document(data, positions)


def _merge(
    base: dict[str, Any],
    over: dict[str, Any],
    path: Path,
    positions: dict[Path, Position],
    over_positions: dict[Path, Position],
) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, here, positions, over_positions)
            continue
        for known in [p for p in positions if p[: len(here)] == here]:
            del positions[known]
        if value is None:
            merged.pop(key, None)
            continue
        merged[key] = value
        positions.update({p: pos for p, pos in over_positions.items() if p[: len(here)] == here})
    return merged


def _position(file: str, node: yaml.Node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.positions: dict[Path, Position] = {}
        self.problems: list[SpecProblem] = []

    def build(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.positions[(*path, index)] = _position(self.file, item)
                items.append(self.build(item, (*path, index)))
            return items
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        own_keys = len(node.value)
        self.loader.flatten_mapping(node)  # YAML merge keys (<<) come first, own keys win
        merged_count = len(node.value) - own_keys
        result: dict[str, Any] = {}
        own_seen: dict[str, Position] = {}
        for index, (key_node, value_node) in enumerate(node.value):
            where = _position(self.file, key_node)
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                dotted = dotted_path(path)
                self._problem(where, dotted, f"keys must be strings, got {key!r}")
                continue
            if index >= merged_count:
                if key in own_seen:
                    first = own_seen[key].line
                    self._problem(
                        where, dotted_path((*path, key)), f"duplicate key (first at line {first})"
                    )
                own_seen[key] = where
            here = (*path, key)
            self.positions[here] = where
            result[key] = self.build(value_node, here)
        return result

    def _problem(self, where: Position, path: str, message: str) -> None:
        self.problems.append(SpecProblem(where.file, where.line, where.column, path, message))


def dotted_path(path: Path) -> str:
    """``processes.web.health.readiness`` or ``release_command[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
