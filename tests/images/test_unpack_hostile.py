"""Hostile layers: each is refused or neutralised, and nothing lands outside the root."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from images.image_testkit import immute
from images.layer_kit import Member, docker_archive, layer, store_image
from immute.errors import UnsafeArchiveError
from immute.images.roots import materialise, unpack_image
from immute.images.store import ImageStore
from immute.images.unpack import UnpackReport


class Sandbox:
    """A store, a target root and an ``outside`` tree that must never change."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.outside = base / "outside"
        (self.outside / "dir").mkdir(parents=True)
        (self.outside / "victim.txt").write_text("untouched\n")
        (self.outside / "dir" / "keep.txt").write_text("untouched\n")
        self.store = ImageStore(base / "state" / "images")
        self.target = base / "target"
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, tuple[int, bytes]]:
        """Every path under the sandbox except the target and the store's own files."""
        seen: dict[str, tuple[int, bytes]] = {}
        for dirpath, dirnames, filenames in os.walk(self.base):
            rel = Path(dirpath).relative_to(self.base)
            if rel.parts[:1] in (("target",), ("state",)):
                continue
            for name in [*dirnames, *filenames]:
                if not rel.parts and name in ("target", "state"):
                    continue
                path = Path(dirpath) / name
                info = path.lstat()
                data = path.read_bytes() if stat.S_ISREG(info.st_mode) else b""
                seen[str(rel / name)] = (info.st_mode, data)
        return seen

    def unpack(self, *layers: bytes) -> UnpackReport:
        return unpack_image(self.store, store_image(self.store, list(layers)), self.target)

    def assert_outside_untouched(self) -> None:
        assert self.snapshot() == self.before


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def test_absolute_names_land_inside_the_root(sandbox: Sandbox) -> None:
    outside = str(sandbox.outside)
    sandbox.unpack(layer(("file", f"{outside}/victim.txt", "pwned"), ("file", "/abs.txt", "x")))
    sandbox.assert_outside_untouched()
    assert (sandbox.target / outside.lstrip("/") / "victim.txt").read_text() == "pwned"
    assert (sandbox.target / "abs.txt").read_text() == "x"


@pytest.mark.parametrize(
    "member",
    [
        ("file", "../escape.txt", "pwned"),
        ("file", "a/../../escape.txt", "pwned"),
        ("dir", "../outside/dir"),
        ("file", "../.wh.victim.txt", ""),
    ],
    ids=["dotdot", "nested-dotdot", "dotdot-dir", "whiteout-dotdot"],
)
def test_dotdot_entries_are_refused_naming_the_entry(sandbox: Sandbox, member: Member) -> None:
    with pytest.raises(UnsafeArchiveError, match=r"\.\./"):
        sandbox.unpack(layer(("file", "ok.txt", "fine"), member))
    sandbox.assert_outside_untouched()
    assert not (sandbox.base / "escape.txt").exists()


def test_write_through_an_absolute_symlink_lands_inside_the_root(sandbox: Sandbox) -> None:
    outside = str(sandbox.outside)
    sandbox.unpack(
        layer(("symlink", "link", outside), ("file", "link/victim.txt", "pwned")),
        layer(("file", "link/dir/new.txt", "pwned in a later layer")),
    )
    sandbox.assert_outside_untouched()
    inside = sandbox.target / outside.lstrip("/")
    assert (inside / "victim.txt").read_text() == "pwned"
    assert (inside / "dir" / "new.txt").read_text() == "pwned in a later layer"
    assert os.readlink(sandbox.target / "link") == outside


def test_write_through_a_relative_symlink_climbing_out_lands_inside_the_root(
    sandbox: Sandbox,
) -> None:
    outside_rel = str(sandbox.outside).lstrip("/")
    climb = "../" * (len(sandbox.target.parts) + 3)
    sandbox.unpack(
        layer(
            ("dir", "deep"),
            ("symlink", "deep/up", climb.rstrip("/")),
            ("file", f"deep/up/{outside_rel}/victim.txt", "pwned"),
            ("symlink", "hop", "deep/up/tmp"),
            ("file", "hop/x.txt", "via a chain of links"),
        )
    )
    sandbox.assert_outside_untouched()
    assert (sandbox.target / outside_rel / "victim.txt").read_text() == "pwned"
    assert (sandbox.target / "tmp" / "x.txt").read_text() == "via a chain of links"


def test_a_file_replaces_a_symlink_instead_of_writing_through_it(sandbox: Sandbox) -> None:
    victim = str(sandbox.outside / "victim.txt")
    sandbox.unpack(layer(("symlink", "victim", victim)), layer(("file", "victim", "pwned")))
    sandbox.assert_outside_untouched()
    assert not (sandbox.target / "victim").is_symlink()
    assert (sandbox.target / "victim").read_text() == "pwned"


