"""API keys: stored hashed, verified, revoked/expired/rotated keys refused, made by CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from master_core.keys import (
    KeyVerifier,
    create_api_key_cli,
    find_key,
    hash_key,
    new_key,
    revoke_key,
    rotate_key,
    store_key,
    sync_config_admin_key,
)
from master_core.models import ApiKey
from master_core.schemas import clean_key_name
from services.kit.app import open_database
from services.kit.database import SliceDatabase
from services.kit.errors import Conflict, NotFound, Unauthorized
from services.kit.serve import load_slice
from services.kit.testing import settings_for_tests


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SliceDatabase]:
    database = open_database(load_slice("master_core"), settings_for_tests(tmp_path))
    yield database
    database.dispose()


def test_keys_are_random_and_stored_only_hashed(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    raw = create_api_key_cli(settings, name="ci", admin=False)
    assert raw.startswith("rb_") and len(raw) > 40 and raw != new_key()
    db = open_database(load_slice("master_core"), settings)
    try:
        with db.engine.connect() as conn:
            dump = " ".join(
                str(v) for row in conn.execute(text("SELECT * FROM api_keys")) for v in row
            )
        assert raw not in dump and hash_key(raw) in dump
        with db.session() as s:
            principal = find_key(session=s, raw=raw)
            assert principal is not None and principal.name == "ci" and not principal.admin
            assert find_key(session=s, raw=raw + "x") is None
            # storing the same key again is a no-op, not a duplicate
            assert store_key(session=s, raw=raw, name="other", admin=True).id == principal.key_id
    finally:
        db.dispose()


async def test_revoked_key_is_refused_saying_so(db: SliceDatabase) -> None:
    raw = new_key()
    with db.session() as s:
        store_key(session=s, raw=raw, name="temp", admin=False)
    verifier = KeyVerifier(db)
    principal = await verifier.verify(raw)
    with db.session() as s:
        revoke_key(session=s, key_id=principal.key_id)
    with pytest.raises(Unauthorized, match="revoked"):
        await verifier.verify(raw)
    with pytest.raises(Unauthorized, match="invalid API key"):
        await verifier.verify(raw + "x")


async def test_expired_key_is_refused_saying_it_expired(db: SliceDatabase) -> None:
    raw = new_key()
    with db.session() as s:
        row = store_key(
            session=s,
            raw=raw,
            name="short",
            admin=False,
            expires_at=datetime.now(UTC) + timedelta(seconds=60),
        )
    verifier = KeyVerifier(db)
    assert (await verifier.verify(raw)).key_id == row.id
    await asyncio.gather(*verifier._tasks)  # the use is recorded beside the request
    with db.session() as s:
        stored = s.get(ApiKey, row.id)
        assert stored is not None and stored.last_used_at is not None  # the use was recorded
        stored.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    with pytest.raises(Unauthorized, match="expired at"):
        await verifier.verify(raw)


def test_rotate_keeps_the_identity_and_kills_the_old_secret(db: SliceDatabase) -> None:
    old = new_key()
    with db.session() as s:
        row = store_key(session=s, raw=old, name="bot", admin=False)
    with db.session() as s:
        rotated, new = rotate_key(session=s, key_id=row.id)
        assert (rotated.id, rotated.name, rotated.admin) == (row.id, "bot", False)
    with db.session() as s:
        assert find_key(session=s, raw=old) is None
        found = find_key(session=s, raw=new)
        assert found is not None and found.key_id == row.id
        revoke_key(session=s, key_id=row.id)
    with db.session() as s, pytest.raises(Conflict, match="revoked"):
        rotate_key(session=s, key_id=row.id)
    with db.session() as s, pytest.raises(NotFound):
        revoke_key(session=s, key_id="0" * 16)


def test_last_live_admin_and_the_configured_key_cannot_be_revoked(db: SliceDatabase) -> None:
    with db.session() as s:
        one = store_key(session=s, raw=new_key(), name="ops", admin=True)
    with db.session() as s, pytest.raises(Conflict, match="last live admin key"):
        revoke_key(session=s, key_id=one.id)
    with db.session() as s:
        two = store_key(session=s, raw=new_key(), name="ops2", admin=True)
        revoke_key(session=s, key_id=one.id)  # another admin is left: fine
        assert revoke_key(session=s, key_id=one.id).revoked_at is not None  # idempotent
    with db.session() as s:
        config = sync_config_admin_key(session=s, raw="rb_configured_admin")
        revoke_key(session=s, key_id=two.id)  # the configured admin key is still live
    with db.session() as s, pytest.raises(Conflict, match="config"):
        revoke_key(session=s, key_id=config.key_id)
    with db.session() as s, pytest.raises(Conflict, match="config"):
        rotate_key(session=s, key_id=config.key_id)


@pytest.mark.parametrize("bad", ["", "   ", "a\x00b", "tab\there", "x" * 101, "new\nline"])
def test_key_names_are_printable_trimmed_and_bounded(bad: str) -> None:
    with pytest.raises(ValueError):
        clean_key_name(bad)
    assert clean_key_name("  ci bot  ") == "ci bot"


def test_rotating_the_configured_admin_key_revokes_the_old_one(db: SliceDatabase) -> None:
    with db.session() as s:
        sync_config_admin_key(session=s, raw="rb_old_admin_key")
    with db.session() as s:
        sync_config_admin_key(session=s, raw="rb_new_admin_key")
        sync_config_admin_key(session=s, raw="rb_new_admin_key")  # restart: no-op
    with db.session() as s:
        assert find_key(session=s, raw="rb_old_admin_key") is None
        new = find_key(session=s, raw="rb_new_admin_key")
        assert new is not None and new.admin
