"""API keys: made with 256 bits of randomness, shown once, stored only as a SHA-256 hash.

A fast hash is enough here: the keys are random, not chosen by people, so there is nothing
to guess from the hash; a slow password hash would only cost time on every request.

Every request looks its key up in the database (one read by the unique ``key_hash``
index), with no per-process cache: a revoked, rotated or expired key is refused at once by
every replica sharing the database. Measured on SQLite, the read costs about as much as the
cache saved (see the commit that dropped the cache), so there is nothing left to invalidate.

Rules an admin cannot break by accident (409 Conflict):
- the last live admin key cannot be revoked (the fleet would have no administrator left);
- the key from the config (``master_core.admin_api_key``) is not revoked or rotated through
  the API: the config would bring it back at the next start; change the config instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import structlog
from sqlalchemy import bindparam
from sqlmodel import Session, col, or_, select

from master_core.models import ApiKey
from master_core.schemas import clean_key_name
from services.kit.database import SliceDatabase, page
from services.kit.errors import Conflict, NotFound, Unauthorized

KEY_PREFIX = "rb_"
TOUCH_INTERVAL = timedelta(seconds=60)  # last_used_at is written at most this often
CONFIG_ADMIN_NAME = "admin (from config)"
log = structlog.get_logger("master_core.keys")
_BY_HASH = select(ApiKey).where(col(ApiKey.key_hash) == bindparam("digest"))


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and whether it may administer."""

    key_id: str
    name: str
    admin: bool


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", errors="surrogatepass")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A stored datetime (naive on SQLite) as an aware UTC one."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _is_live(row: ApiKey, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or as_utc(row.expires_at) > now)


def key_state(row: ApiKey, now: datetime | None = None) -> str:
    """active, expired or revoked."""
    if row.revoked_at is not None:
        return "revoked"
    return "active" if _is_live(row, now or utcnow()) else "expired"


def describe_key(row: ApiKey) -> dict[str, object]:
    """A key's public fields (never the hash), times in UTC, and its state."""
    fields: dict[str, object] = row.model_dump(exclude={"key_hash"})
    for name, value in fields.items():
        if isinstance(value, datetime):
            fields[name] = as_utc(value)
    return fields | {"state": key_state(row)}


def store_key(
    *,
    session: Session,
    raw: str,
    name: str,
    admin: bool,
    expires_at: datetime | None = None,
) -> ApiKey:
    """Store a key's hash (idempotent for the same key) and return its row."""
    digest = hash_key(raw)
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if row is None:
        row = ApiKey(
            id=uuid.uuid4().hex[:16],
            name=clean_key_name(name),
            key_hash=digest,
            prefix=raw[:8],
            admin=admin,
            created_at=utcnow(),
            expires_at=None if expires_at is None else as_utc(expires_at),
        )
        session.add(row)
        session.flush()
    return row


def principal_of(row: ApiKey) -> Principal:
    return Principal(key_id=row.id, name=row.name, admin=row.admin)


def sync_config_admin_key(*, session: Session, raw: str) -> Principal:
    """Store the configured admin key and revoke any earlier configured one, so rotating it
    in the config (or env) really retires the old key."""
    row = store_key(session=session, raw=raw, name=CONFIG_ADMIN_NAME, admin=True)
    stale = session.exec(
        select(ApiKey).where(
            ApiKey.name == CONFIG_ADMIN_NAME,
            ApiKey.key_hash != hash_key(raw),
            col(ApiKey.revoked_at).is_(None),
        )
    ).all()
    now = utcnow()
    for old in stale:
        old.revoked_at = now
    return principal_of(row)


def check_key(*, session: Session, raw: str, now: datetime | None = None) -> ApiKey:
    """The row of a live key; Unauthorized saying why otherwise. Only reads."""
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(raw))).first()
    return check_row(row, now or utcnow())


