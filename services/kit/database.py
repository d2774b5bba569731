"""A slice's own database: SQLite with WAL and synchronous=FULL by default, any SQLAlchemy URL
otherwise, with its Alembic history applied at start-up.

One transaction pattern: the unit of work
-----------------------------------------
Every transaction is a :class:`UnitOfWork`: one session, committed once at its end when
the work succeeded and rolled back when it raised, then its after-commit callbacks. Whoever
opens the unit owns the transaction; everything it calls only adds, changes and
``flush()``-es (to get ids or to turn a constraint into a 409), never commits.

- A request: the route takes ``DbSessionDep`` (the session) or ``UnitOfWorkDep`` (the
  unit) from :mod:`services.kit.app`; the dependency opens the unit, the handler returns,
  the unit commits and runs its callbacks, and only then is the response sent, so a 2xx
  means the change is on disk. An error rolls it back.
- An async slice (or an async route): ``await db.run(fn)`` runs ``fn(session)`` in a
  worker thread as one unit (committed at its end, callbacks after), off the event loop.
- Anything else (start-up, timers, background tasks, scripts): ``with db.unit() as uow``,
  or ``with db.session() as session`` when no callback is needed; it is the same unit.

What must follow the commit (reloading a cache the change made stale) is registered with
``uow.after_commit(callback)``, or with ``after_commit(session, callback)`` from a service
that holds only the session. Callbacks take no argument and run in the thread that
committed, after the commit and after the unit let go of its session and of the SQLite
write lock (so one may open its own unit to read); a rolled-back unit drops them. A
failing callback is logged and does not fail the others nor the request: its change is
committed, and a reply of 500 would invite a retry of it. Event-loop work (waking a
long-poll) stays in the async caller, after ``await db.run(...)`` has returned: that is
after the commit already, and on the loop's own thread.

The kit's own transaction boundaries (:mod:`services.kit.group_commit`, which commits one
unit per batch of writers, and the outbox relay) are units like any other.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, event, func, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, create_engine, select

from services.kit.kit_tables import KIT_METADATA

log = structlog.get_logger("kit.database")
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

    def unit(self, *, write: bool = True) -> UnitOfWork:
        """A new unit of work on this database (use it as a context manager)."""
        return UnitOfWork(self, write=write)

    @contextlib.contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """A unit of work, yielding only its session (``after_commit(session, fn)`` still
        reaches the unit)."""
        with UnitOfWork(self, write=write) as uow:
            yield uow.session

    async def run(self, fn: Callable[[Session], T], *, write: bool = True) -> T:
        """Run ``fn(session)`` in a worker thread as one unit of work: committed once at
        its end, its after-commit callbacks after that; ``fn``'s result."""

        def work() -> T:
            with UnitOfWork(self, write=write) as uow:
                return fn(uow.session)

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


UNIT_OF_WORK_KEY = "unit_of_work"  # the unit a session belongs to, in ``session.info``


class UnitOfWork:
    """One transaction: a session, committed on success and rolled back on error, and the
    callbacks to run once it is committed (see the module's docstring).

    On SQLite, units that may write take the database's write lock first: writers then
    queue and wake the moment the lock is free, instead of colliding inside SQLite and
    sleeping in its busy handler (milliseconds each time). Readers never wait (WAL).
    """

    __slots__ = ("_callbacks", "_lock", "db", "session", "write")

    def __init__(self, db: SliceDatabase, *, write: bool = True) -> None:
        self.db, self.write = db, write
        self._lock: threading.Lock | None = db._write_lock if write and db.is_sqlite else None
        self._callbacks: list[Callable[[], object]] = []
        self.session: Session

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` once this unit is committed (never if it is rolled back)."""
        self._callbacks.append(callback)

    def __enter__(self) -> UnitOfWork:
        if self._lock is not None:
            self._lock.acquire()
        try:
            self.session = Session(self.db.engine, expire_on_commit=False)
        except BaseException:
            self._release()
            raise
        self.session.info[UNIT_OF_WORK_KEY] = self
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                try:
                    self.session.commit()
                except BaseException:
                    self.session.rollback()
                    raise
            else:
                self.session.rollback()
        finally:
            self.session.close()
            self._release()
        if exc_type is None:
            self._run_callbacks()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _run_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # committed already: log it, run the rest, keep the reply
                log.exception("after_commit_failed", callback=repr(callback)[:200])


def after_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run ``callback()`` once the unit of work ``session`` belongs to is committed."""
    uow = session.info.get(UNIT_OF_WORK_KEY)
    if not isinstance(uow, UnitOfWork):
        raise RuntimeError("the session is not a unit of work's: open it with db.unit()")
    uow.after_commit(callback)


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
