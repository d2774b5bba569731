"""The session slice's settings: ``session:`` in the config, ``REFACTORBOT_SESSION__*``."""

from __future__ import annotations

from pydantic import Field

from services.kit.config import ServiceSettings


class SessionSettings(ServiceSettings):
    max_message_chars: int = Field(200_000, gt=0, description="Largest message stored")
    max_page_size: int = Field(1_000, gt=0, description="Most messages returned per page")
    retain_max_messages: int = Field(
        0, ge=0, description="Live messages kept per session; older ones archived (0: all)"
    )
    retain_max_age_days: float = Field(
        0, ge=0, description="Messages older than this are archived (0: never)"
    )
    retain_max_tokens: int = Field(
        0, ge=0, description="Live history kept within this many estimated tokens (0: all)"
    )
    retention_every_s: float = Field(
        3_600, ge=0, description="How often retention runs over every session (0: never)"
    )
    max_search_results: int = Field(50, gt=0, description="Most hits a search returns")


#: The section this service adds to the fleet's Settings (found by the kit).
SETTINGS_MODEL = SessionSettings
