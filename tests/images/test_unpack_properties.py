"""Property: whatever entries a layer holds, unpacking writes nothing outside the root.

Layers are generated from names, link targets and kinds chosen to collide with one
another and with a real directory outside the root (absolute and relative links,
``..``, whiteouts, hard links), then unpacked; either unpacking refuses the layer
with an ImmuteError, or it finishes; in both cases the outside tree is unchanged."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from images.layer_kit import layer, store_image
from immute.errors import ImmuteError
from immute.images.roots import unpack_image
from immute.images.store import ImageStore

OUTSIDE = Path(tempfile.gettempdir()) / f"immute-property-outside-{os.getpid()}"
SEGMENTS = ["a", "b", "..", ".", "link", ".wh.a", ".wh..wh..opq", str(OUTSIDE).lstrip("/")]


def _name() -> st.SearchStrategy[str]:
    parts = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4)
    return st.tuples(st.booleans(), parts).map(lambda t: ("/" if t[0] else "") + "/".join(t[1]))


def _target() -> st.SearchStrategy[str]:
    return st.one_of(_name(), st.sampled_from(["/", str(OUTSIDE), "../../..", "/etc"]))


_ENTRY = st.one_of(
    st.tuples(st.just("file"), _name(), st.just("pwned")),
    st.tuples(st.just("dir"), _name()),
    st.tuples(st.just("symlink"), _name(), _target()),
    st.tuples(st.just("hardlink"), _name(), _target()),
)


def _snapshot(root: Path) -> dict[str, bytes]:
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            seen[str(path)] = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
    return seen


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=st.lists(st.lists(_ENTRY, min_size=1, max_size=6), min_size=1, max_size=3))
def test_unpacking_never_writes_outside_the_root(layers: list[list[tuple[str, ...]]]) -> None:
    shutil.rmtree(OUTSIDE, ignore_errors=True)
    (OUTSIDE / "a").mkdir(parents=True)
    (OUTSIDE / "a" / "b").write_text("untouched")
    (OUTSIDE / "link").write_text("untouched")
    before = _snapshot(OUTSIDE)
    work = Path(tempfile.mkdtemp(prefix="immute-property-"))
    try:
        store = ImageStore(work / "images")
        digest = store_image(store, [layer(*entries) for entries in layers])
        try:
            unpack_image(store, digest, work / "root")
            event("unpacked")
        except ImmuteError:
            event("refused")
        assert _snapshot(OUTSIDE) == before
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(OUTSIDE, ignore_errors=True)
