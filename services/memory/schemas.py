"""The memory slice's HTTP contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Scope = Literal["user", "session", "global"]
MEMORY_ID = r"^[a-f0-9]{32}$"
TAG = r"^[A-Za-z0-9_.:-]{1,40}$"


def _clean_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(t.lower() for t in tags))


class MemoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Scope = Field(description="user: one user's; session: one conversation's; global")
    subject: str = Field(
        "", max_length=128, description="The user id (scope user) or session id (scope session)"
    )
    text: str = Field(min_length=1, description="What to remember (size-capped by config)")
    kind: str = Field("note", pattern=r"^[a-z_]{1,16}$", description="fact, preference, decision")
    importance: float = Field(0.5, ge=0, le=1)
    tags: list[str] = Field(default_factory=list)
    source_session: str | None = Field(None, max_length=64)
    source_message: int | None = Field(None, ge=1)

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        import re

        for t in tags:
            if not re.match(TAG, t):
                raise ValueError(f"tag {t!r} must be 1-40 letters, digits or _.:-")
        return _clean_tags(tags)

    @model_validator(mode="after")
    def _subject(self) -> MemoryCreate:
        if self.scope == "global" and self.subject:
            raise ValueError("a global memory has no subject")
        if self.scope != "global" and not self.subject:
            raise ValueError(f"a {self.scope} memory needs a subject (the {self.scope} id)")
        return self


class MemoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, min_length=1)
    kind: str | None = Field(None, pattern=r"^[a-z_]{1,16}$")
    importance: float | None = Field(None, ge=0, le=1)
    tags: list[str] | None = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str] | None) -> list[str] | None:
        return None if tags is None else MemoryCreate._tags(tags)


class MemoryPublic(BaseModel):
    id: str
    scope: str
    subject: str
    owner: str | None
    text: str
    kind: str
    importance: float
    tags: list[str]
    source_session: str | None
    source_message: int | None
    mentions: int
    created_at: datetime
    updated_at: datetime


class MemoriesPublic(BaseModel):
    data: list[MemoryPublic]
    count: int


class MemoryHit(BaseModel):
    memory: MemoryPublic
    score: float = Field(description="Relevance: BM25 (higher is better), weighted by importance")


class SearchResults(BaseModel):
    query: str
    data: list[MemoryHit]


class ConsolidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    min_age_s: float | None = Field(
        None, ge=0, description="Only messages at least this old (default from config)"
    )


class ConsolidationPublic(BaseModel):
    id: int
    started_at: datetime
    finished_at: datetime | None
    session_id: str
    status: str
    from_seq: int
    to_seq: int
    model: str | None
    prompt: str
    output: str
    created: int
    merged: int
    cost_usd: float
    error: str | None
    details: dict[str, Any]


class ConsolidationsPublic(BaseModel):
    data: list[ConsolidationPublic]
    count: int
