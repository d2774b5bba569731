"""The skills slice's HTTP contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SKILL_NAME = r"^[a-z][a-z0-9-]{1,63}$"


class SkillSummary(BaseModel):
    name: str
    version: str
    description: str
    tags: list[str]
    triggers: list[str]
    requires_tools: list[str]
    source: str
    checksum: str
    enabled: bool
    updated_at: datetime


class SkillError(BaseModel):
    source: str
    reason: str
    at: datetime


class SkillsPublic(BaseModel):
    data: list[SkillSummary]
    count: int
    errors: list[SkillError] = Field(description="Skills refused at the last load, and why")


class SkillDetail(SkillSummary):
    instructions: str
    files: list[str]
    resources: list[str]
    meta: dict[str, Any]
    versions: list[dict[str, Any]]


class SkillToggle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class ReloadResult(BaseModel):
    loaded: list[str] = Field(description="New or changed skills")
    unchanged: int
    removed: list[str]
    errors: list[SkillError]


class SelectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000, description="The user's request")
    session_id: str | None = Field(None, max_length=64)
    available_tools: list[str] | None = Field(
        None, max_length=500, description="Tools the agent can use; None: do not check"
    )
    token_budget: int | None = Field(None, ge=0, le=100_000)


class SelectedSkill(BaseModel):
    name: str
    version: str
    score: float
    why: str
    instructions: str
    tokens: int


class SkippedSkill(BaseModel):
    name: str
    reason: str


class SelectResult(BaseModel):
    selected: list[SelectedSkill]
    skipped: list[SkippedSkill]
