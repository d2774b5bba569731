"""The event bus slice: durable, bounded topics with at-least-once consumer groups."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import structlog
from fastapi import APIRouter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import MetaData

from services.event_bus import service
from services.event_bus.bus import Bus
from services.event_bus.deps import open_bus
from services.event_bus.models import BusBase
from services.event_bus.routes import router
from services.kit.database import SliceDatabase
from services.kit.slice_base import AtomicSlice, SliceContext

log = structlog.get_logger("event_bus")


class BusCollector(Collector):
    """Depth, bytes, capacity, lag and counters, read from the database at scrape time."""

    def __init__(self, db: SliceDatabase) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.session(write=False) as s:
            topics = service.list_topics(s)
        depth = GaugeMetricFamily("bus_topic_depth", "Events held", labels=["topic"])
        nbytes = GaugeMetricFamily("bus_topic_bytes", "Bytes held", labels=["topic"])
        cap = GaugeMetricFamily("bus_topic_capacity", "Most events held", labels=["topic"])
        published = CounterMetricFamily("bus_published", "Events published", labels=["topic"])
        dropped = CounterMetricFamily("bus_dropped", "Dropped by lossy topics", labels=["topic"])
        lag = GaugeMetricFamily("bus_group_lag", "Unacknowledged events", labels=["topic", "group"])
        delivered = CounterMetricFamily("bus_delivered", "Deliveries", labels=["topic", "group"])
        acked = CounterMetricFamily("bus_acked", "Acknowledged", labels=["topic", "group"])
        redelivered = CounterMetricFamily(
            "bus_redelivered", "Redeliveries", labels=["topic", "group"]
        )
        dead = CounterMetricFamily("bus_dead_lettered", "Dead letters", labels=["topic", "group"])
        for t in topics:
            depth.add_metric([t.name], t.depth)
            nbytes.add_metric([t.name], t.bytes)
            cap.add_metric([t.name], t.max_messages)
            published.add_metric([t.name], t.published)
            dropped.add_metric([t.name], t.dropped or 0)  # SQLite always counts
            for g in t.groups:
                key = [t.name, g.name]
                lag.add_metric(key, g.lag)
                delivered.add_metric(key, g.delivered)
                acked.add_metric(key, g.acked)
                redelivered.add_metric(key, g.redelivered)
                dead.add_metric(key, g.dead_lettered or 0)
        yield from (
            depth,
            nbytes,
            cap,
            published,
            dropped,
            lag,
            delivered,
            acked,
            redelivered,
            dead,
        )


class EventBusSlice(AtomicSlice):
    name = "event_bus"
    bus: Bus
    _sweeper: asyncio.Task[None] | None = None

    def routers(self) -> list[APIRouter]:
        return [router]

    def metadata(self) -> MetaData:
        return BusBase.metadata

    async def startup(self, ctx: SliceContext) -> None:
        await super().startup(ctx)
        self.bus = open_bus(ctx.settings.event_bus, ctx.db, ctx.pool.session)
        await self.bus.start()
        ctx.metrics.registry.register(BusCollector(ctx.db))
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.bus.stop()

    async def _sweep_forever(self) -> None:
        ctx = self.context
        while True:
            await asyncio.sleep(ctx.settings.event_bus.sweep_every_s)
            try:
                stats = await self.bus.sweep()
                if stats.get("dead_lettered"):
                    log.warning("dead_lettered", count=stats["dead_lettered"])
            except Exception:
                log.exception("sweep_failed")

    async def status_details(self) -> dict[str, Any]:
        topics = await self.bus.topics()
        return {
            "topics": len(topics),
            "events": sum(t.depth for t in topics),
            "waiting_long_polls": self.bus.waiting,
            "backend": self.bus.kind,
        }


def create_slice() -> EventBusSlice:
    return EventBusSlice()
