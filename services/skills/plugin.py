"""The skills slice's plugin: its dashboard pages."""

from __future__ import annotations

from pathlib import Path

from services.kit.hookspecs import DashboardPage, hookimpl

UI = Path(__file__).resolve().parent / "ui"


@hookimpl
def refactorbot_dashboard_pages() -> list[DashboardPage]:
    """This slice's pages under ``ui/``."""
    return [
        DashboardPage("Skills", "Skills", UI / "skills.py"),
    ]
