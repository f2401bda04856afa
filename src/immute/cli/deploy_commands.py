"""``immute deploy``, ``rollback``, ``restart``, ``status``, ``down`` and ``agent``."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from immute.cli.options import Destination, Json, Runtime, SpecFile

agent_app = typer.Typer(help="Run or stop the app's agent.", no_args_is_help=True)


class _Printer:
    """Deploy events as lines with the time since the command started."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.started = time.monotonic()

    def progress(self, text: str) -> None:
        if not self.as_json:
            typer.echo(f"  build: {text}", err=True)

    def event(self, event: dict[str, Any]) -> None:
        if self.as_json:
            typer.echo(json.dumps(event))
            return
        elapsed = time.monotonic() - self.started
        marker = {"error": "!", "failed": "x", "done": "*", "log": "|"}.get(
            event.get("kind", ""), "-"
        )
        typer.echo(f"{elapsed:7.2f}s {marker} {event.get('text', '')}{_situation(event)}")


def _situation(event: dict[str, Any]) -> str:
    """`  [ready v1:2 v2:1 | web v1 67% v2 33%]` for step and done events."""
    if event.get("kind") not in ("step", "done") or not event.get("ready"):
        return ""
    ready = " ".join(f"{r}:{n}" for r, n in sorted(event["ready"].items()))
    traffic = "; ".join(
        f"{process} " + " ".join(f"{r} {share:g}%" for r, share in sorted(split.items()))
        for process, split in sorted(event.get("traffic", {}).items())
    )
    return f"  [ready {ready}" + (f" | {traffic}]" if traffic else "]")


def _finish(client: Any, deploy_id: int, printer: _Printer) -> None:
    final = client.follow(deploy_id, printer.event)
    if final.get("status") != "done":
        raise typer.Exit(1)


def deploy(
    file: SpecFile = None,
    destination: Destination = None,
    message: Annotated[
        str, typer.Option("--message", "-m", help="Why: kept with the release.")
    ] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    attach: Annotated[
        int | None,
        typer.Option("--attach", help="Follow deploy ID again instead.", show_default=False),
    ] = None,
    offline: Annotated[
        bool, typer.Option(help="Install dependencies from the wheelhouse only.")
    ] = False,
    runtime: Runtime = None,
    as_json: Json = False,
) -> None:
    """Build, record a release and roll it out; exits non-zero if it was aborted."""
    from immute.client import deploy as deploys

    printer = _Printer(as_json)
    if dry_run:
        for line in deploys.dry_run(file, destination, runtime=runtime):
            typer.echo(line)
        return
    if attach is not None:
        _finish(deploys.agent_for(file), attach, printer)
        return
    client, deploy_id = deploys.deploy(
        file,
        destination,
        message=message,
        offline=offline,
        progress=printer.progress,
        runtime=runtime,
    )
    if not as_json:
        typer.echo(
            f"deploy {deploy_id} started (follow again with: immute deploy --attach {deploy_id})"
        )
    _finish(client, deploy_id, printer)


def rollback(
    release: Annotated[
        str | None, typer.Argument(help="vN (default: the previous release).")
    ] = None,
    file: SpecFile = None,
    as_json: Json = False,
) -> None:
    """Route traffic back to an earlier release, recorded as a new release."""
    from immute.client import deploy as deploys
    from immute.errors import UsageError

    number = None
    if release is not None:
        if not release.lstrip("v").isdigit():
            raise UsageError(f"rollback: expected a release like v3, got {release!r}")
        number = int(release.lstrip("v"))
    client, deploy_id = deploys.rollback(file, number)
    _finish(client, deploy_id, _Printer(as_json))


def restart(file: SpecFile = None, as_json: Json = False) -> None:
    """Replace every instance of the active release with a fresh one."""
    from immute.client import deploy as deploys

    client, deploy_id = deploys.restart(file)
    _finish(client, deploy_id, _Printer(as_json))


def status(
    file: SpecFile = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Follow the running deploy.")
    ] = False,
    as_json: Json = False,
) -> None:
    """The active release, its instances with state and age, and the route."""
    from immute.client import deploy as deploys

    view = deploys.status(file)
    if follow and view.get("deploy"):
        _finish(deploys.agent_for(file), int(view["deploy"]["id"]), _Printer(as_json))
        view = deploys.status(file)
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    _print_status(view)


def _print_status(view: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not view.get("agent"):
        console.print("no agent runs for this app (nothing deployed, or `immute down` was run)")
        return
    deploy = view.get("deploy")
    doing = f", {deploy['kind']} of {deploy['release']} in progress" if deploy else ""
    console.print(f"app {view.get('app')}: active release {view.get('active')}{doing}")
    table = Table("instance", "process", "release", "state", "address", "age")
    for row in view.get("instances", []):
        state = row["state"] if row["running"] else f"{row['state']} (exited)"
        age = f"{row['age']:.0f}s" if row.get("age") is not None else ""
        table.add_row(row["id"], row["process"], row["release"], state, row["address"] or "", age)
    console.print(table)
    routes = view.get("routes", {}).get("services", {})
    for service, route in sorted(routes.items()):
        split = ", ".join(
            f"{t['address']} {t['release']} w{t['weight']} {t['state']}" for t in route["targets"]
        )
        console.print(f"route {service}: {split or 'no targets (requests are held)'}")


def down(file: SpecFile = None) -> None:
    """Stop the app's instances and its agent (the router keeps its last table)."""
    from immute.client import deploy as deploys

    typer.echo(f"stopped {deploys.down(file)} instances and the agent")


@agent_app.command("run")
def agent_run(file: SpecFile = None) -> None:
    """Run the agent in the foreground (the CLI starts it in the background itself)."""
    import os
    import sys

    from immute.client.specfile import state_dir

    os.execv(
        sys.executable, [sys.executable, "-m", "immute.agent", "--state-dir", str(state_dir(file))]
    )


@agent_app.command("stop")
def agent_stop(file: SpecFile = None) -> None:
    """Stop the agent alone; the router and instances keep serving."""
    from immute.client import deploy as deploys

    typer.echo("agent stopped" if deploys.stop_agent(file) else "no agent was running")


def register(app: typer.Typer) -> None:
    for command in (deploy, rollback, restart, status, down):
        app.command()(command)
    app.add_typer(agent_app, name="agent")
