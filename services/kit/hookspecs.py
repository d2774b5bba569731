"""The project's pluggy hooks: what a plugin may add to the fleet.

A plugin is a module with ``@hookimpl`` functions named like the specs below. Every
service's ``plugin.py`` (built-in or installed slice package) is registered by
``services.kit.plugins``, and so is every module in the entry-point group ``refactorbot``,
the same way. Hooks may be plain functions; they must not do I/O at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from services.kit.config import Settings

PROJECT = "refactorbot"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class DashboardPage:
    """One page of the dashboard: a Streamlit script shown under ``section``."""

    section: str
    title: str
    path: Path
    icon: str | None = None
    url_path: str | None = None  # default: the file's name


@hookspec
def refactorbot_dashboard_pages() -> list[DashboardPage]:
    """Dashboard pages this plugin adds to the navigation."""
    raise NotImplementedError


@hookspec(firstresult=True)
def refactorbot_event_sink(settings: Settings, service: str) -> str | None:
    """Base URL the named service's outbox relays its domain events to (None: no relay)."""
    raise NotImplementedError
