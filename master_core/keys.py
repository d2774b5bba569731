"""API keys: made with 256 bits of randomness, shown once, stored only as a SHA-256 hash.

A fast hash is enough here: the keys are random, not chosen by people, so there is nothing
to guess from the hash; a slow password hash would only cost time on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from master_core.models import ApiKey
from services.kit.database import SliceDatabase

KEY_PREFIX = "rb_"
CACHE_TTL_S = 5.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and whether it may administer."""

    key_id: str
    name: str
    admin: bool


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def store_key(*, session: Session, raw: str, name: str, admin: bool) -> Principal:
    """Store a key's hash (idempotent for the same key) and return its principal."""
    digest = hash_key(raw)
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if row is None:
        row = ApiKey(
            id=uuid.uuid4().hex[:16],
            name=name,
            key_hash=digest,
            prefix=raw[:8],
            admin=admin,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
    return Principal(key_id=row.id, name=row.name, admin=row.admin)


CONFIG_ADMIN_NAME = "admin (from config)"


def sync_config_admin_key(*, session: Session, raw: str) -> Principal:
    """Store the configured admin key and revoke any earlier configured one, so rotating it
    in the config (or env) really retires the old key."""
    principal = store_key(session=session, raw=raw, name=CONFIG_ADMIN_NAME, admin=True)
    now = datetime.now(UTC)
    stale = session.exec(
        select(ApiKey).where(
            ApiKey.name == CONFIG_ADMIN_NAME,
            ApiKey.key_hash != hash_key(raw),
            col(ApiKey.revoked_at).is_(None),
        )
    ).all()
    for row in stale:
        row.revoked_at = now
    return principal


def find_key(*, session: Session, raw: str) -> Principal | None:
    """The principal of a live key, or None."""
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(raw))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Principal(key_id=row.id, name=row.name, admin=row.admin)


class KeyCache:
    """Verified keys for a few seconds, so most requests skip the database."""

    def __init__(self, db: SliceDatabase, ttl_s: float = CACHE_TTL_S, max_entries: int = 10_000):
        self.db = db
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    async def verify(self, raw: str) -> Principal | None:
        digest = hash_key(raw)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await self.db.run(lambda s: find_key(session=s, raw=raw), write=False)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[digest] = (now + self.ttl_s, principal)
        return principal


def create_api_key_cli(settings: object, *, name: str, admin: bool) -> str:
    """Create a key in master_core's database directly (the fleet may be down); return it."""
    from services.kit.app import open_database
    from services.kit.config import Settings
    from services.kit.serve import load_slice

    assert isinstance(settings, Settings)
    db = open_database(load_slice("master_core"), settings)
    try:
        raw = new_key()
        with db.session() as session:
            store_key(session=session, raw=raw, name=name, admin=admin)
        return raw
    finally:
        db.dispose()
