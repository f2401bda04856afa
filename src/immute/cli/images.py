"""``immute build``, ``immute images``, ``immute image ...``, ``immute deps fetch``
and ``immute prune``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from immute.cli import build_command
from immute.cli.build_command import human_size
from immute.cli.options import Destination, Json, Runtime, SpecFile

image_app = typer.Typer(help="Export, import, verify and unpack images.", no_args_is_help=True)
deps_app = typer.Typer(help="The app's dependencies, for offline builds.", no_args_is_help=True)

Ref = Annotated[str, typer.Argument(help="An image: name (app:tag), digest or digest prefix.")]
Wheelhouse = Annotated[
    str | None,
    typer.Option(
        "--wheelhouse",
        help="Wheel directory (default: $IMMUTE_WHEELHOUSE, else .immute/wheelhouse).",
        show_default=False,
    ),
]


def build(
    file: SpecFile = None,
    destination: Destination = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Install dependencies only from the wheelhouse.")
    ] = False,
    wheelhouse: Wheelhouse = None,
    runtime: Runtime = None,
    as_json: Json = False,
) -> None:
    """Build the app's image reproducibly into the local store."""
    # Its usual invocations skip typer altogether (see cli/build_command.py).
    build_command.build(
        file,
        destination,
        offline=offline,
        wheelhouse=wheelhouse,
        runtime=runtime,
        as_json=as_json,
    )


def images(file: SpecFile = None, as_json: Json = False) -> None:
    """List stored images with their size, age and the releases using them."""
    from immute.client.images import list_images

    rows = list_images(file)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    typer.echo(f"{'NAME':<24} {'DIGEST':<19} {'SIZE':>9}  {'AGE':>6}  RELEASES")
    for row in rows:
        name = ", ".join(row.names) or "-"
        age = "-" if row.age_seconds is None else _age(row.age_seconds)
        releases = ", ".join(row.releases) or "-"
        typer.echo(f"{name:<24} {row.digest[:19]} {human_size(row.size):>9}  {age:>6}  {releases}")


@image_app.command("export")
def export(
    ref: Ref,
    output: Annotated[Path, typer.Option("--output", "-o", help="The tar file to write.")],
    file: SpecFile = None,
) -> None:
    """Write one tar that docker load, podman load and skopeo all accept."""
    from immute.client.images import export as export_image

    digest, tag = export_image(file, ref, output)
    typer.echo(f"wrote {output}: {tag} {digest}")


@image_app.command("import")
def import_(
    archive: Annotated[Path, typer.Argument(help="An OCI or docker-archive tar.")],
    file: SpecFile = None,
) -> None:
    """Take an OCI or docker-archive tar into the store, checking every layer."""
    from immute.client.images import import_

    digest, name = import_(file, archive)
    typer.echo(f"imported {digest}" + (f" ({name})" if name else ""))


@image_app.command("verify")
def verify(ref: Ref, file: SpecFile = None) -> None:
    """Re-hash every blob of an image."""
    from immute.client.images import verify as verify_image

    digest, count = verify_image(file, ref)
    typer.echo(f"{digest}: {count} blobs verified")


@image_app.command("unpack")
def unpack(
    ref: Ref,
    directory: Annotated[Path, typer.Argument(help="Empty or absent target directory.")],
    file: SpecFile = None,
) -> None:
    """Materialise an image's full root filesystem, safely, into DIRECTORY."""
    from immute.client.images import unpack as unpack_image

    digest, report = unpack_image(file, ref, directory)
    typer.echo(f"unpacked {digest} into {directory}: {report.entries} entries")
    for name in report.skipped_special:
        typer.echo(f"  skipped device node or FIFO {name}", err=True)
    for name in report.stripped_setid:
        typer.echo(f"  stripped setuid/setgid from {name}", err=True)


@deps_app.command("fetch")
def fetch(
    file: SpecFile = None, destination: Destination = None, wheelhouse: Wheelhouse = None
) -> None:
    """Download (or build) wheels of every dependency into the wheelhouse."""
    from immute.client.images import fetch_dependencies

    house, wheels = fetch_dependencies(file, destination, wheelhouse)
    typer.echo(f"{house}: {len(wheels)} wheels")


def prune(
    file: SpecFile = None,
    keep: Annotated[
        list[str] | None, typer.Option("--keep", help="Also keep this image (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be deleted; delete nothing.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Delete images and blobs that nothing references, and report the space freed."""
    from immute.client.images import prune_images

    report = prune_images(file, keep=keep or [], dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    verb = "would free" if dry_run else "freed"
    for digest in report.images:
        typer.echo(f"image {digest}")
    typer.echo(
        f"{len(report.images)} images, {len(report.blobs)} blobs, {len(report.roots)} roots: "
        f"{verb} {human_size(report.freed_bytes)}"
    )


def _age(seconds: int) -> str:
    for unit, length in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= length:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def register(app: typer.Typer) -> None:
    app.command()(build)
    app.command()(images)
    app.command()(prune)
    app.add_typer(image_app, name="image")
    app.add_typer(deps_app, name="deps")
