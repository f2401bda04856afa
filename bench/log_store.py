"""What the central log store costs per line, beside SQLite's own floor.

Run: .venv/bin/python bench/log_store.py [--lines N] [--batch B] [--instances I]

Appends N lines from I instances in batches of B through ``store.logs.append``
(lines and cursor in one transaction, with the schema's indexes) and, side by
side in the same run, into a bare table with no index and no cursor, one
transaction per batch (the floor for rows in SQLite). Then times the queries
``immute logs`` makes on that volume, and retention deleting half of it.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from immute.core.instances import InstanceLabels, LogBatch, LogLine
from immute.store import Store

START = datetime(2026, 1, 1, tzinfo=UTC)
TEXT = "GET /orders/{n} 200 3.2ms user=42 trace=5f0c8e1a request handled by worker"


def batches(lines: int, batch: int, instances: int) -> list[tuple[InstanceLabels, LogBatch]]:
    """Batches in the order shippers would deliver them, one second apart per batch."""
    out = []
    for first in range(0, lines, batch):
        n = first // batch
        labels = InstanceLabels(f"web-{n % instances}", "bench", "web", f"v{1 + n % 3}", "sha256:b")
        at = (START + timedelta(seconds=n)).timestamp()
        rows = tuple(
            LogLine(labels.instance_id, "stdout", TEXT.format(n=i), at)
            for i in range(first, min(first + batch, lines))
        )
        out.append((labels, LogBatch(rows, cursor=str(first + len(rows)))))
    return out


def through_store(state_dir: Path, work: list[tuple[InstanceLabels, LogBatch]]) -> float:
    cursors: dict[str, str] = {}
    with Store.open(state_dir) as store:
        began = time.perf_counter()
        for labels, batch in work:
            stored = store.logs.append(labels, batch, previous=cursors.get(labels.instance_id, ""))
            cursors[labels.instance_id] = stored.cursor
        return time.perf_counter() - began


def bare_table(path: Path, work: list[tuple[InstanceLabels, LogBatch]]) -> float:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE lines (instance TEXT, at REAL, stream TEXT, text TEXT)")
        began = time.perf_counter()
        for _, batch in work:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO lines VALUES (?, ?, ?, ?)",
                [(line.instance_id, line.at, line.stream, line.text) for line in batch.lines],
            )
            conn.execute("COMMIT")
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=12)
    args = parser.parse_args()
    work = batches(args.lines, args.batch, args.instances)
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp) / "state"
        ours = through_store(state_dir, work)
        floor = bare_table(Path(tmp) / "bare.db", work)
        print(f"append {args.lines} lines in batches of {args.batch}, {args.instances} instances")
        print(f"  log store : {args.lines / ours:>10,.0f} lines/s  ({ours:.2f} s)")
        print(f"  bare table: {args.lines / floor:>10,.0f} lines/s  ({floor:.2f} s)")
        print(f"  ratio     : {ours / floor:.2f}x the floor's time")
        size = sum(f.stat().st_size for f in state_dir.glob("state.db*"))
        print(f"  database  : {size / args.lines:.0f} bytes per line ({len(TEXT)} chars of text)")
        half = START + timedelta(seconds=len(work) // 2)
        queries: dict[str, Callable[[Store], object]] = {
            "tail 100": lambda s: s.logs.query(limit=100),
            "tail 100 of one instance": lambda s: s.logs.query(instance="web-3", limit=100),
            "tail 100 of one release": lambda s: s.logs.query(release="v2", limit=100),
            "tail 100 since the middle": lambda s: s.logs.query(since=half, limit=100),
            "grep, rare match": lambda s: s.logs.query(grep="/orders/4242 ", limit=100),
            "follow from the middle, 1000": lambda s: s.logs.query(
                after_id=args.lines // 2, limit=1000
            ),
        }
        with Store.open(state_dir) as store:
            print("queries")
            for name, query in queries.items():
                began = time.perf_counter()
                query(store)
                seconds = time.perf_counter() - began
                print(f"  {name:<30} {seconds * 1000:8.1f} ms")
            began = time.perf_counter()
            pruned = store.logs.prune(half)
            seconds = time.perf_counter() - began
            print(f"prune {pruned} lines: {seconds:.2f} s ({pruned / seconds:,.0f} lines/s)")


if __name__ == "__main__":
    main()
