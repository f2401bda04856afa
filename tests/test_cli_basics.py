import subprocess
import sys

import pytest

from immute import __version__


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "immute", *args], capture_output=True, text=True, check=False
    )


def test_version_prints_the_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"immute {__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "no-such-command" in result.stderr


# typer 0.19 calls, at import, a click helper that click 8.2+ deprecates: not ours to fix.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_every_top_level_command_is_mapped_to_the_group_that_registers_it() -> None:
    import typer.main

    from immute.cli.app import COMMANDS, build_app

    everything = typer.main.get_command(build_app())
    assert isinstance(everything, typer.core.TyperGroup)
    assert set(everything.commands) == set(COMMANDS)
    for name, group in COMMANDS.items():
        alone = typer.main.get_command(build_app(name))
        assert isinstance(alone, typer.core.TyperGroup)
        assert name in alone.commands, (name, group)
