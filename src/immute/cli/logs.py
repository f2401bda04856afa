"""`immute logs`: what instances wrote, from the central log store."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Annotated

import typer

from immute.cli.options import Json, SpecFileLongOnly

app = typer.Typer()

_COLOURS = ("cyan", "green", "yellow", "blue", "magenta", "bright_cyan", "bright_green")


@app.command()
def logs(
    release: Annotated[
        str | None, typer.Option("--release", help="Only this release (v3 or 3).")
    ] = None,
    process: Annotated[
        str | None, typer.Option("--process", help="Only this process type (web).")
    ] = None,
    instance: Annotated[str | None, typer.Option("--instance", help="Only this instance.")] = None,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only lines from this long ago (10m, 2h) or this time on."),
    ] = None,
    grep: Annotated[
        str | None, typer.Option("--grep", help="Only lines containing this text (exact case).")
    ] = None,
    lines: Annotated[
        int, typer.Option("-n", "--lines", min=0, help="Show the newest N lines first (0: all).")
    ] = 100,
    app_name: Annotated[str | None, typer.Option("--app", help="Only this app.")] = None,
    file: SpecFileLongOnly = None,
    as_json: Json = False,
) -> None:
    """Show what instances wrote to stdout and stderr, also instances long gone."""
    from immute.client.logs import follow_lines, parse_filter, recent_lines

    wanted = parse_filter(
        app=app_name, release=release, process=process, instance=instance, since=since, grep=grep
    )
    colour = not as_json and sys.stdout.isatty()
    try:
        shown, position = recent_lines(file, wanted, limit=lines or None)
        _print(shown, as_json=as_json, colour=colour)
        if follow:
            for batch in follow_lines(file, wanted, after_id=position):
                _print(batch, as_json=as_json, colour=colour)
    except KeyboardInterrupt:
        return
    except BrokenPipeError:
        # The reader (`| head`) is gone: stop quietly, and keep the interpreter's
        # final flush from failing on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _print(rows: Iterable[dict[str, object]], *, as_json: bool, colour: bool) -> None:
    import json

    render = json.dumps if as_json else (lambda row: _human(row, colour=colour))
    sys.stdout.write("".join(f"{render(row)}\n" for row in rows))
    sys.stdout.flush()


def _human(row: dict[str, object], *, colour: bool) -> str:
    """``TIME release process/instance stream | text``, coloured per instance on a terminal."""
    at = str(row["at"]).replace("+00:00", "Z")
    who = f"{row['process']}/{row['instance']}"
    stream = str(row["stream"])
    if colour:
        tint = _COLOURS[sum(str(row["instance"]).encode()) % len(_COLOURS)]
        at = typer.style(at, dim=True)
        who = typer.style(who, fg=tint)
        stream = typer.style(
            stream, fg="red" if stream == "stderr" else None, dim=stream == "stdout"
        )
    return f"{at} {row['release']} {who} {stream} | {row['text']}"
