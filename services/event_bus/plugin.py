"""The event bus's plugin: its dashboard pages and the outbox relay's target."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from services.kit.hookspecs import DashboardPage, hookimpl

if TYPE_CHECKING:
    from services.kit.config import Settings

UI = Path(__file__).resolve().parent / "ui"


@hookimpl
def refactorbot_dashboard_pages() -> list[DashboardPage]:
    """This slice's pages under ``ui/``."""
    return [
        DashboardPage("Event bus", "Topics and groups", UI / "topics.py"),
        DashboardPage("Event bus", "Dead letters", UI / "dead_letters.py"),
    ]


@hookimpl
def refactorbot_event_sink(settings: Settings, service: str) -> str | None:
    """Every other service relays its domain events here, unless publishing is off."""
    bus = settings.event_bus
    if service == "event_bus" or not bus.publish_domain_events:
        return None
    base_url: str = bus.base_url
    return base_url
