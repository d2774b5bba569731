"""SliceDatabase: WAL + synchronous=FULL, migrations at start-up, units of work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from services.kit.app import open_database
from services.kit.kit_tables import leases
from services.kit.testing import settings_for_tests
from services.session.slice import create_slice


def add(session: Any, name: str) -> None:
    """A row in a table every slice's database has (the kit's leases)."""
    session.execute(leases.insert().values(name=name, holder="test", expires_at=0.0))


def has(session: Any, name: str) -> bool:
    return session.execute(select(leases.c.name).where(leases.c.name == name)).first() is not None


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

    db = open_database(create_slice(), settings_for_tests(tmp_path))
    try:
        with pytest.raises(RuntimeError), db.session() as s:
            add(s, "a")
            s.flush()
            raise RuntimeError("handler failed")
        with db.session() as s:
            assert not has(s, "a")
        assert db.ping() is True
        assert "slice_session.db" in db.safe_url
    finally:
        db.dispose()


def test_after_commit_runs_once_committed_and_never_after_a_rollback(tmp_path: Path) -> None:

    from sqlmodel import Session

    from services.kit.database import after_commit

    db = open_database(create_slice(), settings_for_tests(tmp_path))
    seen: list[str] = []

    def saw(what: str) -> None:
        with db.session(write=False) as s:  # its own unit: the write lock is free again
            seen.append(f"{what}:{has(s, what)}")

    try:
        with db.unit() as uow:
            add(uow.session, "a")
            uow.after_commit(lambda: saw("a"))
            after_commit(uow.session, lambda: 1 / 0)  # logged; the others still run
            after_commit(uow.session, lambda: seen.append("last"))
            assert seen == []
        assert seen == ["a:True", "last"]
        with pytest.raises(RuntimeError), db.session() as s:
            add(s, "b")
            after_commit(s, lambda: seen.append("b"))
            raise RuntimeError("handler failed")
        assert seen == ["a:True", "last"]
        with Session(db.engine) as bare, pytest.raises(RuntimeError, match="unit of work"):
            after_commit(bare, lambda: None)
    finally:
        db.dispose()


async def test_run_is_a_unit_of_work(tmp_path: Path) -> None:

    from sqlmodel import Session

    from services.kit.database import after_commit

    db = open_database(create_slice(), settings_for_tests(tmp_path))
    seen: list[bool] = []

    def work(s: Session) -> str:
        add(s, "a")
        s.flush()
        after_commit(s, lambda: seen.append(True))
        return "a"

    try:
        assert await db.run(work) == "a" and seen == [True]
        assert await db.run(lambda s: has(s, "a"), write=False)
    finally:
        db.dispose()
