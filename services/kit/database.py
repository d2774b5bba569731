"""A slice's own database: SQLite with WAL and synchronous=FULL by default, any SQLAlchemy URL
otherwise, with its Alembic history applied at start-up."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, event, func, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, create_engine, select

from services.kit.kit_tables import KIT_METADATA

T = TypeVar("T")
M = TypeVar("M", bound=SQLModel)
KIT_ALEMBIC_DIR = Path(__file__).parent / "alembic"
KIT_VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"
KIT_VERSION_TABLE = "kit_alembic_version"
MIGRATION_LOCK_KEY = 0x52420001  # PostgreSQL advisory lock: one replica migrates at a time


def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class SliceDatabase:
    """Engine, sessions and migrations for one slice's database URL."""

    def __init__(self, url: str, *, metadata: MetaData, versions_dir: Path) -> None:
        self.url = make_url(url)
        self.metadata = metadata
        self.versions_dir = versions_dir
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            path = self.url.database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = 20
            kwargs["max_overflow"] = 20
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._write_lock = threading.Lock()
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for status pages and logs."""
        return self.url.render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Apply this slice's Alembic history up to head, then the kit's (the tables every
        slice's database holds, recorded in their own version table). On PostgreSQL the
        replicas starting together take turns (an advisory lock held for the transaction)."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            _upgrade(conn, self.versions_dir, self.metadata, "alembic_version")
            _upgrade(conn, KIT_VERSIONS_DIR, KIT_METADATA, KIT_VERSION_TABLE)

    @contextlib.contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on error.

        On SQLite, units that may write take this process's write lock first: writers then
        queue and wake the moment the lock is free, instead of colliding inside SQLite and
        sleeping in its busy handler (milliseconds each time). Readers never wait (WAL).
        """
        lock = self._write_lock if write and self.is_sqlite else contextlib.nullcontext()
        with lock, Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    async def run(self, fn: Callable[[Session], T], *, write: bool = True) -> T:
        """Run ``fn(session)`` in a worker thread inside one committed unit of work."""

        def work() -> T:
            with self.session(write=write) as session:
                return fn(session)

        return await anyio.to_thread.run_sync(work)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def _upgrade(conn: Any, versions_dir: Path, metadata: MetaData, version_table: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(KIT_ALEMBIC_DIR))
    cfg.set_main_option("version_locations", str(versions_dir))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["target_metadata"] = metadata
    cfg.attributes["version_table"] = version_table
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def page(
    session: Session,
    model: type[M],
    where: list[Any],
    order_by: Any,
    *,
    limit: int,
    offset: int,
) -> tuple[list[M], int]:
    """One page of ``model`` rows matching ``where`` in ``order_by`` order, and how many
    rows match in all (the listing endpoints' shape)."""
    total = session.exec(select(func.count()).select_from(model).where(*where)).one()
    rows = session.exec(
        select(model).where(*where).order_by(order_by).offset(offset).limit(limit)
    ).all()
    return list(rows), int(total)
