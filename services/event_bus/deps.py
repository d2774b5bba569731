"""What the event bus routes need (kept apart from slice.py: no cycle)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, Request

from services.event_bus.nats_backend import NatsBus
from services.event_bus.schemas import Published
from services.event_bus.service import PublishJob, publish_many
from services.kit.config import EventBusSettings
from services.kit.database import SliceDatabase
from services.kit.errors import SliceError, TooManyRequests
from services.kit.group_commit import GroupCommitter


class Signals:
    """Wakes long polls of a topic when something is published to it."""

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


class ProducerLimits:
    """A token bucket per producer (bounded: the least recently seen are forgotten)."""

    def __init__(self, rate: float, retry_after_s: float, most: int = 10_000) -> None:
        self.rate, self.retry_after_s, self.most = rate, retry_after_s, most
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, producer: str, n: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(producer, (self.rate, now))
        tokens = min(self.rate, tokens + (now - last) * self.rate)
        if tokens < n:
            raise TooManyRequests(
                f"producer {producer!r} is over {self.rate:g} events per second",
                headers={"Retry-After": f"{max(self.retry_after_s, (n - tokens) / self.rate):.2f}"},
            )
        self._buckets[producer] = (tokens - n, now)
        self._buckets.move_to_end(producer)
        while len(self._buckets) > self.most:
            self._buckets.popitem(last=False)


class BusDeps:
    def __init__(self, settings: EventBusSettings, db: SliceDatabase) -> None:
        self.signals = Signals(settings)
        self.nats: NatsBus | None = NatsBus(settings) if settings.backend == "nats" else None
        self.limits = ProducerLimits(settings.producer_rate, settings.retry_after_s)
        # concurrent publishes share a transaction and its fsync; each is answered only
        # after that commit
        self.publisher: GroupCommitter[PublishJob, list[Published] | SliceError] = GroupCommitter(
            db,
            lambda s, jobs: publish_many(s, jobs, settings),
            max_queue=settings.max_waiters,
            max_batch=64,
        )


async def get_bus(request: Request) -> BusDeps:
    deps: BusDeps = request.app.state.slice.deps
    return deps


BusDep = Annotated[BusDeps, Depends(get_bus)]
