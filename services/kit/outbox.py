"""The transactional outbox: a slice writes its domain event in the same transaction as
the change it describes, and a relay delivers it to the event bus.

``add_event(session, topic, type, payload)`` inserts a row into the slice's own
``outbox`` table inside the caller's transaction: the event exists if and only if the
change was committed. The :class:`OutboxRelay` task sends pending rows to the bus in
batches, oldest first, with their event ids (so a resend after a crash between the bus's
acknowledgement and the row's deletion is a duplicate the bus ignores), and deletes them
once the bus acknowledged. While the bus is away, rows wait on disk and the relay backs
off; nothing is lost.

Event schemas (``type``: payload fields) are documented in ``docs/events.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlmodel import Session

from services.kit.client import ClientPool, SliceClient
from services.kit.database import SliceDatabase
from services.kit.errors import SliceError

log = structlog.get_logger("outbox")
OUTBOX_METADATA = MetaData()
outbox = Table(
    "outbox",
    OUTBOX_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("topic", String(128), nullable=False),
    Column("type", String(128), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(500), nullable=True),
)


def ensure_outbox(db: SliceDatabase) -> None:
    """Create the slice's outbox table if it is not there (the kit owns it)."""
    OUTBOX_METADATA.create_all(db.engine, checkfirst=True)


def add_event(session: Session, topic: str, type_: str, payload: dict[str, Any]) -> str:
    """Record a domain event in the caller's transaction; its id."""
    event_id = uuid.uuid4().hex
    session.execute(
        insert(outbox).values(
            event_id=event_id,
            topic=topic,
            type=type_,
            payload=json.dumps(payload, default=str),
            created_at=datetime.now(UTC),
            attempts=0,
        )
    )
    return event_id


class OutboxRelay:
    """Sends a slice's outbox to the event bus, in order, with retries."""

    def __init__(
        self,
        db: SliceDatabase,
        pool: ClientPool,
        bus_url: str,
        registry: CollectorRegistry,
        *,
        batch: int = 200,
        idle_s: float = 0.2,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.db = db
        self.bus = SliceClient(pool, bus_url, timeout_s=10)
        self.bus.service = "the event sink"  # in error messages
        self.batch, self.idle_s, self.max_backoff_s = batch, idle_s, max_backoff_s
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = Counter("outbox_sent_total", "Events relayed to the bus", registry=registry)
        self.failures = Counter(
            "outbox_send_failures_total", "Relay attempts that failed", registry=registry
        )
        self.pending = Gauge("outbox_pending", "Events waiting to be relayed", registry=registry)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """One last attempt to send what is pending, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), 2)

    def notify(self) -> None:
        """Something was added: send it now rather than at the next tick."""
        self.wake.set()

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            try:
                sent = await self.flush()
                backoff = 0.0
                if sent:
                    continue
            except Exception as exc:  # the bus is away or refused: wait and retry
                self.failures.inc()
                backoff = min(self.max_backoff_s, max(0.5, backoff * 2))
                log.warning("outbox_relay_failed", error=str(exc)[:300], retry_in_s=backoff)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), backoff or self.idle_s)

    async def flush(self) -> int:
        """Send one batch of pending events (grouped by topic, oldest first)."""

        def take(s: Session) -> tuple[list[Any], int]:
            rows = list(s.execute(select(outbox).order_by(outbox.c.id).limit(self.batch)).all())
            if len(rows) < self.batch:  # all of them: no need to count
                return rows, len(rows)
            return rows, int(s.execute(select(func.count()).select_from(outbox)).scalar_one())

        rows, total = await self.db.run(take, write=False)
        self.pending.set(total)
        if not rows:
            return 0
        by_topic: dict[str, list[Any]] = {}
        for row in rows:
            by_topic.setdefault(row.topic, []).append(row)
        done: list[int] = []
        try:
            for topic, items in by_topic.items():
                await self.bus.request(
                    "POST",
                    f"/v1/topics/{topic}/events",
                    json_body={
                        "events": [
                            {"id": r.event_id, "type": r.type, "payload": json.loads(r.payload)}
                            for r in items
                        ]
                    },
                    idempotent=True,  # event ids make a resend harmless
                )
                done += [r.id for r in items]
        except SliceError as exc:
            failed = [r.id for r in rows if r.id not in set(done)]
            reason = exc.message
            await self.db.run(lambda s: _mark_failed(s, failed, reason))
            if done:
                await self.db.run(lambda s: _delete(s, done))
            raise
        await self.db.run(lambda s: _delete(s, done))
        self.sent.inc(len(done))
        self.pending.set(max(0, total - len(done)))
        return len(done)


def _delete(session: Session, ids: list[int]) -> None:
    session.execute(delete(outbox).where(outbox.c.id.in_(ids)))


def _mark_failed(session: Session, ids: list[int], error: str) -> None:
    session.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(attempts=outbox.c.attempts + 1, last_error=error[:500])
    )
