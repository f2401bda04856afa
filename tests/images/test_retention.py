"""Retention of images through releases: which images prune keeps, and which
releases `immute images` shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from images.image_testkit import build_here, immute, write_app
from immute.core.image_retention import images_in_use, retained_images
from immute.core.release import Release, ReleaseStatus
from immute.store import Store


def _release(app: str, number: int, image: str, status: ReleaseStatus = "superseded") -> Release:
    return Release(
        app=app,
        number=number,
        image_digest=image,
        config_digest="sha256:" + "c" * 64,
        spec_digest="sha256:" + "s" * 64,
        source_revision=None,
        created_by="t",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        message="",
        status=status,
        rollback_of=None,
    )


def test_retention_keeps_the_newest_releases_images_and_any_live_one() -> None:
    history = [_release("shop", n, f"img{n}") for n in range(1, 6)]
    history[0] = _release("shop", 1, "img1", status="active")  # rolled back to v1's image
    history.append(_release("blog", 1, "blog1"))
    assert retained_images(history, keep=2) == {"img5", "img4", "img1", "blog1"}
    assert retained_images(history, keep={"shop": 1, "blog": 0}) == {"img5", "img1"}
    used = images_in_use([*history, _release("shop", 6, "img5")])
    assert used["img5"] == ["shop v6", "shop v5"]


def test_prune_keeps_images_of_retained_releases_and_images_lists_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = write_app(tmp_path / "shop", requirements=None)
    (app / "immute.yaml").write_text((app / "immute.yaml").read_text() + "retain:\n  images: 1\n")
    images = []
    for version in (1, 2, 3):
        (app / "app.py").write_text(f"print({version})\n")
        images.append(build_here(app, {}, monkeypatch)["manifest_digest"])
    with Store.open(app / ".immute") as store:
        for number, image in enumerate(images[:2], start=1):
            store.releases.create(
                "demo", image_digest=image, config_digest=image, spec_digest=image
            )
            store.releases.set_status("demo", number, "active")
            if number == 1:
                store.releases.set_status("demo", number, "superseded")
    listed = {row["digest"]: row for row in json.loads(immute("images", "--json", cwd=app).stdout)}
    assert listed[images[0]]["releases"] == ["demo v1"]
    assert listed[images[1]]["releases"] == ["demo v2"]
    assert listed[images[2]]["releases"] == [] and listed[images[2]]["names"] == ["demo:latest"]
    report = json.loads(immute("prune", "--json", cwd=app).stdout)
    # retain.images = 1: v2 (newest, active) is kept, v1's image is collected.
    assert report["images"] == [images[0]]
    remaining = {row["digest"] for row in json.loads(immute("images", "--json", cwd=app).stdout)}
    assert remaining == {images[1], images[2]}
