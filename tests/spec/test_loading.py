"""Overlays, digests and normalisation of valid specs."""

from __future__ import annotations

import textwrap

from immute.core.commands import expand_argv
from immute.core.spec_loading import Source, load_spec

BASE = textwrap.dedent(
    """\
    app: shop
    processes:
      web:
        command: gunicorn app:app --bind 127.0.0.1:$PORT
        instances: 2
      worker:
        command: [python, worker.py]
    env:
      LOG_LEVEL: info
      WORKERS: 4
      DEBUG: false
    strategy:
      type: rolling
    """
)


def test_defaults_are_filled_in_by_name_and_strategy() -> None:
    spec = load_spec([Source("immute.yaml", BASE)]).spec
    assert spec.processes["web"].routed is True
    assert spec.processes["worker"].routed is False
    assert spec.processes["web"].health.readiness.tcp is True
    assert spec.processes["worker"].health.readiness.probe_kinds() == []
    assert (spec.strategy.max_surge, spec.strategy.max_unavailable) == ("25%", 0)
    assert spec.env == {"LOG_LEVEL": "info", "WORKERS": "4", "DEBUG": "false"}
    assert spec.processes["web"].command[-1] == "127.0.0.1:$PORT"


def test_overlay_merges_mappings_replaces_lists_and_removes_nulls() -> None:
    overlay = textwrap.dedent(
        """\
        processes:
          web:
            instances: 6
          worker: ~
        env:
          LOG_LEVEL: warning
        """
    )
    merged = load_spec([Source("immute.yaml", BASE), Source("immute.prod.yaml", overlay)]).spec
    assert merged.processes["web"].instances == 6
    assert merged.processes["web"].command[0] == "gunicorn"
    assert "worker" not in merged.processes
    assert merged.env["LOG_LEVEL"] == "warning"
    assert merged.env["WORKERS"] == "4"


def test_config_digest_ignores_strategy_but_not_env() -> None:
    base = load_spec([Source("immute.yaml", BASE)])
    other_strategy = load_spec([Source("a.yaml", BASE.replace("type: rolling", "type: recreate"))])
    other_env = load_spec([Source("b.yaml", BASE.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))])
    assert other_strategy.config_digest == base.config_digest
    assert other_strategy.spec_digest != base.spec_digest
    assert other_env.config_digest != base.config_digest


def test_equivalent_spellings_have_one_digest() -> None:
    spelled = BASE.replace(
        "command: [python, worker.py]", "command: python worker.py\n    grace: 10000ms"
    )
    assert (
        load_spec([Source("a.yaml", spelled)]).spec_digest
        == load_spec([Source("b.yaml", BASE)]).spec_digest
    )


def test_yaml_merge_keys_are_honoured() -> None:
    spec_text = textwrap.dedent(
        """\
        app: a
        processes:
          web: &web
            command: run
            instances: 3
          api:
            <<: *web
            routed: false
        """
    )
    spec = load_spec([Source("a.yaml", spec_text)]).spec
    assert spec.processes["api"].instances == 3
    assert spec.processes["api"].routed is False


def test_expand_argv_replaces_variables_without_splitting() -> None:
    env = {"PORT": "8001", "NAME": "a b"}
    argv = ["serve", "--port=$PORT", "${NAME}", "$$PORT", "$MISSING"]
    assert expand_argv(argv, env) == ["serve", "--port=8001", "a b", "$PORT", ""]
