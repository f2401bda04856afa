"""Which images retention keeps: a pure choice over the release history."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from immute.core.release import Release

LIVE_STATUSES = frozenset({"pending", "active"})


def retained_images(releases: Iterable[Release], *, keep: int | Mapping[str, int]) -> set[str]:
    """Image digests of each app's ``keep`` newest releases, and of every pending or
    active release however old (a rollback may have made an old image live again).

    ``keep`` is one count for every app or a count per app (apps not named keep 10).
    """
    by_app: dict[str, list[Release]] = {}
    for release in releases:
        by_app.setdefault(release.app, []).append(release)
    retained: set[str] = set()
    for app, history in by_app.items():
        count = keep if isinstance(keep, int) else keep.get(app, 10)
        newest = sorted(history, key=lambda r: r.number, reverse=True)
        retained.update(r.image_digest for r in newest[: max(count, 0)])
        retained.update(r.image_digest for r in history if r.status in LIVE_STATUSES)
    return retained


def images_in_use(releases: Iterable[Release]) -> dict[str, list[str]]:
    """For each image digest, the releases using it (``app vN``), newest first."""
    used: dict[str, list[str]] = {}
    for release in sorted(releases, key=lambda r: (r.app, -r.number)):
        used.setdefault(release.image_digest, []).append(f"{release.app} {release.name}")
    return used
