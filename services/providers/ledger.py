"""The ledger writer: every call's usage row (and its budget settlement) is written by one
task that group-commits whatever has queued up, so concurrent calls share a transaction and
an fsync instead of each paying for its own.

Two modes (``providers.ledger_mode``):

- ``durable`` (default): a call's answer waits until its row is committed. Nothing answered
  is ever missing from the ledger, even after a SIGKILL.
- ``write_behind``: the answer goes out first; rows are committed within moments. A clean
  stop drains the queue; a hard kill can lose the rows of the last few milliseconds (their
  budget holds are then released at the next start, booking no spend).

The queue is bounded: when it is full, callers wait (backpressure), memory stays flat. A
batch that cannot be written is retried once, then its rows are logged in full (so they can
be recovered from the log) and counted in ``ledger_write_failures_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import insert
from sqlmodel import Session

from services.kit.database import SliceDatabase
from services.providers import budgets
from services.providers.models import UsageRecord

log = structlog.get_logger("providers.ledger")
LedgerMode = Literal["durable", "write_behind"]


@dataclass
class _Entry:
    row: dict[str, Any]
    settle: tuple[budgets.Reservation, int] | None
    done: asyncio.Future[None] | None = field(default=None)


class LedgerWriter:
    def __init__(
        self,
        db: SliceDatabase,
        *,
        mode: LedgerMode,
        max_queue: int,
        max_batch: int,
        registry: CollectorRegistry,
    ) -> None:
        self.db = db
        self.mode = mode
        self.max_batch = max_batch
        self.queue: asyncio.Queue[_Entry] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None
        self.failures = Counter(
            "ledger_write_failures_total",
            "Ledger rows that could not be written (logged in full instead)",
            registry=registry,
        )
        self.batch_size = Histogram(
            "ledger_batch_rows",
            "Rows per ledger transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=registry,
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Write everything still queued, then stop."""
        await self.queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def record(
        self, row: dict[str, Any], *, settle: tuple[budgets.Reservation, int] | None = None
    ) -> None:
        """Queue one usage row (and the settlement of its budget hold)."""
        row.setdefault("created_at", datetime.now(UTC))
        entry = _Entry(row, settle)
        if self.mode == "durable":
            entry.done = asyncio.get_running_loop().create_future()
        await self.queue.put(entry)  # waits when the queue is full
        if entry.done is not None:
            await entry.done

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            error: BaseException | None = None
            for _attempt in range(2):
                try:
                    await self.db.run(lambda s, b=batch: _write(s, b))  # type: ignore[misc]
                    error = None
                    break
                except Exception as exc:
                    error = exc
            self.batch_size.observe(len(batch))
            if error is not None:
                self.failures.inc(len(batch))
                log.error("ledger_write_failed", error=repr(error), rows=[e.row for e in batch])
            for entry in batch:
                # The call itself succeeded and was paid for: its answer still goes out.
                if entry.done is not None and not entry.done.done():
                    entry.done.set_result(None)
                self.queue.task_done()


def _write(session: Session, batch: list[_Entry]) -> None:
    session.execute(insert(UsageRecord), [e.row for e in batch])
    for entry in batch:
        if entry.settle is not None:
            reservation, actual = entry.settle
            budgets.settle(session=session, reservation=reservation, actual_nusd=actual)
