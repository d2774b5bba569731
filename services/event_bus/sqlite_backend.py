"""The bus on the slice's own database (``event_bus.backend: sqlite``, the default): the
``Bus`` protocol over ``service.py``, with group commit for publishes, long polls woken
by publishes, push delivery to webhooks, and the sweeper's housekeeping.

Replicas: every piece of state that decides what is delivered, leased, acknowledged or
rate-limited is in the database. What stays in the process is only this process's own
business: its publish queue (backpressure), its waiting long polls (a bound on them) and
the wake-ups of those long polls. A publish on another replica does not wake a long poll
here; the poll re-checks the database every second instead.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from sqlmodel import Session

from services.event_bus import limits, service
from services.event_bus.bus import long_poll
from services.event_bus.config import EventBusSettings
from services.event_bus.push import Pusher
from services.event_bus.schemas import (
    AckResult,
    Delivery,
    EventIn,
    Published,
    PullResult,
    TopicConfig,
    TopicPublic,
)
from services.event_bus.service import PublishJob
from services.kit.database import SliceDatabase
from services.kit.errors import ServiceUnavailable, SliceError, TooManyRequests
from services.kit.group_commit import GroupCommitter


class Signals:
    """Wakes long polls of a topic when something is published to it (in this process)."""

    def __init__(self, settings: EventBusSettings) -> None:
        self.settings = settings
        self._events: dict[str, asyncio.Event] = {}
        self.waiting = 0

    def notify(self, topic: str) -> None:
        event = self._events.pop(topic, None)
        if event is not None:
            event.set()

    async def wait(self, topic: str, seconds: float) -> None:
        if self.waiting >= self.settings.max_waiters:
            raise TooManyRequests(
                f"{self.waiting} long polls are waiting already; retry later",
                headers={"Retry-After": f"{self.settings.retry_after_s:g}"},
            )
        event = self._events.setdefault(topic, asyncio.Event())
        self.waiting += 1
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            self.waiting -= 1


class SqliteBus:
    kind = "sqlite"

    def __init__(
        self, settings: EventBusSettings, db: SliceDatabase, http: aiohttp.ClientSession
    ) -> None:
        self.settings, self.db = settings, db
        self.signals = Signals(settings)
        # concurrent publishes share a transaction and its fsync; each is answered only
        # after that commit
        self.publisher: GroupCommitter[PublishJob, list[Published] | SliceError] = GroupCommitter(
            db,
            lambda s, jobs: service.publish_many(s, jobs, settings),
            max_queue=settings.max_waiters,
            max_batch=64,
        )
        self._pusher = Pusher(db, http, settings)
        self._pushing: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return self.signals.waiting

    async def start(self) -> None:
        self.publisher.start()
        if self.settings.push_enabled:
            self._pushing = asyncio.create_task(self._pusher.run_forever())

    async def stop(self) -> None:
        if self._pushing is not None:
            self._pushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pushing
        await self.publisher.stop()

    async def sweep(self) -> dict[str, int]:
        rate = self.settings.producer_rate

        def work(s: Session) -> dict[str, int]:
            stats = service.sweep(s, self.settings)
            if rate:
                stats["buckets_forgotten"] = limits.forget_full_buckets(s)
            return stats

        return await self.db.run(work)

    async def topics(self) -> list[TopicPublic]:
        return await self.db.run(service.list_topics, write=False)

    async def configure(self, *, topic: str, config: TopicConfig) -> TopicPublic:
        return await self.db.run(lambda s: service.configure_topic(s, topic, config, self.settings))

    async def describe(self, *, topic: str) -> TopicPublic:
        return await self.db.run(lambda s: service.get_topic(s, topic), write=False)

    async def publish(
        self, *, topic: str, events: list[EventIn], producer: str | None
    ) -> list[Published]:
        if self.publisher.queue.full():
            raise ServiceUnavailable(
                "the bus is saturated; retry later",
                headers={"Retry-After": f"{self.settings.retry_after_s:g}"},
            )
        data = await self.publisher.submit((topic, events, producer))
        if isinstance(data, SliceError):
            raise data
        self.signals.notify(topic)
        return data

    async def pull(
        self, *, topic: str, group: str, most: int, wait_s: float, consumer: str | None
    ) -> PullResult:
        most = min(most, self.settings.max_batch)
        timeout = self.settings.default_visibility_timeout_s

        def take(s: Session) -> list[Delivery]:
            nonlocal timeout
            got = service.pull(
                s, topic, group, most=most, consumer=consumer, settings=self.settings
            )
            timeout = service.visibility_timeout_s(s, topic)
            return got

        data = await long_poll(
            lambda: self.db.run(take),
            lambda seconds: self.signals.wait(topic, seconds),
            wait_s=min(wait_s, self.settings.max_wait_s),
        )
        return PullResult(topic=topic, group=group, data=data, visibility_timeout_s=timeout)

    async def ack(self, *, topic: str, group: str, seqs: list[int]) -> AckResult:
        return await self.db.run(lambda s: service.ack(s, topic, group, seqs))

    async def nack(
        self, *, topic: str, group: str, seqs: list[int], delay_s: float, error: str | None
    ) -> AckResult:
        return await self.db.run(
            lambda s: service.nack(
                s, topic, group, seqs, delay_s=delay_s, error=error, settings=self.settings
            )
        )

    async def configure_push(
        self, *, topic: str, group: str, url: str | None, secret: str | None
    ) -> TopicPublic:
        def work(s: Session) -> TopicPublic:
            service.configure_push(s, topic, group, url, secret)
            return service.get_topic(s, topic)

        return await self.db.run(work)

    async def replay_dead(self, *, topic: str, most: int) -> int:
        n = await self.db.run(
            lambda s: service.replay_dead(s, topic, most=most, settings=self.settings)
        )
        self.signals.notify(topic)
        return n
