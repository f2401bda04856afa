"""The root command and the registration of every command group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from immute import __version__


def build_app(command: str | None = None) -> typer.Typer:
    """The command tree; with ``command`` (the first argument), only the group
    that holds it, so a command pays for building its own options and not for
    thirty others. Unknown or absent: everything (help, suggestions)."""
    app = typer.Typer(
        name="immute",
        help="Immutable infrastructure for Python apps: replace, never patch.",
        rich_markup_mode=None,
        add_completion=False,
        pretty_exceptions_enable=False,
        no_args_is_help=True,
    )
    app.callback()(root)
    groups = [COMMANDS[command]] if command in COMMANDS else list(_GROUPS)
    for group in groups:
        _GROUPS[group](app)
    return app


def _version(value: bool) -> None:
    if value:
        typer.echo(f"immute {__version__}")
        raise typer.Exit()


def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Immutable infrastructure for Python apps: replace, never patch."""


def _spec(app: typer.Typer) -> None:
    from immute.cli import spec_commands

    app.command()(spec_commands.init)
    app.command()(spec_commands.schema)
    app.add_typer(spec_commands.config_app, name="config")


def _state(app: typer.Typer) -> None:
    from immute.cli import state

    app.add_typer(state.app)


def _router(app: typer.Typer) -> None:
    from immute.cli import router

    app.add_typer(router.app, name="router")


def _images(app: typer.Typer) -> None:
    from immute.cli import images

    images.register(app)


def _deploys(app: typer.Typer) -> None:
    from immute.cli import deploy_commands

    deploy_commands.register(app)


def _logs(app: typer.Typer) -> None:
    from immute.cli import logs

    app.add_typer(logs.app)


def _volumes(app: typer.Typer) -> None:
    from immute.cli import volumes

    app.add_typer(volumes.app, name="volumes")


_GROUPS: dict[str, Callable[[typer.Typer], None]] = {
    "spec": _spec,
    "state": _state,
    "router": _router,
    "images": _images,
    "deploys": _deploys,
    "logs": _logs,
    "volumes": _volumes,
}
COMMANDS: dict[str, str] = {
    **dict.fromkeys(("init", "schema", "config"), "spec"),
    **dict.fromkeys(("history", "audit", "lock"), "state"),
    "router": "router",
    **dict.fromkeys(("build", "images", "prune", "image", "deps"), "images"),
    **dict.fromkeys(("deploy", "rollback", "restart", "status", "down", "agent"), "deploys"),
    "logs": "logs",
    "volumes": "volumes",
}
"""Which group registers each top-level command (a test checks it against the tree)."""