def check_row(row: ApiKey | None, now: datetime) -> ApiKey:
    """``row`` if it is a live key at ``now``; Unauthorized saying why otherwise."""
    if row is None:
        raise Unauthorized("invalid API key", headers={"WWW-Authenticate": "Bearer"})
    if row.revoked_at is not None:
        raise Unauthorized("this API key was revoked", headers={"WWW-Authenticate": "Bearer"})
    if row.expires_at is not None and as_utc(row.expires_at) <= now:
        when = as_utc(row.expires_at).isoformat(timespec="seconds")
        raise Unauthorized(
            f"this API key expired at {when}; ask an admin for a new one",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return row


def find_key(*, session: Session, raw: str) -> Principal | None:
    """The principal of a live key, or None."""
    try:
        return principal_of(check_key(session=session, raw=raw))
    except Unauthorized:
        return None


def list_keys(*, session: Session, limit: int, offset: int) -> tuple[list[ApiKey], int]:
    """Every key, newest first (revoked and expired ones too: they say so)."""
    return page(session, ApiKey, [], col(ApiKey.created_at).desc(), limit=limit, offset=offset)


def _get_key(session: Session, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key {key_id!r}")
    return row


def _refuse_config_key(row: ApiKey, action: str) -> None:
    if row.name == CONFIG_ADMIN_NAME:
        raise Conflict(
            f"key {row.id} comes from the config (master_core.admin_api_key) and cannot be "
            f"{action} here: it would come back at the next start; change the config instead"
        )


def revoke_key(*, session: Session, key_id: str) -> ApiKey:
    """Revoke a key at once (idempotent). The last live admin key cannot be revoked."""
    row = _get_key(session, key_id)
    if row.revoked_at is not None:
        return row
    _refuse_config_key(row, "revoked")
    now = utcnow()
    if row.admin and _is_live(row, now):
        others = session.exec(
            select(ApiKey).where(
                col(ApiKey.admin).is_(True),
                ApiKey.id != row.id,
                col(ApiKey.revoked_at).is_(None),
                or_(col(ApiKey.expires_at).is_(None), col(ApiKey.expires_at) > now),
            )
        ).first()
        if others is None:
            raise Conflict(
                f"key {row.id} is the last live admin key: revoking it would leave the fleet "
                "without an administrator; create another admin key first"
            )
    row.revoked_at = now
    return row


def rotate_key(*, session: Session, key_id: str) -> tuple[ApiKey, str]:
    """A new secret for the same key (id, name, admin, expiry); the old one dies at once."""
    row = _get_key(session, key_id)
    if row.revoked_at is not None:
        raise Conflict(f"key {row.id} is revoked; create a new key instead")
    now = utcnow()
    if not _is_live(row, now):
        raise Conflict(f"key {row.id} has expired; create a new key instead")
    _refuse_config_key(row, "rotated")
    raw = new_key()
    row.key_hash = hash_key(raw)
    row.prefix = raw[:8]
    row.rotated_at = now
    return row, raw


class KeyVerifier:
    """Checks the key of each request against the shared database (no cache: see above)."""

    def __init__(self, db: SliceDatabase):
        self.db = db
        self._touching: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def verify(self, raw: str) -> Principal:
        """The caller's principal; Unauthorized (invalid, revoked, expired) otherwise."""
        now = utcnow()
        digest = hash_key(raw)

        def read() -> ApiKey | None:  # a plain indexed read: no ORM unit of work per request
            with self.db.engine.connect() as conn:
                found = conn.execute(_BY_HASH, {"digest": digest}).mappings().first()
            return None if found is None else ApiKey.model_construct(**found)

        row = check_row(await anyio.to_thread.run_sync(read), now)
        principal = principal_of(row)
        stale = row.last_used_at is None or now - as_utc(row.last_used_at) >= TOUCH_INTERVAL
        if stale and principal.key_id not in self._touching:
            # Recorded beside the request, never in its way: the request may itself hold
            # the database's write lock (a route's unit of work) for as long as it runs.
            self._touching.add(principal.key_id)
            task = asyncio.create_task(self._touch(principal.key_id, now))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return principal

    async def _touch(self, key_id: str, when: datetime) -> None:
        try:
            await self.db.run(lambda s: _touch(s, key_id, when))
        except Exception:  # a missed "last used" is not worth failing anything for
            log.warning("key_touch_failed", key_id=key_id, exc_info=True)
        finally:
            self._touching.discard(key_id)


def _touch(session: Session, key_id: str, when: datetime) -> None:
    row = session.get(ApiKey, key_id)
    if row is not None:
        row.last_used_at = when


def expiry_from(*, days: int | None, at: datetime | None) -> datetime | None:
    """When a new key expires: ``days`` from now or ``at`` (which must be in the future)."""
    if days is not None:
        return utcnow() + timedelta(days=days)
    if at is not None:
        return as_utc(at)
    return None


def open_master_db(settings: object) -> SliceDatabase:
    """master_core's database, migrated, for the CLI (the fleet may be down)."""
    from services.kit.app import open_database
    from services.kit.config import Settings
    from services.kit.serve import load_slice

    assert isinstance(settings, Settings)
    return open_database(load_slice("master_core"), settings)


def create_api_key_cli(
    settings: object, *, name: str, admin: bool, expires_in_days: int | None = None
) -> str:
    """Create a key in master_core's database directly (the fleet may be down); return it."""
    db = open_master_db(settings)
    try:
        raw = new_key()
        with db.session() as session:
            store_key(
                session=session,
                raw=raw,
                name=name,
                admin=admin,
                expires_at=expiry_from(days=expires_in_days, at=None),
            )
        return raw
    finally:
        db.dispose()
