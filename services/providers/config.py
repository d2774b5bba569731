"""The LLM gateway's settings: ``providers:`` in the config, ``REFACTORBOT_PROVIDERS__*``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.kit.config import ServiceSettings


class ProvidersSettings(ServiceSettings):
    upstream_timeout_s: float = Field(120.0, gt=0, description="Timeout of one upstream call")
    max_tokens_cap: int = Field(16_384, gt=0, description="Largest max_tokens a caller may ask")
    retry_max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per upstream call (retryable errors only)"
    )
    retry_max_total_s: float = Field(
        20.0, ge=0, description="Longest time spent retrying one call, Retry-After included"
    )
    retry_backoff_s: float = Field(
        0.5, ge=0, description="First backoff when no Retry-After is given (doubles, jittered)"
    )
    ledger_mode: Literal["durable", "write_behind"] = Field(
        "durable",
        description="durable: answer after the usage row is committed; "
        "write_behind: answer first (a hard kill may lose the last moments of rows)",
    )
    ledger_max_queue: int = Field(10_000, gt=0, description="Usage rows waiting at most")
    ledger_max_batch: int = Field(256, gt=0, description="Usage rows per transaction at most")
    budget_cache_ttl_s: float = Field(
        2.0, ge=0, description="How long budget definitions are cached (other replicas' edits)"
    )
    catalog_refresh_s: float = Field(
        21_600, ge=0, description="Refresh the model catalog from upstream this often; 0 never"
    )
    budget_default_max_tokens: int = Field(
        4_096,
        gt=0,
        description="max_tokens reserved and sent when a budget applies and the caller set none",
    )


#: The section this service adds to the fleet's Settings (found by the kit).
SETTINGS_MODEL = ProvidersSettings
