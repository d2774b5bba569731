"""The event bus's HTTP routes."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query

from services.event_bus import service
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
from services.kit.app import ContextDep
from services.kit.context import CALLER_HEADER
from services.kit.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    SliceError,
    TooManyRequests,
    error_responses,
)

router = APIRouter(prefix="/v1/topics", tags=["event bus"])
TopicName = Annotated[str, Path(pattern=TOPIC)]
GroupName = Annotated[str, Path(pattern=GROUP)]


@router.get("")
async def read_topics(ctx: ContextDep, bus: BusDep) -> TopicsPublic:
    """Every topic with its depth, bytes, capacity, and each group's lag."""
    if bus.nats is not None:
        data = await bus.nats.topics()
    else:
        data = await ctx.db.run(service.list_topics, write=False)
    return TopicsPublic(data=data, count=len(data))


@router.put("/{name}", responses=error_responses(NotFound))
async def configure_topic(
    name: TopicName, body: TopicConfig, ctx: ContextDep, bus: BusDep
) -> TopicPublic:
    """Create a topic or change its capacity, what happens when full, retention, the
    visibility timeout and the deliveries before dead letters."""
    if bus.nats is not None:
        await bus.nats.configure(name, body)
        return await bus.nats.describe(name)
    return await ctx.db.run(
        lambda s: service.configure_topic(s, name, body, ctx.settings.event_bus)
    )


@router.get("/{name}", responses=error_responses(NotFound))
async def read_topic(name: TopicName, ctx: ContextDep, bus: BusDep) -> TopicPublic:
    if bus.nats is not None:
        return await bus.nats.describe(name)
    return await ctx.db.run(lambda s: service.get_topic(s, name), write=False)


@router.post(
    "/{name}/events",
    status_code=201,
    responses=error_responses(PayloadTooLarge, ServiceUnavailable, TooManyRequests),
)
async def publish(
    name: TopicName,
    body: PublishRequest,
    ctx: ContextDep,
    bus: BusDep,
    producer: Annotated[str | None, Header(alias=CALLER_HEADER, max_length=64)] = None,
) -> PublishResult:
    """Publish one or more events, stored atomically; answered once committed to disk. A
    full topic answers 503 with Retry-After (nothing stored); an id seen before is not
    stored again (``duplicate: true``)."""
    bus.limits.take(producer or "anonymous", len(body.events))
    if bus.nats is not None:
        return PublishResult(topic=name, data=await bus.nats.publish(name, body.events, producer))
    if bus.publisher.queue.full():
        raise ServiceUnavailable(
            "the bus is saturated; retry later",
            headers={"Retry-After": f"{ctx.settings.event_bus.retry_after_s:g}"},
        )
    data = await bus.publisher.submit((name, body.events, producer))
    if isinstance(data, SliceError):
        raise data
    bus.signals.notify(name)
    return PublishResult(topic=name, data=data)


@router.post("/{name}/groups/{group}/pull", responses=error_responses(NotFound, TooManyRequests))
async def pull(
    name: TopicName, group: GroupName, body: PullRequest, ctx: ContextDep, bus: BusDep
) -> PullResult:
    """Take up to ``max`` events for this consumer group (long polling up to ``wait_s``).
    Each is leased for the topic's visibility timeout: ack it, or it comes back."""
    cfg = ctx.settings.event_bus
    most = min(body.max, cfg.max_batch)
    if bus.nats is not None:
        wait = min(body.wait_s, cfg.max_wait_s)
        got = await bus.nats.pull(name, group, most, wait)
        timeout = bus.nats.visibility_timeout_s(name, group)
        return PullResult(topic=name, group=group, data=got, visibility_timeout_s=timeout)
    deadline = time.monotonic() + min(body.wait_s, cfg.max_wait_s)
    while True:
        data = await ctx.db.run(
            lambda s: service.pull(s, name, group, most=most, consumer=body.consumer, settings=cfg)
        )
        left = deadline - time.monotonic()
        if data or left <= 0:
            break
        await bus.signals.wait(name, min(left, 1.0))  # re-check leases at least each second
    timeout = await ctx.db.run(lambda s: service.visibility_timeout_s(s, name), write=False)
    return PullResult(topic=name, group=group, data=data, visibility_timeout_s=timeout)


@router.post("/{name}/groups/{group}/ack", responses=error_responses(NotFound))
async def ack(
    name: TopicName, group: GroupName, body: AckRequest, ctx: ContextDep, bus: BusDep
) -> AckResult:
    """These events are handled: they will not be delivered to this group again."""
    if bus.nats is not None:
        return await bus.nats.ack(name, group, body.seqs)
    return await ctx.db.run(lambda s: service.ack(s, name, group, body.seqs))


@router.post("/{name}/groups/{group}/nack", responses=error_responses(NotFound))
async def nack(
    name: TopicName, group: GroupName, body: NackRequest, ctx: ContextDep, bus: BusDep
) -> AckResult:
    """These events failed: redeliver after ``delay_s`` (or dead-letter them when they have
    had their deliveries)."""
    if bus.nats is not None:
        return await bus.nats.nack(name, group, body.seqs, body.delay_s, body.error)
    return await ctx.db.run(
        lambda s: service.nack(
            s,
            name,
            group,
            body.seqs,
            delay_s=body.delay_s,
            error=body.error,
            settings=ctx.settings.event_bus,
        )
    )


@router.put("/{name}/groups/{group}/push", responses=error_responses(NotFound))
async def configure_push(
    name: TopicName, group: GroupName, body: PushConfig, ctx: ContextDep, bus: BusDep
) -> TopicPublic:
    """Deliver this group's events to a webhook (POST, signed with ``secret``): a 2xx acks
    an event, anything else retries it later. ``url: null`` stops pushing."""
    if bus.nats is not None:
        raise BadRequest("push delivery is not available with the NATS backend; pull instead")
    await ctx.db.run(lambda s: service.configure_push(s, name, group, body.url, body.secret))
    return await ctx.db.run(lambda s: service.get_topic(s, name), write=False)


@router.post("/{name}/dead/replay", responses=error_responses(NotFound))
async def replay(
    name: TopicName,
    ctx: ContextDep,
    bus: BusDep,
    most: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> ReplayResult:
    """Publish dead letters back to their topic."""
    if bus.nats is not None:
        raise BadRequest("replay is not available with the NATS backend yet")
    n = await ctx.db.run(
        lambda s: service.replay_dead(s, name, most=most, settings=ctx.settings.event_bus)
    )
    bus.signals.notify(name)
    return ReplayResult(replayed=n)
