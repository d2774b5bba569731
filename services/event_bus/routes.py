"""The event bus's HTTP routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query

from services.event_bus.deps import BusDep
from services.event_bus.schemas import (
    GROUP,
    TOPIC,
    AckRequest,
    AckResult,
    NackRequest,
    PublishRequest,
    PublishResult,
    PullRequest,
    PullResult,
    PushConfig,
    ReplayResult,
    TopicConfig,
    TopicPublic,
    TopicsPublic,
)
from services.kit.context import CALLER_HEADER
from services.kit.errors import (
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    error_responses,
)

router = APIRouter(prefix="/v1/topics", tags=["event bus"])
TopicName = Annotated[str, Path(pattern=TOPIC)]
GroupName = Annotated[str, Path(pattern=GROUP)]


@router.get("")
async def read_topics(bus: BusDep) -> TopicsPublic:
    """Every topic with its depth, bytes, capacity, and each group's lag."""
    data = await bus.topics()
    return TopicsPublic(data=data, count=len(data))


@router.put("/{name}", responses=error_responses(NotFound))
async def configure_topic(name: TopicName, body: TopicConfig, bus: BusDep) -> TopicPublic:
    """Create a topic or change its capacity, what happens when full, retention, the
    visibility timeout and the deliveries before dead letters."""
    return await bus.configure(topic=name, config=body)


@router.get("/{name}", responses=error_responses(NotFound))
async def read_topic(name: TopicName, bus: BusDep) -> TopicPublic:
    return await bus.describe(topic=name)


@router.post(
    "/{name}/events",
    status_code=201,
    responses=error_responses(PayloadTooLarge, ServiceUnavailable, TooManyRequests),
)
async def publish(
    name: TopicName,
    body: PublishRequest,
    bus: BusDep,
    producer: Annotated[str | None, Header(alias=CALLER_HEADER, max_length=64)] = None,
) -> PublishResult:
    """Publish one or more events, stored atomically; answered once committed to disk. A
    full topic answers 503 with Retry-After (nothing stored); an id seen before is not
    stored again (``duplicate: true``)."""
    data = await bus.publish(topic=name, events=body.events, producer=producer)
    return PublishResult(topic=name, data=data)


@router.post("/{name}/groups/{group}/pull", responses=error_responses(NotFound, TooManyRequests))
async def pull(name: TopicName, group: GroupName, body: PullRequest, bus: BusDep) -> PullResult:
    """Take up to ``max`` events for this consumer group (long polling up to ``wait_s``).
    Each is leased for the topic's visibility timeout: ack it, or it comes back."""
    return await bus.pull(
        topic=name, group=group, most=body.max, wait_s=body.wait_s, consumer=body.consumer
    )


@router.post("/{name}/groups/{group}/ack", responses=error_responses(NotFound))
async def ack(name: TopicName, group: GroupName, body: AckRequest, bus: BusDep) -> AckResult:
    """These events are handled: they will not be delivered to this group again."""
    return await bus.ack(topic=name, group=group, seqs=body.seqs)


@router.post("/{name}/groups/{group}/nack", responses=error_responses(NotFound))
async def nack(name: TopicName, group: GroupName, body: NackRequest, bus: BusDep) -> AckResult:
    """These events failed: redeliver after ``delay_s`` (or dead-letter them when they have
    had their deliveries)."""
    return await bus.nack(
        topic=name, group=group, seqs=body.seqs, delay_s=body.delay_s, error=body.error
    )


@router.put("/{name}/groups/{group}/push", responses=error_responses(NotFound))
async def configure_push(
    name: TopicName, group: GroupName, body: PushConfig, bus: BusDep
) -> TopicPublic:
    """Deliver this group's events to a webhook (POST, signed with ``secret``): a 2xx acks
    an event, anything else retries it later. ``url: null`` stops pushing."""
    return await bus.configure_push(topic=name, group=group, url=body.url, secret=body.secret)


@router.post("/{name}/dead/replay", responses=error_responses(NotFound))
async def replay(
    name: TopicName, bus: BusDep, most: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> ReplayResult:
    """Publish dead letters back to their topic."""
    return ReplayResult(replayed=await bus.replay_dead(topic=name, most=most))
