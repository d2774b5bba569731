"""The event bus's settings: ``event_bus:`` in the config, ``REFACTORBOT_EVENT_BUS__*``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.kit.config import ServiceSettings


class EventBusSettings(ServiceSettings):
    publish_domain_events: bool = Field(
        True, description="Slices relay their domain events (outbox) to the bus"
    )
    default_max_messages: int = Field(100_000, gt=0, description="A new topic's capacity")
    default_max_bytes: int = Field(256 << 20, gt=0, description="A new topic's byte capacity")
    default_visibility_timeout_s: float = Field(
        30.0, gt=0, le=43_200, description="Unacknowledged events are redelivered after this"
    )
    default_max_deliveries: int = Field(
        5, ge=1, le=1_000, description="Deliveries before an event goes to the dead letters"
    )
    max_event_bytes: int = Field(256 * 1024, gt=0, description="Largest event payload")
    max_batch: int = Field(500, gt=0, description="Most events per publish or pull")
    max_topics: int = Field(1_000, gt=0, description="Most topics")
    max_waiters: int = Field(1_000, gt=0, description="Long polls waiting at once")
    max_wait_s: float = Field(30.0, gt=0, description="Longest long poll")
    producer_rate: float = Field(
        0, ge=0, description="Events per second one producer may publish (0: unlimited)"
    )
    retry_after_s: float = Field(1.0, gt=0, description="Retry-After sent with 503/429")
    sweep_every_s: float = Field(
        1.0, gt=0, description="How often expired leases, retention and purges are handled"
    )
    push_enabled: bool = Field(True, description="Deliver to groups' webhooks")
    backend: Literal["sqlite", "nats"] = Field(
        "sqlite", description="sqlite (embedded) or nats (JetStream, for several replicas)"
    )
    nats_url: str = Field("nats://127.0.0.1:4222", description="With backend nats")
    nats_duplicate_window_s: float = Field(
        120.0, gt=0, description="NATS: how long a repeated event id is recognised"
    )


#: The section this service adds to the fleet's Settings (found by the kit).
SETTINGS_MODEL = EventBusSettings
