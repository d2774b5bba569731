"""The event bus on NATS JetStream, behind the same HTTP API (``event_bus.backend: nats``),
for fleets that run several bus replicas.

Mapping: a topic is a JetStream stream (file storage) with the topic's limits (``max_msgs``,
``max_bytes``, ``max_age``; ``discard: new`` for topics that refuse when full, ``old`` for
lossy ones); a consumer group is a durable pull consumer with explicit acks,
``ack_wait`` = the visibility timeout and ``max_deliver`` = the deliveries before dead
letters. Publishes carry ``Nats-Msg-Id`` (JetStream drops a repeated id inside the
stream's duplicate window, ``nats_duplicate_window_s``). An event nacked after its last
delivery, or left unacknowledged until JetStream gives up on it (its MAX_DELIVERIES
advisory), is copied to ``<topic>.dead``.

Differences from the SQLite bus, by nature of JetStream: a batch is published event by
event (not atomically), and duplicate ids are recognised within the window, not forever.

Replicas: a lease (where JetStream wants a delivery acknowledged: its reply subject, and
how often it was delivered) is a row in the slice's shared database, not an object in the
process that pulled it, so an ack, nack or dead letter works on whichever replica it
reaches. Acking takes the row with one ``DELETE ... RETURNING``: of two replicas acking
the same event, one does it and the other answers ``unknown``. The subject is read from
the database, never from the caller, so no caller can make the bus publish anywhere else.
JetStream's "gave up on this event" advisories reach one replica each (a queue group), so
each dead letter is written once. Producer rate limits are shared the same way
(``limits.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from services.event_bus import limits
from services.event_bus.config import EventBusSettings
from services.event_bus.models import NatsLease
from services.event_bus.schemas import (
    DEAD_SUFFIX,
    AckResult,
    Delivery,
    EventIn,
    GroupPublic,
    Published,
    PullResult,
    TopicConfig,
    TopicPublic,
)
from services.kit.database import SliceDatabase
from services.kit.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    SliceError,
)

log = structlog.get_logger("event_bus.nats")
PREFIX = "RB_"
ADVISORY_QUEUE = "refactorbot-event-bus"  # one replica handles each advisory
STALE_LEASE_S = 600.0  # lease rows this long past their timeout are forgotten


class TopicFull(ServiceUnavailable):
    code = "topic_full"


def _digest(topic: str) -> str:
    return hashlib.sha1(topic.encode()).hexdigest()[:16]  # noqa: S324 - a name, not security


def stream_name(topic: str) -> str:
    readable = "".join(c if c.isalnum() else "_" for c in topic)[:60]
    return f"{PREFIX}{readable}_{_digest(topic)}"


def subject(topic: str) -> str:
    return f"rb.topic.{_digest(topic)}"


def durable_name(group: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in group)[:100]


def record_leases(session: Session, *, topic: str, group: str, leases: list[NatsLease]) -> None:
    """Store (or renew, for a redelivery) where each pulled event is to be acknowledged."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(NatsLease)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["topic", "group_name", "seq"],
            set_={
                "reply": stmt.excluded.reply,
                "delivered": stmt.excluded.delivered,
                "lease_until": stmt.excluded.lease_until,
            },
        ),
        [lease.model_dump() for lease in leases],
    )


def claim_leases(session: Session, *, topic: str, group: str, seqs: list[int]) -> list[NatsLease]:
    """Take these leases out of the shared table (each is claimed by one caller only)."""
    rows = session.execute(
        delete(NatsLease)
        .where(
            col(NatsLease.topic) == topic,
            col(NatsLease.group_name) == group,
            col(NatsLease.seq).in_(seqs),
        )
        .returning(
            col(NatsLease.seq),
            col(NatsLease.reply),
            col(NatsLease.delivered),
            col(NatsLease.lease_until),
        )
    ).all()
    return [
        NatsLease(topic=topic, group_name=group, seq=r[0], reply=r[1], delivered=r[2],
                  lease_until=r[3])
        for r in rows
    ]  # fmt: skip


def forget_stale_leases(session: Session) -> int:
    """Delete leases long past their timeout (JetStream redelivered or gave up on them)."""
    gone = session.execute(
        delete(NatsLease).where(col(NatsLease.lease_until) < time.time() - STALE_LEASE_S)
    )
    return int(gone.rowcount)  # type: ignore[attr-defined]


