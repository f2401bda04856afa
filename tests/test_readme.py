from pathlib import Path

from immute.client.reference import END, START, render_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_reference_is_generated_from_the_current_models() -> None:
    text = README.read_text(encoding="utf-8")
    embedded = text.split(START, 1)[1].split(END, 1)[0]
    assert embedded.strip() == render_reference().strip(), "run `make docs`"


def test_readme_gives_the_test_command() -> None:
    assert "make test" in README.read_text(encoding="utf-8")


def test_cached_root_help_is_what_typer_renders() -> None:
    from immute.cli import ROOT_HELP
    from immute.cli.help_cache import render_root_help

    assert ROOT_HELP.read_text(encoding="utf-8") == render_root_help(), "run `make docs`"
