"""The event bus's tables: topics with capacities, events, consumer groups and leases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class BusBase(SQLModel, registry=registry()):
    """Own registry: this slice's metadata holds only its own tables."""


class Topic(BusBase, table=True):
    __tablename__ = "topics"

    name: str = Field(primary_key=True, max_length=128)
    max_messages: int
    max_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    on_full: str = Field(max_length=16, description="reject | drop_oldest")
    retention_s: float = Field(default=0, description="Delete events older than this (0: keep)")
    visibility_timeout_s: float
    max_deliveries: int
    depth: int = 0
    bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    published: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    dropped: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_at: datetime


class Event(BusBase, table=True):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("topic", "event_id", name="uq_events_topic_event_id"),
        Index("ix_events_topic_seq", "topic", "seq"),
        {"sqlite_autoincrement": True},  # seqs are never reused after purges
    )

    seq: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=128)
    event_id: str = Field(max_length=128)
    type: str = Field(max_length=128)
    payload: Any = Field(sa_column=Column(JSON, nullable=False))
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    size: int
    producer: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(index=True)


class Group(BusBase, table=True):
    """A consumer group: it has read the topic up to ``cursor`` (leases aside)."""

    __tablename__ = "groups"

    topic: str = Field(primary_key=True, max_length=128)
    name: str = Field(primary_key=True, max_length=128)
    cursor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    delivered: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    acked: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    redelivered: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    dead_lettered: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    push_url: str | None = Field(default=None, max_length=2_000, description="Webhook")
    push_secret: str | None = Field(
        default=None, max_length=200, description="HMAC key for the webhook; never returned"
    )
    created_at: datetime


class Lease(BusBase, table=True):
    """An event handed to a group and not yet acknowledged."""

    __tablename__ = "leases"
    __table_args__ = (Index("ix_leases_due", "topic", "group_name", "lease_until"),)

    topic: str = Field(primary_key=True, max_length=128)
    group_name: str = Field(primary_key=True, max_length=128)
    seq: int = Field(primary_key=True)
    attempts: int = 1
    lease_until: float = Field(description="Unix time the lease ends")
    consumer: str | None = Field(default=None, max_length=128)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class NatsLease(BusBase, table=True):
    """An event the NATS backend handed to a group: where to acknowledge it. Kept in the
    database, not in a process, so any replica can ack, nack or dead-letter it."""

    __tablename__ = "nats_leases"
    __table_args__ = (Index("ix_nats_leases_until", "lease_until"),)

    topic: str = Field(primary_key=True, max_length=128)
    group_name: str = Field(primary_key=True, max_length=128)
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    reply: str = Field(max_length=512, description="JetStream's ack subject of this delivery")
    delivered: int = Field(description="Deliveries so far, this one included")
    lease_until: float = Field(description="Unix time JetStream redelivers it")


class ProducerBucket(BusBase, table=True):
    """A producer's token bucket, shared by every replica (``producer_rate``)."""

    __tablename__ = "producer_buckets"

    producer: str = Field(primary_key=True, max_length=64)
    tokens: float
    updated_at: float = Field(description="Unix time of the last take")
