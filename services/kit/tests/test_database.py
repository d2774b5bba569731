"""SliceDatabase: WAL + synchronous=FULL, migrations at start-up, units of work."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from services.kit.app import open_database
from services.kit.testing import settings_for_tests
from services.session.models import ChatSession
from services.session.slice import create_slice


def test_sqlite_pragmas_and_migrations(tmp_path: Path) -> None:
    db = open_database(create_slice(), settings_for_tests(tmp_path))
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        assert (tmp_path / "data" / "slice_session.db").exists()
        # running the migrations again is a no-op
        db.migrate()
    finally:
        db.dispose()


def test_unit_of_work_rolls_back_on_error(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    db = open_database(create_slice(), settings_for_tests(tmp_path))
    now = datetime.now(UTC)
    try:
        with pytest.raises(RuntimeError), db.session() as s:
            s.add(ChatSession(id="a", created_at=now, last_active_at=now, meta={}))
            s.flush()
            raise RuntimeError("handler failed")
        with db.session() as s:
            assert s.get(ChatSession, "a") is None
        assert db.ping() is True
        assert "slice_session.db" in db.safe_url
    finally:
        db.dispose()