def _answer_order(seqs: list[int], done: set[int]) -> tuple[list[int], list[int]]:
    asked = list(dict.fromkeys(seqs))
    return [q for q in asked if q in done], [q for q in asked if q not in done]


class NatsBus:
    kind = "nats"

    def __init__(self, settings: EventBusSettings, db: SliceDatabase) -> None:
        self.settings, self.db = settings, db
        self.nc: Any = None
        self.js: Any = None
        # this process's subscription handles; the durable consumers behind them are shared
        self._subs: dict[tuple[str, str], tuple[Any, float]] = {}
        self._advisories: Any = None
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    async def start(self) -> None:
        import nats

        self.nc = await nats.connect(
            self.settings.nats_url, connect_timeout=5, max_reconnect_attempts=-1
        )
        self.js = self.nc.jetstream()
        self._advisories = await self.nc.subscribe(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
            queue=ADVISORY_QUEUE,
            cb=self._on_max_deliveries,
        )
        log.info("backend", kind="nats", url=self.settings.nats_url)

    async def stop(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    async def sweep(self) -> dict[str, int]:
        rate = self.settings.producer_rate

        def work(s: Session) -> dict[str, int]:
            stats = {"leases_forgotten": forget_stale_leases(s)}
            if rate:
                stats["buckets_forgotten"] = limits.forget_full_buckets(s)
            return stats

        return await self.db.run(work)

    # -- topics ------------------------------------------------------------------------

    async def _config_of(self, name: str) -> dict[str, Any] | None:
        from nats.js.errors import NotFoundError

        try:
            info = await self.js.stream_info(stream_name(name))
        except NotFoundError:
            return None
        meta: dict[str, Any] = json.loads(info.config.description or "{}")
        meta["_info"] = info
        return meta

    async def configure(self, *, topic: str, config: TopicConfig) -> TopicPublic:
        await self._configure(topic, config)
        return await self.describe(topic=topic)

    async def _configure(self, name: str, cfg: TopicConfig | None = None) -> dict[str, Any]:
        from nats.js.api import DiscardPolicy, StorageType, StreamConfig

        cfg = cfg or TopicConfig()
        s = self.settings
        meta = {
            "topic": name,
            "on_full": cfg.on_full,
            "visibility_timeout_s": cfg.visibility_timeout_s or s.default_visibility_timeout_s,
            "max_deliveries": cfg.max_deliveries or s.default_max_deliveries,
            "retention_s": cfg.retention_s,
            "created_at": datetime.now(UTC).isoformat(),
        }
        config = StreamConfig(
            name=stream_name(name),
            subjects=[subject(name)],
            description=json.dumps(meta),
            storage=StorageType.FILE,
            max_msgs=cfg.max_messages or s.default_max_messages,
            max_bytes=cfg.max_bytes or s.default_max_bytes,
            max_age=cfg.retention_s or None,
            discard=DiscardPolicy.NEW if cfg.on_full == "reject" else DiscardPolicy.OLD,
            duplicate_window=s.nats_duplicate_window_s,
        )
        existing = await self._config_of(name)
        if existing is None:
            await self.js.add_stream(config)
        else:
            await self.js.update_stream(config)
        found = await self._config_of(name)
        assert found is not None
        return found

    async def _ensure(self, name: str) -> dict[str, Any]:
        return await self._config_of(name) or await self._configure(name)

    async def describe(self, *, topic: str) -> TopicPublic:
        name = topic
        meta = await self._config_of(name)
        if meta is None:
            raise NotFound(f"topic {name!r} not found")
        info = meta["_info"]
        groups = []
        for c in await self.js.consumers_info(stream_name(name)):
            groups.append(
                GroupPublic(
                    name=c.name,
                    cursor=c.delivered.stream_seq if c.delivered else 0,
                    lag=(c.num_pending or 0) + (c.num_ack_pending or 0),
                    in_flight=c.num_ack_pending or 0,
                    delivered=c.delivered.consumer_seq if c.delivered else 0,
                    acked=c.ack_floor.consumer_seq if c.ack_floor else 0,
                    redelivered=c.num_redelivered or 0,
                    dead_lettered=None,  # JetStream keeps no such count
                )
            )
        cfg = info.config
        return TopicPublic(
            name=name,
            max_messages=cfg.max_msgs,
            max_bytes=cfg.max_bytes,
            on_full=meta["on_full"],
            retention_s=meta.get("retention_s") or 0,
            visibility_timeout_s=meta["visibility_timeout_s"],
            max_deliveries=meta["max_deliveries"],
            depth=info.state.messages,
            bytes=info.state.bytes,
            published=info.state.last_seq,
            dropped=None,  # JetStream does not count what discard=old removed
            created_at=datetime.fromisoformat(meta["created_at"]),
            groups=groups,
        )

    async def topics(self) -> list[TopicPublic]:
        out = []
        for info in await self.js.streams_info():
            if info.config.name.startswith(PREFIX) and info.config.description:
                topic = json.loads(info.config.description)["topic"]
                out.append(await self.describe(topic=topic))
        return sorted(out, key=lambda t: t.name)

    # -- publish -------------------------------------------------------------------------

    async def publish(
        self, *, topic: str, events: list[EventIn], producer: str | None
    ) -> list[Published]:
        rate = self.settings.producer_rate
        if rate:
            await self.db.run(
                lambda s: limits.take_tokens(
                    s,
                    producer=producer or "anonymous",
                    n=len(events),
                    rate=rate,
                    retry_after_s=self.settings.retry_after_s,
                )
            )
        return await self._publish(topic, events, producer)

    async def _publish(
        self, name: str, events: list[EventIn], producer: str | None
    ) -> list[Published]:
        from nats.js.errors import APIError

        if len(events) > self.settings.max_batch:
            raise SliceError(f"at most {self.settings.max_batch} events per publish",
                             status_code=400, code="bad_request")  # fmt: skip
        await self._ensure(name)
        out = []
        for i, e in enumerate(events):
            event_id = e.id or f"{time.time_ns()}-{i}"
            body = json.dumps(e.payload).encode()
            if len(body) > self.settings.max_event_bytes:
                raise PayloadTooLarge(f"events[{i}] is {len(body)} bytes")
            headers = {
                "Nats-Msg-Id": event_id,
                "RB-Type": e.type,
                "RB-Producer": producer or "",
                "RB-Headers": json.dumps(e.headers),
            }
            try:
                ack = await self.js.publish(subject(name), body, headers=headers)
            except APIError as exc:
                if "maximum" in str(exc).lower() or exc.err_code in (10077, 10078):
                    raise TopicFull(
                        f"topic {name!r} is full; retry later",
                        headers={"Retry-After": f"{self.settings.retry_after_s:g}"},
                    ) from None
                raise ServiceUnavailable(f"NATS refused the publish: {exc}") from None
            out.append(Published(id=event_id, seq=ack.seq, duplicate=bool(ack.duplicate)))
        return out

    # -- consume -------------------------------------------------------------------------

    async def _sub(self, name: str, group: str) -> tuple[Any, float]:
        """The group's pull subscription and its consumer's ack wait (the lease)."""
        from nats.js.api import AckPolicy, ConsumerConfig

        key = (name, group)
        if key not in self._subs:
            meta = await self._config_of(name)
            if meta is None:
                raise NotFound(f"topic {name!r} not found")
            sub = await self.js.pull_subscribe(
                subject(name),
                durable=durable_name(group),
                stream=stream_name(name),
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=meta["visibility_timeout_s"],
                    max_deliver=meta["max_deliveries"],
                ),
            )
            # the consumer may have been made by another replica: its ack wait is the truth
            info = await sub.consumer_info()
            self._subs[key] = (sub, info.config.ack_wait or meta["visibility_timeout_s"])
        return self._subs[key]

    async def pull(
        self, *, topic: str, group: str, most: int, wait_s: float, consumer: str | None
    ) -> PullResult:
        most = min(most, self.settings.max_batch)
        wait_s = min(wait_s, self.settings.max_wait_s)
        sub, ack_wait = await self._sub(topic, group)
        self._waiting += 1
        try:
            msgs = await sub.fetch(most, timeout=max(wait_s, 0.05))
        except TimeoutError:
            msgs = []
        finally:
            self._waiting -= 1
        out, leases = [], []
        until = time.time() + ack_wait
        for m in msgs:
            meta = m.metadata
            seq = meta.sequence.stream
            leases.append(
                NatsLease(topic=topic, group_name=group, seq=seq, reply=m.reply,
                          delivered=meta.num_delivered, lease_until=until)
            )  # fmt: skip
            h = m.headers or {}
            out.append(
                Delivery(
                    seq=seq,
                    id=h.get("Nats-Msg-Id", str(seq)),
                    type=h.get("RB-Type", ""),
                    payload=json.loads(m.data or b"null"),
                    headers=json.loads(h.get("RB-Headers", "{}")),
                    attempt=meta.num_delivered,
                    created_at=meta.timestamp or datetime.now(UTC),
                )
            )
        if leases:
            await self.db.run(lambda s: record_leases(s, topic=topic, group=group, leases=leases))
        return PullResult(topic=topic, group=group, data=out, visibility_timeout_s=ack_wait)

    async def ack(self, *, topic: str, group: str, seqs: list[int]) -> AckResult:
        claimed = await self.db.run(lambda s: claim_leases(s, topic=topic, group=group, seqs=seqs))
        for lease in claimed:
            await self.nc.publish(lease.reply, b"+ACK")
        if claimed:
            await self.nc.flush()  # acknowledged to JetStream before we say so
        done, unknown = _answer_order(seqs, {lease.seq for lease in claimed})
        return AckResult(done=done, unknown=unknown)

    async def nack(
        self, *, topic: str, group: str, seqs: list[int], delay_s: float, error: str | None
    ) -> AckResult:
        meta = await self._config_of(topic)
        if meta is None:
            raise NotFound(f"topic {topic!r} not found")
        claimed = await self.db.run(lambda s: claim_leases(s, topic=topic, group=group, seqs=seqs))
        retried, dead = set(), []
        nak = b"-NAK"
        if delay_s:
            nak += b" " + json.dumps({"delay": int(delay_s * 1e9)}).encode()
        for lease in claimed:
            if lease.delivered >= meta["max_deliveries"]:
                raw = await self.js.get_msg(stream_name(topic), lease.seq)
                await self._to_dead(
                    topic, group, raw.data or b"", dict(raw.headers or {}), lease.seq, error
                )
                await self.nc.publish(lease.reply, b"+TERM")
                dead.append(lease.seq)
            else:
                await self.nc.publish(lease.reply, nak)
                retried.add(lease.seq)
        if claimed:
            await self.nc.flush()
        done, unknown = _answer_order(seqs, retried)
        return AckResult(done=done, unknown=[q for q in unknown if q not in dead],
                         dead_lettered=dead)  # fmt: skip

    async def configure_push(
        self, *, topic: str, group: str, url: str | None, secret: str | None
    ) -> TopicPublic:
        raise BadRequest("push delivery is not available with the NATS backend; pull instead")

    async def replay_dead(self, *, topic: str, most: int) -> int:
        raise BadRequest("replay is not available with the NATS backend yet")

    async def _to_dead(
        self,
        name: str,
        group: str,
        data: bytes,
        headers: dict[str, str],
        seq: int,
        error: str | None,
    ) -> None:
        extra = json.loads(headers.get("RB-Headers", "{}"))
        extra.update(
            {
                "dead_from_topic": name,
                "dead_from_seq": str(seq),
                "dead_group": group,
                "dead_error": (error or "")[:500],
            }
        )
        await self._publish(
            name + DEAD_SUFFIX,
            [
                EventIn(
                    id=f"{headers.get('Nats-Msg-Id', seq)}@{group}"[:128],
                    type=headers.get("RB-Type", "unknown"),
                    payload=json.loads(data or b"null"),
                    headers={k: str(v) for k, v in extra.items()},
                )
            ],
            producer="dead-letters",
        )

    async def _on_max_deliveries(self, msg: Any) -> None:
        """JetStream gave up on an event nobody acknowledged: keep it as a dead letter."""
        try:
            advisory = json.loads(msg.data)
            stream, seq, group = advisory["stream"], advisory["stream_seq"], advisory["consumer"]
            if not stream.startswith(PREFIX):
                return  # not one of the bus's topics
            raw = await self.js.get_msg(stream, seq)
            info = await self.js.stream_info(stream)
            topic = json.loads(info.config.description)["topic"]
            await self._to_dead(topic, group, raw.data, dict(raw.headers or {}), seq, "timed out")
            await self.db.run(lambda s: claim_leases(s, topic=topic, group=group, seqs=[seq]))
        except Exception:
            log.exception("dead_letter_from_advisory_failed")
