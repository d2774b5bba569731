"""The SQLite event bus: bounded topics, idempotent publish, consumer groups with leases
(at-least-once), redelivery after a visibility timeout, dead letters after too many
deliveries, and purging what every group has acknowledged.

Every function runs inside one database transaction (``SliceDatabase.run``): a publish is
acknowledged only after its commit (``synchronous=FULL``), so an acknowledged event
survives a SIGKILL; a crash before the commit loses only events nobody was told about.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from services.event_bus import limits
from services.event_bus.config import EventBusSettings
from services.event_bus.models import Event, Group, Lease, Topic
from services.event_bus.schemas import (
    DEAD_SUFFIX,
    AckResult,
    Delivery,
    EventIn,
    GroupPublic,
    Published,
    TopicConfig,
    TopicPublic,
)
from services.kit.errors import NotFound, PayloadTooLarge, ServiceUnavailable, SliceError


class TopicFull(ServiceUnavailable):
    code = "topic_full"


def _now() -> datetime:
    return datetime.now(UTC)


def get_or_create_topic(
    session: Session, name: str, settings: EventBusSettings, config: TopicConfig | None = None
) -> Topic:
    topic = session.get(Topic, name)
    if topic is not None:
        return topic
    count = session.exec(select(func.count()).select_from(Topic)).one()
    if count >= settings.max_topics:
        raise SliceError(
            f"there are {count} topics already (the limit)", status_code=409, code="too_many_topics"
        )
    cfg = config or TopicConfig()
    topic = Topic(
        name=name,
        max_messages=cfg.max_messages or settings.default_max_messages,
        max_bytes=cfg.max_bytes or settings.default_max_bytes,
        on_full=cfg.on_full,
        retention_s=cfg.retention_s,
        visibility_timeout_s=cfg.visibility_timeout_s or settings.default_visibility_timeout_s,
        max_deliveries=cfg.max_deliveries or settings.default_max_deliveries,
        created_at=_now(),
    )
    session.add(topic)
    session.flush()
    return topic


def configure_topic(
    session: Session, name: str, config: TopicConfig, settings: EventBusSettings
) -> TopicPublic:
    topic = get_or_create_topic(session, name, settings, config)
    topic.max_messages = config.max_messages or topic.max_messages
    topic.max_bytes = config.max_bytes or topic.max_bytes
    topic.on_full, topic.retention_s = config.on_full, config.retention_s
    topic.visibility_timeout_s = config.visibility_timeout_s or topic.visibility_timeout_s
    topic.max_deliveries = config.max_deliveries or topic.max_deliveries
    session.add(topic)
    session.flush()
    return describe(session, topic)


def publish(
    session: Session,
    name: str,
    events: list[EventIn],
    *,
    producer: str | None,
    settings: EventBusSettings,
) -> list[Published]:
    """Store a batch atomically and in order. Ids seen before are not stored again. A full
    topic refuses the whole batch (503) or, if lossy, drops its oldest events."""
    if len(events) > settings.max_batch:
        raise SliceError(
            f"at most {settings.max_batch} events per publish", status_code=400, code="bad_request"
        )
    topic = get_or_create_topic(session, name, settings)
    prepared = []
    for i, given in enumerate(events):
        event = Event(
            topic=name,
            event_id=given.id or uuid.uuid4().hex,
            type=given.type,
            payload=given.payload,
            headers=given.headers,
            size=0,
            producer=producer,
            created_at=_now(),
        )
        event.size = (
            len(json.dumps(given.payload))
            + len(given.type)
            + sum(len(k) + len(v) for k, v in given.headers.items())
        )
        if event.size > settings.max_event_bytes:
            raise PayloadTooLarge(
                f"events[{i}] is {event.size} bytes; the limit is {settings.max_event_bytes}"
            )
        prepared.append(event)
    ids = [e.event_id for e in prepared]
    seen = {
        row.event_id: row.seq
        for row in session.exec(
            select(Event).where(Event.topic == name, col(Event.event_id).in_(ids))
        )
    }
    fresh: list[Event] = []
    batch_ids: set[str] = set()
    for e in prepared:
        if e.event_id in seen or e.event_id in batch_ids:
            continue
        batch_ids.add(e.event_id)
        fresh.append(e)
    need_n, need_b = len(fresh), sum(e.size for e in fresh)
    if need_n > topic.max_messages or need_b > topic.max_bytes:
        raise PayloadTooLarge(f"the batch alone is larger than topic {name!r} can hold")
    over_n = topic.depth + need_n - topic.max_messages
    over_b = topic.bytes + need_b - topic.max_bytes
    if over_n > 0 or over_b > 0:
        if topic.on_full == "reject":
            raise TopicFull(
                f"topic {name!r} is full ({topic.depth}/{topic.max_messages} events, "
                f"{topic.bytes}/{topic.max_bytes} bytes); retry later",
                headers={"Retry-After": f"{settings.retry_after_s:g}"},
            )
        _drop_oldest(session, topic, max(over_n, 0), max(over_b, 0))
    session.add_all(fresh)
    session.flush()
    topic.depth += need_n
    topic.bytes += need_b
    topic.published += need_n
    session.add(topic)
    results = []
    fresh_seq = {e.event_id: e.seq for e in fresh}
    for e in prepared:
        if e.event_id in seen:
            results.append(Published(id=e.event_id, seq=seen[e.event_id], duplicate=True))
        else:
            seq = fresh_seq[e.event_id]
            assert seq is not None
            results.append(
                Published(id=e.event_id, seq=seq, duplicate=e is not _first(fresh, e.event_id))
            )
    return results


def _first(events: list[Event], event_id: str) -> Event | None:
    return next((e for e in events if e.event_id == event_id), None)


def _drop_oldest(session: Session, topic: Topic, count: int, nbytes: int) -> None:
    """Make room in a lossy topic by deleting its oldest events (counted as dropped)."""
    dropped = freed = 0
    for ev in session.exec(
        select(Event.seq, Event.size).where(Event.topic == topic.name).order_by(col(Event.seq))
    ):
        if dropped >= count and freed >= nbytes:
            break
        session.execute(sa_delete(Event).where(col(Event.seq) == ev[0]))
        session.execute(
            sa_delete(Lease).where(col(Lease.topic) == topic.name, col(Lease.seq) == ev[0])
        )
        dropped += 1
        freed += ev[1]
    topic.depth -= dropped
    topic.bytes -= freed
    topic.dropped += dropped


def _group(session: Session, topic: str, name: str, start: str = "earliest") -> Group:
    group = session.get(Group, (topic, name))
    if group is None:
        cursor = 0
        if start == "latest":
            cursor = (
                session.exec(select(func.max(Event.seq)).where(Event.topic == topic)).one() or 0
            )
        group = Group(topic=topic, name=name, cursor=cursor, created_at=_now())
        session.add(group)
        session.flush()
    return group


def pull(
    session: Session,
    name: str,
    group_name: str,
    *,
    most: int,
    consumer: str | None,
    settings: EventBusSettings,
) -> list[Delivery]:
    """Hand out events: first those whose lease expired (redelivery), then new ones. Each
    is leased for the topic's visibility timeout; an event delivered ``max_deliveries``
    times without an ack goes to the dead letters instead."""
    topic = session.get(Topic, name)
    if topic is None:
        raise NotFound(f"topic {name!r} not found")
    group = _group(session, name, group_name)
    now = time.time()
    until = now + topic.visibility_timeout_s
    out: list[tuple[Event, int]] = []
    due = session.exec(
        select(Lease)
        .where(Lease.topic == name, Lease.group_name == group_name, col(Lease.lease_until) <= now)
        .order_by(col(Lease.seq))
        .limit(most)
    ).all()
    for lease in due:
        if lease.attempts >= topic.max_deliveries:
            _dead_letter(session, topic, group, lease, settings)
            continue
        event = session.get(Event, lease.seq)
        if event is None:  # dropped or expired meanwhile
            session.delete(lease)
            continue
        lease.attempts += 1
        lease.lease_until = until
        lease.consumer = consumer
        session.add(lease)
        group.redelivered += 1
        out.append((event, lease.attempts))
    room = most - len(out)
    if room > 0:
        fresh = session.exec(
            select(Event)
            .where(Event.topic == name, col(Event.seq) > group.cursor)
            .order_by(col(Event.seq))
            .limit(room)
        ).all()
        for event in fresh:
            assert event.seq is not None
            session.add(
                Lease(topic=name, group_name=group_name, seq=event.seq, lease_until=until,
                      consumer=consumer)
            )  # fmt: skip
            out.append((event, 1))
        if fresh:
            group.cursor = fresh[-1].seq or group.cursor
            group.delivered += len(fresh)
    session.add(group)
    return [
        Delivery(
            seq=e.seq or 0,
            id=e.event_id,
            type=e.type,
            payload=e.payload,
            headers=e.headers,
            attempt=attempt,
            created_at=e.created_at,
        )
        for e, attempt in sorted(out, key=lambda x: x[0].seq or 0)
    ]


def _dead_letter(
    session: Session, topic: Topic, group: Group, lease: Lease, settings: EventBusSettings
) -> bool:
    """Move an event that failed too often to ``<topic>.dead``. If the dead-letter topic is
    full, the lease stays (the event is not lost) and the move is tried again later."""
    event = session.get(Event, lease.seq)
    if event is not None:
        dead = get_or_create_topic(session, topic.name + DEAD_SUFFIX, settings)
        if dead.depth >= dead.max_messages or dead.bytes + event.size > dead.max_bytes:
            return False
        session.add(
            Event(
                topic=dead.name,
                event_id=f"{event.event_id}@{group.name}",
                type=event.type,
                payload=event.payload,
                headers={
                    **event.headers,
                    "dead_from_topic": topic.name,
                    "dead_from_seq": str(event.seq),
                    "dead_group": group.name,
                    "dead_attempts": str(lease.attempts),
                    "dead_error": (lease.last_error or "")[:500],
                },
                size=event.size,
                producer=event.producer,
                created_at=_now(),
            )
        )
        dead.depth += 1
        dead.bytes += event.size
        dead.published += 1
        session.add(dead)
    session.delete(lease)
    group.dead_lettered += 1
    session.add(group)
    return True


def ack(session: Session, name: str, group_name: str, seqs: list[int]) -> AckResult:
    """Acknowledge: these events are done for this group."""
    group = session.get(Group, (name, group_name))
    if group is None:
        raise NotFound(f"group {group_name!r} of topic {name!r} not found")
    held = set(
        session.exec(
            select(Lease.seq).where(
                Lease.topic == name, Lease.group_name == group_name, col(Lease.seq).in_(seqs)
            )
        ).all()
    )
    if held:
        session.execute(
            sa_delete(Lease).where(
                col(Lease.topic) == name,
                col(Lease.group_name) == group_name,
                col(Lease.seq).in_(held),
            )
        )
        group.acked += len(held)
        session.add(group)
    return AckResult(done=sorted(held), unknown=sorted(set(seqs) - held))


def nack(
    session: Session,
    name: str,
    group_name: str,
    seqs: list[int],
    *,
    delay_s: float,
    error: str | None,
    settings: EventBusSettings,
) -> AckResult:
    """Give events back: redelivered after ``delay_s``, or dead-lettered if they have had
    their deliveries."""
    topic = session.get(Topic, name)
    group = session.get(Group, (name, group_name))
    if topic is None or group is None:
        raise NotFound(f"group {group_name!r} of topic {name!r} not found")
    done, dead = [], []
    for lease in session.exec(
        select(Lease).where(
            Lease.topic == name, Lease.group_name == group_name, col(Lease.seq).in_(seqs)
        )
    ).all():
        lease.last_error = error
        if lease.attempts >= topic.max_deliveries and _dead_letter(
            session, topic, group, lease, settings
        ):
            dead.append(lease.seq)
            continue
        lease.lease_until = time.time() + delay_s
        session.add(lease)
        done.append(lease.seq)
    return AckResult(
        done=sorted(done), unknown=sorted(set(seqs) - set(done) - set(dead)), dead_lettered=dead
    )


def sweep(session: Session, settings: EventBusSettings) -> dict[str, int]:
    """Housekeeping: dead-letter expired leases that had their deliveries, drop events past
    retention, and purge events every group has acknowledged."""
    now = time.time()
    stats = {"dead_lettered": 0, "expired": 0, "purged": 0}
    for topic in session.exec(select(Topic)).all():
        groups = session.exec(select(Group).where(Group.topic == topic.name)).all()
        for group in groups:
            exhausted = session.exec(
                select(Lease).where(
                    Lease.topic == topic.name,
                    Lease.group_name == group.name,
                    col(Lease.lease_until) <= now,
                    col(Lease.attempts) >= topic.max_deliveries,
                )
            ).all()
            for lease in exhausted:
                stats["dead_lettered"] += _dead_letter(session, topic, group, lease, settings)
        doomed: list[Any] = []
        if topic.retention_s:
            cutoff = _now() - timedelta(seconds=topic.retention_s)
            doomed.append(col(Event.created_at) < cutoff)
        if groups:
            low = min(
                min(
                    (
                        s
                        for s in session.exec(
                            select(func.min(Lease.seq)).where(
                                Lease.topic == topic.name, Lease.group_name == g.name
                            )
                        ).all()
                        if s is not None
                    ),
                    default=g.cursor + 1,
                )
                - 1
                for g in groups
            )
            doomed.append(col(Event.seq) <= low)
        for condition in doomed:
            gone = session.exec(
                select(func.count(), func.coalesce(func.sum(Event.size), 0)).where(
                    Event.topic == topic.name, condition
                )
            ).one()
            if not gone[0]:
                continue
            session.execute(sa_delete(Event).where(col(Event.topic) == topic.name, condition))
            topic.depth -= gone[0]
            topic.bytes -= int(gone[1])
            stats["purged"] += gone[0]
            session.add(topic)
        if topic.retention_s:
            # leases of events that expired by age are gone with them
            session.execute(
                sa_delete(Lease).where(
                    col(Lease.topic) == topic.name,
                    ~col(Lease.seq).in_(select(Event.seq).where(Event.topic == topic.name)),
                )
            )
    return stats


def describe(session: Session, topic: Topic) -> TopicPublic:
    groups = []
    for g in session.exec(select(Group).where(Group.topic == topic.name)).all():
        inflight = session.exec(
            select(func.count())
            .select_from(Lease)
            .where(Lease.topic == topic.name, Lease.group_name == g.name)
        ).one()
        behind = session.exec(
            select(func.count())
            .select_from(Event)
            .where(Event.topic == topic.name, col(Event.seq) > g.cursor)
        ).one()
        groups.append(
            GroupPublic(
                name=g.name,
                cursor=g.cursor,
                push_url=g.push_url,
                lag=behind + inflight,
                in_flight=inflight,
                delivered=g.delivered,
                acked=g.acked,
                redelivered=g.redelivered,
                dead_lettered=g.dead_lettered,
            )
        )
    return TopicPublic(**topic.model_dump(), groups=groups)


def visibility_timeout_s(session: Session, name: str) -> float:
    topic = session.get(Topic, name)
    if topic is None:
        raise NotFound(f"topic {name!r} not found")
    return topic.visibility_timeout_s


def list_topics(session: Session) -> list[TopicPublic]:
    return [describe(session, t) for t in session.exec(select(Topic).order_by(col(Topic.name)))]


def get_topic(session: Session, name: str) -> TopicPublic:
    topic = session.get(Topic, name)
    if topic is None:
        raise NotFound(f"topic {name!r} not found")
    return describe(session, topic)


def replay_dead(session: Session, name: str, *, most: int, settings: EventBusSettings) -> int:
    """Publish dead letters back to their topic (new ids, so they are not duplicates) and
    remove them from the dead-letter topic."""
    dead_name = name + DEAD_SUFFIX
    dead = session.get(Topic, dead_name)
    if dead is None:
        return 0
    rows = session.exec(
        select(Event).where(Event.topic == dead_name).order_by(col(Event.seq)).limit(most)
    ).all()
    if not rows:
        return 0
    again = [
        EventIn(
            id=f"{r.event_id}:replay:{r.seq}"[:128],
            type=r.type,
            payload=r.payload,
            headers={k: str(v) for k, v in r.headers.items() if not k.startswith("dead_")},
        )
        for r in rows
    ]
    publish(session, name, again, producer="replay", settings=settings)
    session.execute(sa_delete(Event).where(col(Event.seq).in_([r.seq for r in rows])))
    session.execute(
        update(Topic)
        .where(col(Topic.name) == dead_name)
        .values(depth=Topic.depth - len(rows), bytes=Topic.bytes - sum(r.size for r in rows))
    )
    return len(rows)


PublishJob = tuple[str, list[EventIn], str | None]


def publish_many(
    session: Session, jobs: list[PublishJob], settings: EventBusSettings
) -> list[list[Published] | SliceError]:
    """Several publishes in one transaction (group commit): each in its own savepoint, so
    one refused publish (over its producer's rate, a full topic, a bad event) does not take
    the others with it."""
    out: list[list[Published] | SliceError] = []
    rate = settings.producer_rate
    for name, events, producer in jobs:
        try:
            with session.begin_nested():
                if rate:  # in the publish's own savepoint: a refused publish takes no tokens
                    limits.take_tokens(
                        session,
                        producer=producer or "anonymous",
                        n=len(events),
                        rate=rate,
                        retry_after_s=settings.retry_after_s,
                    )
                out.append(publish(session, name, events, producer=producer, settings=settings))
        except SliceError as exc:
            out.append(exc)
    return out


def configure_push(
    session: Session, name: str, group_name: str, url: str | None, secret: str | None
) -> None:
    """Push a group's events to a webhook (or stop pushing)."""
    if session.get(Topic, name) is None:
        raise NotFound(f"topic {name!r} not found")
    group = _group(session, name, group_name)
    group.push_url, group.push_secret = url, secret if url else None
    session.add(group)


def push_groups(session: Session) -> list[tuple[str, str, str, str | None]]:
    return [
        (g.topic, g.name, g.push_url, g.push_secret)
        for g in session.exec(select(Group).where(col(Group.push_url).is_not(None))).all()
        if g.push_url
    ]
