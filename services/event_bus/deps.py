"""What the event bus routes need (kept apart from slice.py: no cycle): the bus chosen at
start-up, behind the ``Bus`` protocol."""

from __future__ import annotations

from typing import Annotated

import aiohttp
from fastapi import Depends, Request

from services.event_bus.bus import Bus
from services.event_bus.config import EventBusSettings
from services.event_bus.nats_backend import NatsBus
from services.event_bus.sqlite_backend import SqliteBus
from services.kit.database import SliceDatabase


def open_bus(settings: EventBusSettings, db: SliceDatabase, http: aiohttp.ClientSession) -> Bus:
    """The configured backend (not started yet)."""
    if settings.backend == "nats":
        return NatsBus(settings, db)
    return SqliteBus(settings, db, http)


async def get_bus(request: Request) -> Bus:
    bus: Bus = request.app.state.slice.bus
    return bus


BusDep = Annotated[Bus, Depends(get_bus)]
