"""API keys: stored hashed, verified, revoked keys refused, created by CLI and by admins."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from master_core.keys import KeyCache, create_api_key_cli, find_key, hash_key, new_key, store_key
from master_core.models import ApiKey
from services.kit.app import open_database
from services.kit.serve import load_slice
from services.kit.testing import settings_for_tests


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
            assert store_key(session=s, raw=raw, name="other", admin=True) == principal
    finally:
        db.dispose()


async def test_revoked_key_is_refused(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    raw = create_api_key_cli(settings, name="temp", admin=False)
    db = open_database(load_slice("master_core"), settings)
    try:
        cache = KeyCache(db, ttl_s=0)
        assert (await cache.verify(raw)) is not None
        with db.session() as s:
            row = s.get(ApiKey, (await cache.verify(raw)).key_id)  # type: ignore[union-attr]
            row.revoked_at = datetime.now(UTC)  # type: ignore[union-attr]
        assert (await cache.verify(raw)) is None
    finally:
        db.dispose()


def test_rotating_the_configured_admin_key_revokes_the_old_one(tmp_path: Path) -> None:
    from master_core.keys import sync_config_admin_key

    settings = settings_for_tests(tmp_path)
    db = open_database(load_slice("master_core"), settings)
    try:
        with db.session() as s:
            sync_config_admin_key(session=s, raw="rb_old_admin_key")
        with db.session() as s:
            sync_config_admin_key(session=s, raw="rb_new_admin_key")
            sync_config_admin_key(session=s, raw="rb_new_admin_key")  # restart: no-op
        with db.session() as s:
            assert find_key(session=s, raw="rb_old_admin_key") is None
            new = find_key(session=s, raw="rb_new_admin_key")
            assert new is not None and new.admin
    finally:
        db.dispose()
