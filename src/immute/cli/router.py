"""`immute router ...`: run the builtin router and drive it over its admin socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run the builtin router and change its routes.", no_args_is_help=True)

AdminOpt = Annotated[Path, typer.Option("--admin", help="The router's admin unix socket.")]
ServiceOpt = Annotated[
    str | None, typer.Option("--service", help="Service name (default: the lone default one).")
]


@app.command()
def serve(
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to accept traffic on.")],
    admin: AdminOpt,
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="HOST:PORT for Prometheus metrics.")
    ] = None,
    state: Annotated[
        Path | None, typer.Option("--state", help="Route table file (default: ADMIN.routes.json).")
    ] = None,
    access_log: Annotated[
        Path | None, typer.Option("--access-log", help="Append one JSON line per request.")
    ] = None,
    hold_timeout: Annotated[
        float, typer.Option("--hold-timeout", help="Seconds to hold a request with no target.")
    ] = 10.0,
) -> None:
    """Run the router in the foreground; takes over from a router already on ADMIN."""
    from immute.client.router import serve as run

    run(
        listen=listen,
        admin=admin,
        metrics=metrics,
        state=state,
        access_log=access_log,
        hold_timeout=hold_timeout,
    )


@app.command("set")
def set_targets(
    targets: Annotated[list[str], typer.Argument(help="HOST:PORT[=WEIGHT] ...")],
    admin: AdminOpt,
    service: ServiceOpt = None,
    release: Annotated[str, typer.Option("--release", help="Release label of these.")] = "",
) -> None:
    """Replace the service's whole target set at once."""
    from immute.client.router import set_targets as run

    run(admin, service, targets, release=release)


@app.command()
def drain(
    addresses: Annotated[list[str], typer.Argument(help="HOST:PORT of targets to drain.")],
    admin: AdminOpt,
    service: ServiceOpt = None,
    deadline: Annotated[
        float, typer.Option("--deadline", help="Seconds before in-flight work is cut.")
    ] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Stop sending to targets; return once they are empty (cut at the deadline)."""
    from immute.client.router import drain as run

    results = run(admin, service, addresses, deadline=deadline)
    for result in results:
        if as_json:
            typer.echo(json.dumps(result.__dict__, sort_keys=True))
        else:
            typer.echo(f"{result.address}: drained in {result.seconds:.2f}s, {result.cut} cut")


@app.command()
def pause(admin: AdminOpt, service: ServiceOpt = None) -> None:
    """Hold new requests of a service until `resume` (or the hold limit)."""
    from immute.client.router import pause as run

    run(admin, service, paused=True)


@app.command()
def resume(admin: AdminOpt, service: ServiceOpt = None) -> None:
    """Release requests held by `pause`."""
    from immute.client.router import pause as run

    run(admin, service, paused=False)


@app.command()
def status(
    admin: AdminOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Services, their targets (state, weight, in-flight) and counters."""
    from immute.client.router import status as run

    state = run(admin)
    if as_json:
        typer.echo(json.dumps(state, indent=2, sort_keys=True))
        return
    _print_status(state)


def _print_status(state: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("service", "target", "release", "state", "weight", "in-flight", "requests")
    services = state.get("services")
    for name, service in (services if isinstance(services, dict) else {}).items():
        paused = " (paused)" if service.get("paused") else ""
        for target in service.get("targets", []):
            table.add_row(
                f"{name}{paused}",
                str(target["address"]),
                str(target["release"]),
                str(target["state"]),
                str(target["weight"]),
                str(target["inflight"]),
                str(target["requests"]),
            )
    console = Console()
    console.print(table)
    console.print(
        f"listening on {state.get('listen')}  hold {state.get('hold_timeout')}s  "
        f"requests {state.get('requests')}  retries {state.get('retries')}  "
        f"rejected {state.get('rejected')}  connections {state.get('connections')}"
    )
