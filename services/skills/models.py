"""The skills slice's tables: the registry, version history, per-session switches and
the reasons skills were refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class SkillsBase(SQLModel, registry=registry()):
    """Own registry: this slice's metadata holds only its own tables."""


class SkillRecord(SkillsBase, table=True):
    __tablename__ = "skills"

    name: str = Field(primary_key=True, max_length=64)
    version: str = Field(max_length=64)
    description: str = Field(max_length=500)
    source: str = Field(max_length=1_000, description="The folder it was loaded from")
    checksum: str = Field(max_length=64, description="sha256 over its files")
    enabled: bool = True
    meta: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    files: list[str] = Field(sa_column=Column(JSON, nullable=False))
    loaded_at: datetime
    updated_at: datetime


class SkillVersion(SkillsBase, table=True):
    __tablename__ = "skill_versions"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, index=True)
    version: str = Field(max_length=64)
    checksum: str = Field(max_length=64)
    source: str = Field(max_length=1_000)
    loaded_at: datetime


class SessionSkill(SkillsBase, table=True):
    """A skill switched on or off for one session."""

    __tablename__ = "session_skills"

    session_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(primary_key=True, max_length=64)
    enabled: bool


class SkillError(SkillsBase, table=True):
    """Why a skill on disk (or an upload) was refused; the latest per source."""

    __tablename__ = "skill_errors"

    source: str = Field(primary_key=True, max_length=1_000)
    reason: str = Field(max_length=1_000)
    at: datetime


class SkillUpload(SkillsBase, table=True):
    """An uploaded skill's archive: the copy every replica unpacks into its own upload
    folder (a replica's disk is its own; the database is shared)."""

    __tablename__ = "skill_uploads"

    name: str = Field(primary_key=True, max_length=64)
    archive: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(max_length=64, description="Of the archive")
    uploaded_at: datetime
