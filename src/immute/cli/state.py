"""`immute history`, `immute audit` and `immute lock ...`: the state store's commands."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated

import typer

from immute.cli.options import Destination, Json, SpecFile

app = typer.Typer()
lock_app = typer.Typer(
    help="The app's deploy lock: see who holds it, take it, release it.", no_args_is_help=True
)
app.add_typer(lock_app, name="lock")

Limit = Annotated[int, typer.Option("-n", "--limit", min=0, help="Show the newest N (0: all).")]
AppFilter = Annotated[str | None, typer.Option("--app", help="Only this app.")]
AppName = Annotated[
    str | None, typer.Option("--app", help="The app (default: the one the spec names).")
]


@app.command()
def history(
    file: SpecFile = None,
    app_name: AppFilter = None,
    limit: Limit = 20,
    as_json: Json = False,
) -> None:
    """List releases, newest first."""
    from immute.client.state import history as read_history

    rows = read_history(file, app=app_name, limit=limit or None)
    if as_json:
        _print_json(rows)
        return
    columns = ("app", "release", "status", "image", "config", "revision", "by", "at", "message")
    _print_table(
        "Releases",
        columns,
        [
            (
                r["app"],
                _release_name(r),
                r["status"],
                _short(r["image_digest"]),
                _short(r["config_digest"]),
                _short_revision(r["source_revision"]),
                r["created_by"],
                _when(r["created_at"]),
                r["message"],
            )
            for r in rows
        ],
    )


@app.command()
def audit(file: SpecFile = None, limit: Limit = 50, as_json: Json = False) -> None:
    """List audit entries (who did what, and how it ended), newest first."""
    from immute.client.state import audit as read_audit

    rows = read_audit(file, limit=limit or None)
    if as_json:
        _print_json(rows)
        return
    columns = ("at", "who", "action", "target", "outcome", "detail")
    _print_table(
        "Audit", columns, [tuple(_when(r[c]) if c == "at" else r[c] for c in columns) for r in rows]
    )


@lock_app.command("status")
def lock_status(file: SpecFile = None, app_name: AppFilter = None, as_json: Json = False) -> None:
    """Show who holds the deploy lock, for how long, and whether its holder is gone."""
    from immute.client.state import lock_status as read_locks

    rows = read_locks(file, app=app_name)
    if as_json:
        _print_json(rows)
    elif not rows:
        typer.echo("no lock is held")
    else:
        columns = ("app", "holder", "host", "pid", "held for", "state", "message")
        _print_table("Deploy locks", columns, [_lock_row(r) for r in rows])


@lock_app.command("acquire")
def lock_acquire(
    message: Annotated[str, typer.Option("-m", "--message", help="Why you hold it.")],
    app_name: AppName = None,
    file: SpecFile = None,
    destination: Destination = None,
) -> None:
    """Take the lock by hand: deploys wait until you release it. It is held by you,
    not by a process, so it never goes stale."""
    from immute.client.state import lock_acquire as acquire

    lock = acquire(file, destination=destination, app=app_name, message=message)
    typer.echo(f"locked {lock['app']}: {message}")


@lock_app.command("release")
def lock_release(
    app_name: AppName = None,
    file: SpecFile = None,
    destination: Destination = None,
    force: Annotated[
        bool, typer.Option("--force", help="Break a lock someone else holds.")
    ] = False,
) -> None:
    """Release the lock you took; --force breaks anyone's."""
    from immute.client.state import lock_release as release

    lock = release(file, destination=destination, app=app_name, force=force)
    typer.echo(
        f"released the lock on {lock['app']}, held by {lock['holder']} for {lock['held_for']}"
    )


def _lock_row(row: dict[str, object]) -> tuple[object, ...]:
    pid = "manual" if row["manual"] else row["pid"]
    state = "stale (holder gone)" if row["stale"] else "held"
    return (row["app"], row["holder"], row["host"], pid, row["held_for"], state, row["message"])


def _print_json(rows: object) -> None:
    typer.echo(json.dumps(rows, indent=2))


def _print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console().print(table)


def _release_name(row: dict[str, object]) -> str:
    rollback = row["rollback_of"]
    return f"{row['name']} (rollback to v{rollback})" if rollback is not None else str(row["name"])


def _short_revision(revision: object) -> str:
    """A git commit as `git log --oneline` shows it, keeping a ``-dirty`` mark."""
    text = str(revision or "")
    commit, dirty, _ = text.partition("-dirty")
    return commit[:10] + dirty


def _short(digest: object) -> str:
    algorithm, _, value = str(digest).partition(":")
    return f"{algorithm}:{value[:12]}" if value else algorithm[:19]


def _when(iso: object) -> str:
    return str(iso)[:19].replace("T", " ") + "Z"
