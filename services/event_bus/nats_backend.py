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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import structlog

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
from services.kit.config import EventBusSettings
from services.kit.errors import NotFound, PayloadTooLarge, ServiceUnavailable, SliceError

log = structlog.get_logger("event_bus.nats")
PREFIX = "RB_"


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


class NatsBus:
    def __init__(self, settings: EventBusSettings) -> None:
        self.settings = settings
        self.nc: Any = None
        self.js: Any = None
        self._subs: dict[tuple[str, str], Any] = {}
        self._ack_wait: dict[tuple[str, str], float] = {}  # per subscription, for answers
        self._leased: OrderedDict[tuple[str, str, int], Any] = OrderedDict()
        self._advisories: Any = None

    async def connect(self) -> None:
        import nats

        self.nc = await nats.connect(
            self.settings.nats_url, connect_timeout=5, max_reconnect_attempts=-1
        )
        self.js = self.nc.jetstream()
        self._advisories = await self.nc.subscribe(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>", cb=self._on_max_deliveries
        )

    async def close(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()

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

    async def configure(self, name: str, cfg: TopicConfig | None = None) -> dict[str, Any]:
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
        return await self._config_of(name) or await self.configure(name)

    async def describe(self, name: str) -> TopicPublic:
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
                out.append(await self.describe(json.loads(info.config.description)["topic"]))
        return sorted(out, key=lambda t: t.name)

    # -- publish -------------------------------------------------------------------------

    async def publish(
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

    async def _sub(self, name: str, group: str) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig

        key = (name, group)
        if key not in self._subs:
            meta = await self._config_of(name)
            if meta is None:
                raise NotFound(f"topic {name!r} not found")
            self._subs[key] = await self.js.pull_subscribe(
                subject(name),
                durable=durable_name(group),
                stream=stream_name(name),
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=meta["visibility_timeout_s"],
                    max_deliver=meta["max_deliveries"],
                ),
            )
            self._ack_wait[key] = meta["visibility_timeout_s"]
        return self._subs[key]

    def visibility_timeout_s(self, name: str, group: str) -> float:
        """The lease of the group's pulls (known once it has pulled)."""
        return self._ack_wait.get((name, group), self.settings.default_visibility_timeout_s)

    async def pull(self, name: str, group: str, most: int, wait_s: float) -> list[Delivery]:
        sub = await self._sub(name, group)
        try:
            msgs = await sub.fetch(most, timeout=max(wait_s, 0.05))
        except TimeoutError:
            return []
        out = []
        for m in msgs:
            meta = m.metadata
            seq = meta.sequence.stream
            self._leased[(name, group, seq)] = m
            while len(self._leased) > 100_000:  # bounded: the oldest leases expire anyway
                self._leased.popitem(last=False)
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
        return out

    async def ack(self, name: str, group: str, seqs: list[int]) -> AckResult:
        done, unknown = [], []
        for seq in seqs:
            m = self._leased.pop((name, group, seq), None)
            if m is None:
                unknown.append(seq)
                continue
            await m.ack()
            done.append(seq)
        return AckResult(done=done, unknown=unknown)

    async def nack(
        self, name: str, group: str, seqs: list[int], delay_s: float, error: str | None
    ) -> AckResult:
        meta = await self._config_of(name)
        if meta is None:
            raise NotFound(f"topic {name!r} not found")
        done, unknown, dead = [], [], []
        for seq in seqs:
            m = self._leased.pop((name, group, seq), None)
            if m is None:
                unknown.append(seq)
                continue
            if m.metadata.num_delivered >= meta["max_deliveries"]:
                await self._to_dead(name, group, m.data, dict(m.headers or {}), seq, error)
                await m.term()
                dead.append(seq)
            else:
                await m.nak(delay=delay_s or None)
                done.append(seq)
        return AckResult(done=done, unknown=unknown, dead_lettered=dead)

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
        await self.publish(
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
            raw = await self.js.get_msg(stream, seq)
            info = await self.js.stream_info(stream)
            topic = json.loads(info.config.description)["topic"]
            await self._to_dead(topic, group, raw.data, dict(raw.headers or {}), seq, "timed out")
        except Exception:
            log.exception("dead_letter_from_advisory_failed")
