"""Group commit: many concurrent writers share one transaction (and one fsync).

A single task takes whatever has queued up (up to ``max_batch`` items), writes it in one
transaction with ``write_batch`` and hands each writer its own result. A writer's
``submit`` returns only after its item is committed, so nothing acknowledged is lost; the
queue is bounded, so a stalled disk slows writers down instead of growing memory.

Each batch is one unit of work (``SliceDatabase.run``): ``write_batch`` only adds and
flushes, the committer commits. A batch that fails is tried again as a new unit up to
``attempts`` times in all; then ``on_failure(items, error)`` gives the writers their
results anyway (e.g. the ledger logs the rows and lets the calls answer), or, without it,
every writer of the batch gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlmodel import Session

from services.kit.database import SliceDatabase

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitter(Generic[T, R]):
    def __init__(
        self,
        db: SliceDatabase,
        write_batch: Callable[[Session, list[T]], Sequence[R]],
        *,
        max_queue: int = 10_000,
        max_batch: int = 256,
        attempts: int = 1,
        on_failure: Callable[[list[T], Exception], Sequence[R]] | None = None,
    ) -> None:
        self.db = db
        self.write_batch = write_batch
        self.max_batch = max_batch
        self.attempts = max(1, attempts)
        self.on_failure = on_failure
        self.queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        await self.queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def enqueue(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` (waiting while the queue is full); a future of its result."""
        if self._task is None or self._task.done():
            raise RuntimeError("the group committer is not running")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self.queue.put((item, future))
        return future

    async def submit(self, item: T) -> R:
        """Queue ``item``; its result once committed."""
        return await asyncio.shield(await self.enqueue(item))

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            items = [item for item, _ in batch]
            try:
                results = await self._commit(items)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            for _ in batch:
                self.queue.task_done()

    async def _commit(self, items: list[T]) -> Sequence[R]:
        """Write ``items`` in one unit of work, tried ``attempts`` times."""
        for _ in range(self.attempts - 1):
            with contextlib.suppress(Exception):
                return await self.db.run(lambda s: self.write_batch(s, items))
        try:
            return await self.db.run(lambda s: self.write_batch(s, items))
        except Exception as exc:
            if self.on_failure is None:
                raise
            return self.on_failure(items, exc)
