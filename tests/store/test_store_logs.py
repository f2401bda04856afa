"""The central log store: atomic appends with cursors, queries, follow positions, retention."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from immute.core.instances import InstanceLabels, LogBatch, LogLine, LogStream
from immute.errors import StateError
from immute.store import LogAppend, ShipCursor, Store
from immute.store.database import DATABASE_NAME
from store.support import FakeClock

T0 = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)


def labels(
    instance: str, *, release: str = "v1", process: str = "web", app: str = "shop"
) -> InstanceLabels:
    return InstanceLabels(instance, app, process, release, "sha256:" + "d" * 64)


def batch(
    who: InstanceLabels,
    texts: list[str],
    *,
    cursor: str,
    at: datetime = T0,
    stream: LogStream = "stdout",
    complete: bool = False,
) -> LogBatch:
    lines = tuple(LogLine(who.instance_id, stream, text, at.timestamp()) for text in texts)
    return LogBatch(lines, cursor, complete)


def texts(store: Store, **query: object) -> list[str]:
    return [line.text for line in store.logs.query(**query).lines]  # type: ignore[arg-type]


@pytest.fixture
def shop(store: Store) -> Store:
    """Two releases, two process types, three instances, lines a minute apart."""
    web1, web2 = labels("web-1"), labels("web-2", release="v2")
    worker = labels("wrk-1", process="worker", release="v2")
    store.logs.append(web1, batch(web1, ["v1 boot", "GET /a"], cursor="2", at=T0), previous="")
    store.logs.append(
        web2,
        batch(web2, ["v2 boot", "GET /b"], cursor="2", at=T0 + timedelta(minutes=1)),
        previous="",
    )
    store.logs.append(
        worker,
        batch(
            worker, ["job failed: disk"], cursor="1", at=T0 + timedelta(minutes=2), stream="stderr"
        ),
        previous="",
    )
    store.logs.append(
        web1, batch(web1, ["GET /c"], cursor="3", at=T0 + timedelta(minutes=3)), previous="2"
    )
    return store


def test_lines_and_cursor_are_stored_together(store: Store) -> None:
    web = labels("web-1")
    assert store.logs.cursor("shop", "web-1") == ShipCursor("", complete=False)
    stored = store.logs.append(web, batch(web, ["one", "two"], cursor="8:0"), previous="")
    assert stored == ShipCursor("8:0", complete=False)
    assert store.logs.cursor("shop", "web-1") == stored
    done = store.logs.append(
        web, batch(web, ["three"], cursor="14:0", complete=True), previous="8:0"
    )
    assert done == ShipCursor("14:0", complete=True)
    page = store.logs.query(instance="web-1")
    assert [(line.text, line.release, line.process, line.stream) for line in page.lines] == [
        ("one", "v1", "web", "stdout"),
        ("two", "v1", "web", "stdout"),
        ("three", "v1", "web", "stdout"),
    ]
    assert page.lines[0].at == T0


def test_a_batch_from_a_stale_cursor_is_skipped_whole(store: Store) -> None:
    """A shipper that crashed after committing, or a second shipper, re-sends: no duplicate."""
    web = labels("web-1")
    store.logs.append(web, batch(web, ["a", "b"], cursor="2"), previous="")
    again = store.logs.append(web, batch(web, ["a", "b", "c"], cursor="3"), previous="")
    assert again == ShipCursor("2", complete=False)
    store.logs.append(web, batch(web, ["c"], cursor="3", complete=True), previous="2")
    late = store.logs.append(web, batch(web, ["d"], cursor="4"), previous="3")
    assert late == ShipCursor("3", complete=True)
    assert texts(store) == ["a", "b", "c"]


def test_a_failed_transaction_stores_no_line_and_moves_no_cursor(store: Store) -> None:
    web, api = labels("web-1"), labels("api-1")
    store.logs.append(web, batch(web, ["kept"], cursor="1"), previous="")
    good = LogAppend(web, batch(web, ["lost"], cursor="2"), previous="1")
    # An unknown stream fails the second entry after the first one's lines were inserted.
    bad_line = LogLine("api-1", "stdin", "x", T0.timestamp())  # type: ignore[arg-type]
    bad = LogAppend(api, LogBatch((bad_line,), "1"), previous="")
    with pytest.raises(KeyError):
        store.logs.append_many([good, bad])
    assert texts(store) == ["kept"]
    assert store.logs.cursor("shop", "web-1").cursor == "1"
    assert store.logs.cursor("shop", "api-1") == ShipCursor()


def test_append_many_commits_batches_of_several_instances(store: Store) -> None:
    web, api = labels("web-1"), labels("api-1", process="api")
    stored = store.logs.append_many(
        [
            LogAppend(web, batch(web, ["w1"], cursor="1"), previous=""),
            LogAppend(api, batch(api, ["a1"], cursor="1"), previous=""),
            LogAppend(web, batch(web, ["w2"], cursor="2"), previous="1"),
        ]
    )
    assert [s.cursor for s in stored] == ["1", "1", "2"]
    assert texts(store) == ["w1", "a1", "w2"]


def test_a_database_error_is_a_state_error(store: Store, state_dir: Path) -> None:
    web = labels("web-1")
    with closing(sqlite3.connect(state_dir / DATABASE_NAME)) as raw:
        raw.execute(
            "CREATE TRIGGER full BEFORE INSERT ON log_lines BEGIN"
            " SELECT RAISE(ABORT, 'disk full'); END"
        )
        raw.commit()
    with pytest.raises(StateError, match="cannot store log lines: disk full"):
        store.logs.append(web, batch(web, ["x"], cursor="1"), previous="")
    assert store.logs.cursor("shop", "web-1") == ShipCursor()


def test_query_filters(shop: Store) -> None:
    assert texts(shop) == ["v1 boot", "GET /a", "v2 boot", "GET /b", "job failed: disk", "GET /c"]
    assert texts(shop, release="v2") == ["v2 boot", "GET /b", "job failed: disk"]
    assert texts(shop, process="worker") == ["job failed: disk"]
    assert texts(shop, instance="web-1") == ["v1 boot", "GET /a", "GET /c"]
    assert texts(shop, release="v2", process="web") == ["v2 boot", "GET /b"]
    assert texts(shop, app="shop", instance="web-2") == ["v2 boot", "GET /b"]
    assert texts(shop, app="other") == []
    assert texts(shop, instance="nobody") == []


def test_query_since_and_grep(shop: Store) -> None:
    assert texts(shop, since=T0 + timedelta(minutes=2)) == ["job failed: disk", "GET /c"]
    assert texts(shop, since=T0 + timedelta(minutes=1, milliseconds=1)) == [
        "job failed: disk",
        "GET /c",
    ]
    assert texts(shop, grep="GET") == ["GET /a", "GET /b", "GET /c"]
    assert texts(shop, grep="get") == []
    assert texts(shop, grep="%") == []
    assert texts(shop, grep="GET", since=T0 + timedelta(minutes=1)) == ["GET /b", "GET /c"]
    line = shop.logs.query(grep="disk").lines[0]
    assert (line.stream, line.process, line.release) == ("stderr", "worker", "v2")


def test_tail_limit_and_paging_after_an_id(shop: Store) -> None:
    tail = shop.logs.query(limit=2)
    assert [line.text for line in tail.lines] == ["job failed: disk", "GET /c"]
    assert tail.position == 6
    assert texts(shop, limit=None) == texts(shop, limit=100)
    first = shop.logs.query(after_id=0, limit=4)
    assert [line.id for line in first.lines] == [1, 2, 3, 4]
    assert first.position == 4
    rest = shop.logs.query(after_id=first.position, limit=4)
    assert [line.text for line in rest.lines] == ["job failed: disk", "GET /c"]
    assert rest.position == 6
    assert shop.logs.query(after_id=6).lines == []


def test_the_position_skips_lines_that_do_not_match(shop: Store) -> None:
    """Following with a filter resumes past everything stored, matching or not."""
    page = shop.logs.query(process="nothing-like-this")
    assert page.lines == [] and page.position == 6
    follow = shop.logs.query(process="worker", after_id=0, limit=10)
    assert [line.text for line in follow.lines] == ["job failed: disk"]
    assert follow.position == 6
    web = labels("web-1")
    shop.logs.append(web, batch(web, ["later"], cursor="4"), previous="3")
    assert shop.logs.query(process="worker", after_id=follow.position).position == 7


def test_prune_deletes_by_age_and_never_reuses_ids(shop: Store) -> None:
    assert shop.logs.prune(T0 + timedelta(minutes=2)) == 4
    assert texts(shop) == ["job failed: disk", "GET /c"]
    entry = shop.audit.entries(limit=1)[0]
    assert (entry.action, entry.target) == ("logs.prune", "*")
    assert "4 lines before 2026-01-02T03:02:00" in entry.detail
    assert shop.logs.prune(T0 + timedelta(hours=1)) == 2
    assert texts(shop) == []
    assert shop.logs.query().position == 6
    web = labels("web-1")
    shop.logs.append(web, batch(web, ["after retention"], cursor="4"), previous="3")
    assert [line.id for line in shop.logs.query().lines] == [7]


def test_prune_forgets_only_instances_whose_shipping_is_complete(store: Store) -> None:
    done, running = labels("web-1"), labels("web-2")
    store.logs.append(done, batch(done, ["bye"], cursor="1", complete=True), previous="")
    store.logs.append(running, batch(running, ["still here"], cursor="1"), previous="")
    assert store.logs.prune(T0 + timedelta(days=8)) == 2
    assert store.logs.cursor("shop", "web-1") == ShipCursor()
    assert store.logs.cursor("shop", "web-2") == ShipCursor("1", complete=False)


def test_prune_of_one_app_keeps_the_others(store: Store) -> None:
    shop, blog = labels("web-1"), labels("web-1", app="blog")
    store.logs.append(shop, batch(shop, ["shop"], cursor="1"), previous="")
    store.logs.append(blog, batch(blog, ["blog"], cursor="1"), previous="")
    assert store.logs.prune(T0 + timedelta(days=1), app="blog") == 1
    assert texts(store) == ["shop"]
    assert store.audit.entries(limit=1)[0].target == "blog"


def test_prune_works_through_more_lines_than_one_chunk(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("immute.store.logs.PRUNE_CHUNK", 7)
    web = labels("web-1")
    old = [f"old {i}" for i in range(30)]
    store.logs.append(web, batch(web, old, cursor="30"), previous="")
    store.logs.append(
        web, batch(web, ["new"], cursor="31", at=T0 + timedelta(days=1)), previous="30"
    )
    assert store.logs.prune(T0 + timedelta(hours=1)) == 30
    assert texts(store) == ["new"]


def test_line_times_come_from_the_runtime_and_appends_are_not_audited(
    store: Store, clock: FakeClock
) -> None:
    """Line times come from the runtime, not the store's clock: moving it changes nothing."""
    web = labels("web-1")
    clock.advance(days=30)
    store.logs.append(web, batch(web, ["x"], cursor="1"), previous="")
    assert store.logs.query().lines[0].at == T0
    assert [e.action for e in store.audit.entries()] == []
