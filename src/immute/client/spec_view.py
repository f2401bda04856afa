"""Views of the spec for people and tools: normalised form, digests, schema."""

from __future__ import annotations

from typing import Any

from immute.client.specfile import read_spec
from immute.core.quantities import format_duration
from immute.core.spec import Spec
from immute.core.spec_types import DURATION_PATTERN


def normalised_view(file: str | None, destination: str | None) -> dict[str, Any]:
    """The normalised spec (defaults filled in) with the spec and config digests.

    Secret values are never part of a spec, so the view holds their names only.
    """
    loaded = read_spec(file, destination)
    return {
        "files": list(loaded.files),
        "spec_digest": loaded.spec_digest,
        "config_digest": loaded.config_digest,
        "spec": loaded.spec.model_dump(mode="json", exclude_none=True),
    }


def render_yaml(view: dict[str, Any]) -> str:
    """A YAML spec that loads back to the same digests, with them as comments."""
    import yaml

    header = (
        f"# normalised from {' + '.join(view['files'])}\n"
        f"# spec digest:   {view['spec_digest']}\n"
        f"# config digest: {view['config_digest']}\n"
    )
    body = yaml.safe_dump(
        view["spec"], sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return header + body


def json_schema() -> dict[str, Any]:
    """JSON Schema of immute.yaml, generated from the same models that validate it."""
    schema = Spec.model_json_schema(mode="validation")
    _spell_duration_defaults(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "immute.yaml"
    return schema


def _spell_duration_defaults(node: Any) -> None:
    """Defaults of durations are held in milliseconds; show them as written."""
    if isinstance(node, dict):
        if node.get("pattern") == DURATION_PATTERN and isinstance(node.get("default"), int):
            node["default"] = format_duration(node["default"])
        for child in node.values():
            _spell_duration_defaults(child)
    elif isinstance(node, list):
        for child in node:
            _spell_duration_defaults(child)
