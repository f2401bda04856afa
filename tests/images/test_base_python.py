"""A base image's Python, read from its layers, and dependency layers installed for
it rather than for the host's interpreter. No Docker engine needed: the bases are
hand-made layers in a store."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from images.layer_kit import layer
from images.local_wheels import make_wheel
from immute.core.oci_image import MEDIA_CONFIG, MEDIA_LAYER_TAR, Descriptor, image_manifest
from immute.errors import DependencyError
from immute.images.base_python import BasePython, python_of_layers
from immute.images.builder import build
from immute.images.dependencies import fetch_wheels
from immute.images.inputs import BuildInputs
from immute.images.store import ImageStore

GLIBC_236 = "\x00GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36.\n"


def write_layers(tmp_path: Path, *layers: bytes) -> list[Path]:
    paths = []
    for i, data in enumerate(layers):
        path = tmp_path / f"layer{i}.tar"
        path.write_bytes(data)
        paths.append(path)
    return paths


def debian_layer(minor: int) -> bytes:
    return layer(
        ("file", f"usr/lib/python3.{minor}/os.py", "# stdlib\n"),
        ("symlink", "usr/bin/python3", f"python3.{minor}"),
        ("file", f"usr/bin/python3.{minor}", "elf"),
        ("file", "usr/lib/x86_64-linux-gnu/libc.so.6", GLIBC_236),
    )


def test_debian_python_and_glibc_come_from_the_layers(tmp_path: Path) -> None:
    found = python_of_layers(write_layers(tmp_path, debian_layer(11)), config={})
    assert found == BasePython(11, "x86_64", "glibc", 36)
    assert (found.interpreter, found.platform) == ("cpython-3.11", "glibc-2.36-x86_64")
    tags = found.platforms()
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in tags
    assert {"manylinux2014_x86_64", "manylinux1_x86_64"} <= set(tags)


def test_python_on_path_wins_and_whiteouts_hide_lower_layers(tmp_path: Path) -> None:
    local = layer(
        ("file", "usr/local/lib/python3.12/os.py", "# stdlib\n"),
        ("symlink", "usr/local/bin/python3", "python3.12"),
        ("file", "lib/libc-2.31.so", "elf"),
    )
    config = {"architecture": "arm64", "config": {"Env": ["PATH=/usr/local/bin:/usr/bin"]}}
    paths = write_layers(tmp_path, debian_layer(11), local)
    assert python_of_layers(paths, config=config) == BasePython(12, "aarch64", "glibc", 36)
    removed = layer(("file", "usr/local/lib/.wh.python3.12", ""), ("file", "usr/bin/x", ""))
    paths = write_layers(tmp_path, debian_layer(11), local, removed)
    assert python_of_layers(paths, config=config).minor == 11


def test_musl_and_missing_python(tmp_path: Path) -> None:
    alpine = layer(
        ("file", "usr/lib/python3.12/os.py", "# stdlib\n"),
        ("file", "lib/ld-musl-aarch64.so.1", "elf"),
    )
    found = python_of_layers(write_layers(tmp_path, alpine), config={"architecture": "arm64"})
    assert found.platforms()[0] == "musllinux_1_2_aarch64"
    bare = layer(("file", "usr/bin/sh", "elf"))
    with pytest.raises(DependencyError, match="no Python 3"):
        python_of_layers(write_layers(tmp_path, bare), config={})


def stored_base(store: ImageStore, data: bytes) -> str:
    desc = Descriptor(MEDIA_LAYER_TAR, store.put_bytes(data), len(data))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [desc.digest]},
    }
    config_desc = store.put_json(config)
    manifest = image_manifest(
        Descriptor(MEDIA_CONFIG, config_desc.digest, config_desc.size), [desc]
    )
    return store.put_json(manifest).digest


def layer_names(store: ImageStore, digest: str) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(store.read_bytes(digest)), mode="r:*") as tar:
        return tar.getnames()


def test_dependencies_install_for_the_bases_python_not_the_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The only wheel is for CPython 3.9 on glibc: pip on the host (3.11 or newer)
    cannot take it for itself, and takes it for a Python 3.9 base."""
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinydep", "1.0", tag="cp39-cp39-manylinux_2_17_x86_64")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text("import tinydep\n")
    (app / "requirements.txt").write_text("tinydep==1.0\n")
    store = ImageStore(tmp_path / "store")
    base = stored_base(store, debian_layer(9))
    inputs = BuildInputs(
        app="stacked",
        context=app,
        processes={"web": ["python3", "app.py"]},
        dependency_files=("requirements.txt",),
        stack=base,
    )
    result = build(store, inputs)
    assert result.stack_digest == base
    assert result.python == {"interpreter": "cpython-3.9", "platform": "glibc-2.36-x86_64"}
    (deps,) = [layer for layer in result.layers if layer.role == "dependencies"]
    assert "opt/immute/deps/tinydep/__init__.py" in layer_names(store, deps.digest)
    config = store.read_json(store.manifest(result.manifest_digest).config.digest)
    assert config["config"]["Labels"]["dev.immute.stack-digest"] == base
    assert "PYTHONPATH=/opt/immute/deps" in config["config"]["Env"]

    host = inputs._replace(stack="host")
    with pytest.raises(DependencyError, match="tinydep"):
        build(store, host)

    house = tmp_path / "wheelhouse"
    target = BasePython(9, "x86_64", "glibc", 36)
    fetched = fetch_wheels(
        python=inputs.python,
        context=app,
        files=["requirements.txt"],
        wheelhouse=house,
        target=target,
    )
    assert fetched == ["tinydep-1.0-cp39-cp39-manylinux_2_17_x86_64.whl"]
