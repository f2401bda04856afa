"""``immute build`` parsed without typer agrees with the typer command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from images.image_testkit import immute, write_app
from immute.cli.build_command import FLAG_OPTIONS, VALUE_OPTIONS, parse


# typer 0.19 calls, at import, a click helper that click 8.2+ deprecates: not ours to fix.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_fast_parser_knows_exactly_the_options_of_the_typer_command() -> None:
    import click
    from typer.main import get_command

    from immute.cli.app import build_app

    group = get_command(build_app("build"))
    assert isinstance(group, click.Group)
    command = group.commands["build"]
    params = [p for p in command.params if isinstance(p, click.Option)]
    flags = {o for p in params if p.is_flag for o in p.opts}
    valued = {o for p in params if not p.is_flag for o in p.opts}
    assert flags - {"--help"} == set(FLAG_OPTIONS)
    assert valued == set(VALUE_OPTIONS)
    by_name = {o: p.name for p in params for o in p.opts}
    assert all(by_name[o] == n for o, n in {**FLAG_OPTIONS, **VALUE_OPTIONS}.items())


def test_plain_arguments_are_parsed_and_anything_else_is_left_to_typer() -> None:
    args = ["-f", "a.yaml", "--json", "--offline", "--wheelhouse", "w", "-d", "prod"]
    assert parse([*args, "--runtime", "docker"]) == {
        "file": "a.yaml",
        "destination": "prod",
        "wheelhouse": "w",
        "runtime": "docker",
        "offline": True,
        "as_json": True,
    }
    assert parse([]) == {
        "file": None,
        "destination": None,
        "wheelhouse": None,
        "runtime": None,
        "offline": False,
        "as_json": False,
    }
    for args in (
        ["--help"],
        ["--file"],
        ["--file=a.yaml"],
        ["--json", "--json"],
        ["-f", "a", "--file", "b"],
        ["-f", "--json"],
        ["extra"],
        ["--no-such-option"],
    ):
        assert parse(args) is None, args


@pytest.mark.parametrize("output", ["--json", None])
def test_both_paths_print_the_same(tmp_path: Path, output: str | None) -> None:
    app = write_app(tmp_path / "shop", requirements=None)
    extra = [output] if output else []
    fast = immute("build", "-f", "immute.yaml", *extra, cwd=app)
    typer_path = immute("build", "--file=immute.yaml", *extra, cwd=app)
    assert fast.returncode == typer_path.returncode == 0, fast.stderr + typer_path.stderr
    assert fast.stdout == typer_path.stdout and fast.stderr == typer_path.stderr
    if output:
        assert json.loads(fast.stdout)["name"] == "demo:latest"
    else:
        assert fast.stdout.splitlines()[-1].startswith("demo:latest sha256:")
    assert "  app layer: collecting the build context" in fast.stderr.splitlines()
    bad = immute("build", "--file", "missing.yaml", cwd=app)
    assert bad.returncode != 0 and bad.stderr.startswith("error: missing.yaml: no such spec file")
