"""The event_bus slice: standard endpoints only, no domain routes yet (issue #7 builds it)."""

from __future__ import annotations

from services.kit.slice_base import AtomicSlice


class EventBusSlice(AtomicSlice):
    name = "event_bus"


def create_slice() -> EventBusSlice:
    return EventBusSlice()
