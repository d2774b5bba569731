"""The memory slice's settings: ``memory:`` in the config, ``REFACTORBOT_MEMORY__*``."""

from __future__ import annotations

from pydantic import Field

from services.kit.config import ServiceSettings


class MemorySettings(ServiceSettings):
    max_text_chars: int = Field(4_000, gt=0, description="Longest memory text")
    max_tags: int = Field(20, gt=0, description="Most tags on one memory")
    max_search_results: int = Field(50, gt=0, description="Most hits one search returns")
    consolidate_every_s: float = Field(
        3_600, ge=0, description="Consolidate every session's new history this often (0: never)"
    )
    consolidate_min_age_s: float = Field(
        300, ge=0, description="Only messages at least this old are consolidated"
    )
    consolidate_max_messages: int = Field(
        200, gt=0, description="Messages one consolidation run reads at most"
    )
    consolidation_model: str | None = Field(
        None, max_length=200, description="Model that extracts memories (default: the agent's)"
    )
    duplicate_similarity: float = Field(
        0.8, gt=0, le=1, description="Word overlap (Jaccard) above which memories merge"
    )


#: The section this service adds to the fleet's Settings (found by the kit).
SETTINGS_MODEL = MemorySettings
