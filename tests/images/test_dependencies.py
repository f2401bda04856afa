"""A dependency install does not depend on the interpreter path that ran pip."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from immute.images.dependencies import normalise_install


def _install_tree(root: Path, interpreter: str) -> Path:
    script = f"#!{interpreter}\nimport sys\nfrom tool import main\nsys.exit(main())\n".encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(script).digest()).rstrip(b"=").decode()
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(script)
    (root / "tool").mkdir()
    (root / "tool" / "__pycache__").mkdir()
    (root / "tool" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (root / "tool-1.0.dist-info").mkdir()
    record = f"../../bin/tool,sha256={digest},{len(script)}\ntool/__init__.py,sha256=abc,1\n"
    (root / "tool-1.0.dist-info" / "RECORD").write_text(record)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_installs_by_different_interpreters_become_identical(tmp_path: Path) -> None:
    one = _install_tree(tmp_path / "one", "/home/a/.venv/bin/python3.11")
    two = _install_tree(tmp_path / "two", "/opt/other/bin/python")
    normalise_install(one)
    normalise_install(two)
    assert _files(one) == _files(two)
    script = (one / "bin" / "tool").read_bytes()
    assert script.startswith(b"#!/usr/bin/env python3\n")
    record = (one / "tool-1.0.dist-info" / "RECORD").read_text().splitlines()
    digest = base64.urlsafe_b64encode(hashlib.sha256(script).digest()).rstrip(b"=").decode()
    assert record[0] == f"../../bin/tool,sha256={digest},{len(script)}"
    assert record[1] == "tool/__init__.py,sha256=abc,1"
    assert not (one / "tool" / "__pycache__").exists()
