"""The event bus's HTTP contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.kit.query import MAX_SEQ

TOPIC = r"^[a-z0-9][a-z0-9._-]{0,127}$"
GROUP = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
DEAD_SUFFIX = ".dead"


class TopicConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_messages: int | None = Field(None, ge=1, le=100_000_000)
    max_bytes: int | None = Field(None, ge=1, le=1 << 40)
    on_full: Literal["reject", "drop_oldest"] = Field(
        "reject", description="reject: publishers get 503; drop_oldest: a lossy topic (metrics)"
    )
    retention_s: float = Field(0, ge=0, description="Delete events older than this (0: keep)")
    visibility_timeout_s: float | None = Field(None, gt=0, le=43_200)
    max_deliveries: int | None = Field(None, ge=1, le=1_000)


class TopicPublic(BaseModel):
    name: str
    max_messages: int
    max_bytes: int
    on_full: str
    retention_s: float
    visibility_timeout_s: float
    max_deliveries: int
    depth: int
    bytes: int
    published: int
    dropped: int | None = Field(description="Dropped by a lossy topic; None: not tracked")
    created_at: datetime
    groups: list[GroupPublic] = Field(default_factory=list)


class GroupPublic(BaseModel):
    name: str
    cursor: int
    push_url: str | None = Field(None, description="Events are pushed here (webhook)")
    lag: int = Field(description="Events not yet acknowledged by this group")
    in_flight: int
    delivered: int
    acked: int
    redelivered: int
    dead_lettered: int | None = Field(description="None: not tracked by this backend")


class TopicsPublic(BaseModel):
    data: list[TopicPublic]
    count: int


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Idempotency: an id seen before is not stored again",
    )
    type: str = Field(min_length=1, max_length=128)
    payload: Any = None
    headers: dict[str, str] = Field(default_factory=dict, max_length=32)


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1, description="Stored atomically, in order")


class Published(BaseModel):
    id: str
    seq: int
    duplicate: bool


class PublishResult(BaseModel):
    topic: str
    data: list[Published]


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max: int = Field(10, ge=1, le=100_000, description="Most events (capped by config)")
    wait_s: float = Field(0, ge=0, le=3_600, description="Long poll: wait (capped by config)")
    consumer: str | None = Field(None, max_length=128, description="Who pulls, for the record")


class Delivery(BaseModel):
    seq: int
    id: str
    type: str
    payload: Any
    headers: dict[str, Any]
    attempt: int
    created_at: datetime


class PullResult(BaseModel):
    topic: str
    group: str
    data: list[Delivery]
    visibility_timeout_s: float


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seqs: list[Annotated[int, Field(ge=1, le=MAX_SEQ)]] = Field(min_length=1, max_length=10_000)


class NackRequest(AckRequest):
    delay_s: float = Field(0, ge=0, le=43_200, description="Redeliver after this long")
    error: str | None = Field(None, max_length=2_000)


class AckResult(BaseModel):
    done: list[int]
    unknown: list[int] = Field(description="Not leased to this group (acked already, or never)")
    dead_lettered: list[int] = Field(default_factory=list)


class ReplayResult(BaseModel):
    replayed: int


TopicPublic.model_rebuild()


class PushConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(
        None,
        max_length=2_000,
        pattern=r"^https?://",
        description="POST each event here; None stops pushing (the group can pull again)",
    )
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=200,
        description="Signs each push: X-RefactorBot-Signature: sha256=HMAC(secret, t.body)",
    )
