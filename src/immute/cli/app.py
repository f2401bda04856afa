"""The root command and the registration of every command group."""

from __future__ import annotations

from typing import Annotated

import typer

from immute import __version__

app = typer.Typer(
    name="immute",
    help="Immutable infrastructure for Python apps: replace, never patch.",
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"immute {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Immutable infrastructure for Python apps: replace, never patch."""


def _register() -> None:
    from immute.cli import deploy_commands, images, logs, router, spec_commands, state, volumes

    app.command()(spec_commands.init)
    app.command()(spec_commands.schema)
    app.add_typer(spec_commands.config_app, name="config")
    app.add_typer(state.app)
    app.add_typer(router.app, name="router")
    images.register(app)
    deploy_commands.register(app)
    app.add_typer(logs.app)
    app.add_typer(volumes.app, name="volumes")


_register()
