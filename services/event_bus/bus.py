"""One interface to the event bus, whatever stores the events.

Two implementations are chosen at start-up (``event_bus.backend``): ``SqliteBus``
(``sqlite_backend.py``: the slice's own database, SQLite or any SQL URL) and ``NatsBus``
(``nats_backend.py``: JetStream). The routes call this protocol only. Every method is
safe to call on any replica: what one replica hands out (a lease), another can acknowledge.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from services.event_bus.schemas import (
    AckResult,
    EventIn,
    Published,
    PullResult,
    TopicConfig,
    TopicPublic,
)

T = TypeVar("T")


class Bus(Protocol):
    """What the routes and the slice need from a bus backend."""

    kind: str

    @property
    def waiting(self) -> int:
        """Long polls waiting in this process now."""
        ...

    async def start(self) -> None:
        """Connect and start background work (called once, in the slice's start-up)."""

    async def stop(self) -> None:
        """Finish what is queued and disconnect."""

    async def sweep(self) -> dict[str, int]:
        """Housekeeping, run periodically by the slice: what it did, counted."""
        ...

    async def topics(self) -> list[TopicPublic]:
        """Every topic with its depth, bytes, capacity and groups."""
        ...

    async def configure(self, *, topic: str, config: TopicConfig) -> TopicPublic:
        """Create a topic or change its settings."""
        ...

    async def describe(self, *, topic: str) -> TopicPublic:
        """One topic (NotFound when it does not exist)."""
        ...

    async def publish(
        self, *, topic: str, events: list[EventIn], producer: str | None
    ) -> list[Published]:
        """Store events, within the producer's shared rate limit."""
        ...

    async def pull(
        self, *, topic: str, group: str, most: int, wait_s: float, consumer: str | None
    ) -> PullResult:
        """Lease up to ``most`` events to the group, long polling up to ``wait_s``."""
        ...

    async def ack(self, *, topic: str, group: str, seqs: list[int]) -> AckResult:
        """These leased events are done for the group."""
        ...

    async def nack(
        self, *, topic: str, group: str, seqs: list[int], delay_s: float, error: str | None
    ) -> AckResult:
        """These leased events failed: redeliver later or dead-letter them."""
        ...

    async def configure_push(
        self, *, topic: str, group: str, url: str | None, secret: str | None
    ) -> TopicPublic:
        """Push the group's events to a webhook (or stop)."""
        ...

    async def replay_dead(self, *, topic: str, most: int) -> int:
        """Publish dead letters back to their topic; how many."""
        ...


async def long_poll(
    attempt: Callable[[], Awaitable[list[T]]],
    wake: Callable[[float], Awaitable[None]],
    *,
    wait_s: float,
    recheck_s: float = 1.0,
) -> list[T]:
    """Call ``attempt`` until it finds something or ``wait_s`` has passed, sleeping in
    ``wake`` (which returns early when something may have arrived) in between, and at
    most ``recheck_s`` at a time (leases expire, other replicas publish)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = await attempt()
        left = deadline - time.monotonic()
        if found or left <= 0:
            return found
        await wake(min(left, recheck_s))
