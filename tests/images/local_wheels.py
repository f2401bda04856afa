"""Tiny real wheels made on the spot, so dependency tests need no network."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(
    directory: Path, name: str, version: str, *, module_source: str = "", tag: str = "py3-none-any"
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` holding one module and a console script."""
    dist = f"{name}-{version}.dist-info"
    wheel = f"Wheel-Version: 1.0\nGenerator: immute-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    files = {
        f"{name}/__init__.py": (
            module_source or f"VERSION = {version!r}\n\ndef main() -> None:\n    print(VERSION)\n"
        ).encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": wheel.encode(),
        f"{dist}/entry_points.txt": f"[console_scripts]\n{name}-cli = {name}:main\n".encode(),
    }
    record = "\n".join([*(_record_line(n, d) for n, d in files.items()), f"{dist}/RECORD,,", ""])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
        archive.writestr(f"{dist}/RECORD", record)
    return path
