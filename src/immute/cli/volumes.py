"""``immute volumes``: the named volumes that hold apps' state across releases."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from immute.cli.options import Json

app = typer.Typer(
    help="List the apps' persistent volumes (docker runtime), or remove one.",
    invoke_without_command=True,
)


@app.callback()
def volumes(ctx: typer.Context, as_json: Json = False) -> None:
    """List the named volumes immute created; they outlive every release."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    from immute.client.volumes import list_volumes

    rows = list_volumes()
    if as_json:
        typer.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return
    table = Table("NAME", "APP", "CREATED", "MOUNTPOINT", box=None)
    for row in rows:
        table.add_row(row.name, row.app, row.created, row.mountpoint)
    Console().print(table)


@app.command("rm")
def rm(
    name: Annotated[str, typer.Argument(help="The volume's name (see `immute volumes`).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a volume and all its data (asks first; refused while a container uses it)."""
    from immute.client.volumes import remove_volume

    if not yes:
        typer.confirm(f"Delete volume {name} and all its data?", abort=True)
    remove_volume(name)
    typer.echo(f"removed volume {name}")
