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


def test_after_commit_runs_once_committed_and_never_after_a_rollback(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlmodel import Session

    from services.kit.database import after_commit

    db = open_database(create_slice(), settings_for_tests(tmp_path))
    now = datetime.now(UTC)
    seen: list[str] = []

    def saw(what: str) -> None:
        with db.session(write=False) as s:  # its own unit: the write lock is free again
            seen.append(f"{what}:{s.get(ChatSession, what) is not None}")

    try:
        with db.unit() as uow:
            uow.session.add(ChatSession(id="a", created_at=now, last_active_at=now, meta={}))
            uow.after_commit(lambda: saw("a"))
            after_commit(uow.session, lambda: 1 / 0)  # logged; the others still run
            after_commit(uow.session, lambda: seen.append("last"))
            assert seen == []
        assert seen == ["a:True", "last"]
        with pytest.raises(RuntimeError), db.session() as s:
            s.add(ChatSession(id="b", created_at=now, last_active_at=now, meta={}))
            after_commit(s, lambda: seen.append("b"))
            raise RuntimeError("handler failed")
        assert seen == ["a:True", "last"]
        with Session(db.engine) as bare, pytest.raises(RuntimeError, match="unit of work"):
            after_commit(bare, lambda: None)
    finally:
        db.dispose()


async def test_run_is_a_unit_of_work(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlmodel import Session

    from services.kit.database import after_commit

    db = open_database(create_slice(), settings_for_tests(tmp_path))
    now = datetime.now(UTC)
    seen: list[bool] = []

    def work(s: Session) -> str:
        s.add(ChatSession(id="a", created_at=now, last_active_at=now, meta={}))
        s.flush()
        after_commit(s, lambda: seen.append(True))
        return "a"

    try:
        assert await db.run(work) == "a" and seen == [True]
        assert await db.run(lambda s: s.get(ChatSession, "a") is not None, write=False)
    finally:
        db.dispose()