@pytest.mark.parametrize(
    "members",
    [
        [("hardlink", "hl", "../outside/victim.txt")],
        [("hardlink", "hl", "PLACEHOLDER/victim.txt")],
        [("symlink", "d", "PLACEHOLDER"), ("hardlink", "hl", "d/victim.txt")],
    ],
    ids=["dotdot", "absolute-host-path", "through-symlink"],
)
def test_hard_links_to_outside_the_root_are_refused_naming_the_entry(
    sandbox: Sandbox, members: list[Member]
) -> None:
    outside = str(sandbox.outside)
    members = [tuple(part.replace("PLACEHOLDER", outside) for part in m) for m in members]
    with pytest.raises(UnsafeArchiveError, match="'hl' is a hard link"):
        sandbox.unpack(layer(*members))
    sandbox.assert_outside_untouched()
    assert (sandbox.outside / "victim.txt").stat().st_nlink == 1


def test_hard_links_inside_the_root_work(sandbox: Sandbox) -> None:
    sandbox.unpack(layer(("file", "a.txt", "same"), ("hardlink", "b.txt", "a.txt")))
    assert (sandbox.target / "a.txt").stat().st_ino == (sandbox.target / "b.txt").stat().st_ino


def test_device_nodes_and_fifos_are_not_created_and_setid_bits_are_stripped(
    sandbox: Sandbox,
) -> None:
    report = sandbox.unpack(
        layer(
            ("chr", "dev/null"),
            ("fifo", "pipe"),
            ("file", "bin/su", "#!/bin/sh\n", "6755"),
            ("file", "bin/ok", "#!/bin/sh\n", "0755"),
        )
    )
    assert sorted(report.skipped_special) == ["dev/null", "pipe"]
    assert report.stripped_setid == ["bin/su"]
    assert not (sandbox.target / "dev" / "null").exists()
    assert not (sandbox.target / "pipe").exists()
    assert stat.S_IMODE((sandbox.target / "bin" / "su").stat().st_mode) == 0o755
    assert stat.S_IMODE((sandbox.target / "bin" / "ok").stat().st_mode) == 0o755


def test_whiteouts_remove_lower_entries_but_never_outside(sandbox: Sandbox) -> None:
    outside = str(sandbox.outside)
    sandbox.unpack(
        layer(
            ("file", "etc/a", "a"),
            ("file", "etc/b", "b"),
            ("file", "var/old/x", "x"),
            ("symlink", "link", outside),
        ),
        layer(
            ("file", "var/new", "y"),
            ("file", "etc/.wh.a", ""),
            ("file", "var/.wh..wh..opq", ""),
            ("file", "link/.wh.victim.txt", ""),
            ("file", "link/dir/.wh..wh..opq", ""),
        ),
    )
    sandbox.assert_outside_untouched()
    assert sorted(os.listdir(sandbox.target / "etc")) == ["b"]
    assert sorted(os.listdir(sandbox.target / "var")) == ["new"]


def test_import_refuses_a_hostile_archive_and_stores_nothing(tmp_path: Path) -> None:
    archive = docker_archive(
        tmp_path / "hostile.tar",
        [layer(("file", "ok.txt", "fine")), layer(("file", "../../escape.txt", "pwned"))],
    )
    result = immute("image", "import", str(archive), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "'../../escape.txt'" in result.stderr and "refused" in result.stderr
    blobs = tmp_path / ".immute" / "images" / "blobs" / "sha256"
    assert list(blobs.iterdir()) == []
    assert not (tmp_path.parent / "escape.txt").exists()


def test_import_checks_that_layers_match_their_diff_ids(tmp_path: Path) -> None:
    from immute.errors import ImageError
    from immute.images.archive import import_archive

    archive = docker_archive(tmp_path / "ok.tar", [layer(("file", "ok.txt", "fine"))])
    store = ImageStore(tmp_path / "images")
    digest, name = import_archive(store, archive)
    assert name == "hostile:1"
    assert store.resolve("hostile:1") == digest
    tampered = tmp_path / "tampered.tar"
    data = archive.read_bytes().replace(b"fine", b"evil")
    tampered.write_bytes(data)
    with pytest.raises(ImageError, match="diff id"):
        import_archive(ImageStore(tmp_path / "other"), tampered)


def test_materialised_roots_are_shared_and_read_only(sandbox: Sandbox) -> None:
    digest = store_image(sandbox.store, [layer(("file", "app/main.py", "print(1)\n"))])
    first: Callable[[], Path] = lambda: materialise(sandbox.store, digest)  # noqa: E731
    root = first()
    assert root == first()
    assert root.name == digest.removeprefix("sha256:")
    assert (root / "app" / "main.py").read_text() == "print(1)\n"
    for path in (root, root / "app", root / "app" / "main.py"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0


def test_concurrent_materialisations_share_one_root(sandbox: Sandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    digest = store_image(sandbox.store, [layer(("file", "app/main.py", "print(1)\n"))])
    with ThreadPoolExecutor(max_workers=4) as pool:
        roots = set(pool.map(lambda _: materialise(sandbox.store, digest), range(8)))
    assert len(roots) == 1
    assert [p.name for p in roots.pop().parent.iterdir()] == [digest.removeprefix("sha256:")]
