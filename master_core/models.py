"""master_core's tables: API keys, stored hashed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class MasterBase(SQLModel, registry=registry()):
    """Own registry: master_core's metadata holds only its own tables."""


class ApiKey(MasterBase, table=True):
    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=100)
    key_hash: str = Field(max_length=64, unique=True, description="sha256 of the key")
    prefix: str = Field(max_length=12, description="First characters, to recognise a key")
    admin: bool = False
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = Field(default=None, description="Refused from then on (UTC)")
    last_used_at: datetime | None = Field(default=None, description="Updated at most once a minute")
    rotated_at: datetime | None = Field(
        default=None, description="When the secret was last replaced"
    )
