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

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import insert
from sqlmodel import Session

from services.kit.database import SliceDatabase
from services.kit.group_commit import GroupCommitter
from services.kit.outbox import add_event
from services.providers import budgets
from services.providers.models import UsageRecord

log = structlog.get_logger("providers.ledger")
LedgerMode = Literal["durable", "write_behind"]


@dataclass
class _Entry:
    row: dict[str, Any]
    settle: tuple[budgets.Reservation, int] | None


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
        self.writer: GroupCommitter[_Entry, None] = GroupCommitter(
            db,
            self._write,
            max_queue=max_queue,
            max_batch=max_batch,
            attempts=2,  # a batch that cannot be written is retried once
            on_failure=self._lost,
        )
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
        self.writer.start()

    async def stop(self) -> None:
        """Write everything still queued, then stop."""
        await self.writer.stop()

    async def record(
        self, row: dict[str, Any], *, settle: tuple[budgets.Reservation, int] | None = None
    ) -> None:
        """Queue one usage row (and the settlement of its budget hold); in durable mode,
        return once it is committed. A full queue makes callers wait (backpressure)."""
        row.setdefault("created_at", datetime.now(UTC))
        done = await self.writer.enqueue(_Entry(row, settle))
        if self.mode == "durable":
            await done

    def _write(self, session: Session, batch: list[_Entry]) -> list[None]:
        """The batch's rows, events and settlements, in the committer's transaction."""
        self.batch_size.observe(len(batch))
        _write(session, batch)
        return [None] * len(batch)

    def _lost(self, batch: list[_Entry], exc: Exception) -> list[None]:
        """A batch that could not be written twice: its rows are logged in full (to be
        recovered from the log) and counted, and the calls they describe still answer:
        they succeeded and were paid for."""
        self.failures.inc(len(batch))
        log.error("ledger_write_failed", error=repr(exc), rows=[e.row for e in batch])
        return [None] * len(batch)


EVENT_FIELDS = (
    "request_id", "caller", "session_id", "api_key_id", "requested_model", "model",
    "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "outcome", "streamed",
)  # fmt: skip


def _write(session: Session, batch: list[_Entry]) -> None:
    session.execute(insert(UsageRecord), [e.row for e in batch])
    for entry in batch:
        kind = (
            "providers.budget_exceeded"
            if entry.row.get("outcome") == "budget_exceeded"
            else "providers.usage_recorded"
        )
        add_event(session, kind, kind, {k: entry.row.get(k) for k in EVENT_FIELDS})
    for entry in batch:
        if entry.settle is not None:
            reservation, actual = entry.settle
            budgets.settle(session=session, reservation=reservation, actual_nusd=actual)
