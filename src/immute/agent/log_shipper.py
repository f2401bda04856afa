"""Shipping instances' lines from the runtime into the central log store.

One asyncio task per instance reads batches from the runtime; one writer
commits whatever batches are waiting in a single transaction, each with its
cursor, on a thread of its own so that the agent's event loop never waits on
SQLite. A task resumes from the cursor stored for its instance, so after an
agent crash shipping continues exactly after the last stored line. Failures
are logged to the agent's own log (never to the store) and retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from immute.core.instances import InstanceLabels
from immute.errors import ImmuteError, NotFoundError
from immute.runtimes.base import Runtime
from immute.store import LogAppend, ShipCursor, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_INTERVAL = 0.2
"""How long a task waits for more output after reading everything its instance wrote."""

BATCH_LINES = 1000
FLUSH_TIMEOUT = 10.0
RETRY_INTERVAL = 1.0
"""Pause after a failed read or commit, so a wedged database is not hammered."""


class LogShipper:
    """Copies every instance's lines from ``runtime`` into the store in ``state_dir``.

    Use as an async context manager; :meth:`ship` (or :meth:`follow`, by id)
    starts an instance's task, :meth:`finish` (or :meth:`flush`) waits until a
    stopped instance's lines are all stored. ``follow`` and ``flush`` fit the
    agent's ``LogHooks``: stop an instance, flush it, then remove it.
    """

    def __init__(
        self,
        runtime: Runtime,
        state_dir: Path,
        *,
        interval: float = POLL_INTERVAL,
        batch_lines: int = BATCH_LINES,
    ) -> None:
        self._runtime = runtime
        self._state_dir = state_dir
        self._interval = interval
        self._batch_lines = batch_lines
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._queue: asyncio.Queue[tuple[LogAppend, asyncio.Future[ShipCursor]]] = asyncio.Queue()
        # One thread owns the SQLite connection: sqlite3 objects stay in their thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-shipper")
        self._store: Store | None = None
        self._writer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LogShipper:
        self._store = await self._run(partial(Store.open, self._state_dir))
        self._writer = asyncio.create_task(self._write_forever(), name="log-writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def ship(self, labels: InstanceLabels) -> asyncio.Task[None]:
        """Start shipping an instance's lines (again after a restart); idempotent.

        The task ends once the instance has exited and all it wrote is stored,
        or when the runtime no longer knows the instance.
        """
        return self._start(labels.instance_id, lambda: self._ship(labels))

    def follow(self, instance_id: str) -> None:
        """:meth:`ship` for an instance known by id: its labels come from the runtime."""
        self._start(instance_id, lambda: self._ship_by_id(instance_id))

    async def flush(self, instance_id: str, *, timeout: float = FLUSH_TIMEOUT) -> None:
        """Once the instance has stopped: return when all it wrote is stored.

        Starts shipping it if nothing did (an instance adopted after a restart).
        Gives up after ``timeout`` seconds, leaving the rest for the next agent.
        """
        self.follow(instance_id)
        if not await self.finish(instance_id, timeout=timeout):
            log.warning("logs of %s not all stored after %.0fs", instance_id, timeout)

    def _start(
        self, instance_id: str, shipping: Callable[[], Coroutine[object, object, None]]
    ) -> asyncio.Task[None]:
        task = self._tasks.get(instance_id)
        if task is None or task.done():
            task = asyncio.create_task(shipping(), name=f"logs-{instance_id}")
            task.add_done_callback(_report_failure)
            self._tasks[instance_id] = task
        return task

    def shipping(self) -> list[str]:
        """Ids of the instances whose lines are still being shipped."""
        return sorted(i for i, task in self._tasks.items() if not task.done())

    async def finish(self, instance_id: str, *, timeout: float) -> bool:
        """Wait until the instance's task ended (call after stopping the instance).

        Returns False when it is still shipping after ``timeout`` seconds.
        """
        task = self._tasks.get(instance_id)
        if task is None:
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return bool(done)

    async def close(self) -> None:
        """Stop every task; what was committed stays, the rest is shipped next time."""
        tasks = [*self._tasks.values(), *([self._writer] if self._writer else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._writer = None
        if self._store is not None:
            await self._run(self._store.close)
            self._store = None
        self._executor.shutdown(wait=True)

    async def _ship_by_id(self, instance_id: str) -> None:
        for info in await self._runtime.observe():
            if info.instance_id == instance_id:
                await self._ship(info.labels)
                return
        log.info("instance %s is unknown to the runtime: no logs to ship", instance_id)

    async def _ship(self, labels: InstanceLabels) -> None:
        logs = self._opened().logs
        stored = await self._run(partial(logs.cursor, labels.app, labels.instance_id))
        while not stored.complete:
            try:
                batch = await self._runtime.read_logs(
                    labels.instance_id, cursor=stored.cursor, limit=self._batch_lines
                )
                if batch.lines or batch.complete or batch.cursor != stored.cursor:
                    stored = await self._commit(LogAppend(labels, batch, stored.cursor))
            except NotFoundError:
                log.info("instance %s is gone: shipping its logs stops", labels.instance_id)
                return
            except (ImmuteError, OSError) as exc:
                log.warning("shipping logs of %s failed, retrying: %s", labels.instance_id, exc)
                await asyncio.sleep(RETRY_INTERVAL)
                continue
            if len(batch.lines) < self._batch_lines and not stored.complete:
                await asyncio.sleep(self._interval)

    async def _commit(self, entry: LogAppend) -> ShipCursor:
        done: asyncio.Future[ShipCursor] = asyncio.get_running_loop().create_future()
        await self._queue.put((entry, done))
        return await done

    async def _write_forever(self) -> None:
        """Commit every waiting batch in one transaction: fewer, larger transactions."""
        while True:
            waiting = [await self._queue.get()]
            while not self._queue.empty():
                waiting.append(self._queue.get_nowait())
            entries = [entry for entry, _ in waiting]
            try:
                stored = await self._run(partial(self._opened().logs.append_many, entries))
            except Exception as exc:
                for _, done in waiting:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), cursor in zip(waiting, stored, strict=True):
                if not done.done():
                    done.set_result(cursor)

    def _opened(self) -> Store:
        if self._store is None:
            raise RuntimeError("LogShipper used outside `async with`")
        return self._store

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("log shipping task %s failed", task.get_name(), exc_info=task.exception())
