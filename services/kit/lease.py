"""Leases: what must happen once per fleet, not once per replica.

A lease is a row of the slice's ``kit_leases`` table (name, holder, expires_at). Taking it
is one atomic statement, ``INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE the lease
expired or is already mine``, so of any number of replicas racing on one database exactly
one gets it; the holder renews it by taking it again and releases it when it stops.
Expiry is Unix time written by the replicas, so their clocks must agree to well within a
lease's ttl (NTP does); a replica that dies simply stops renewing and the lease passes on
once it expires. Works on SQLite and PostgreSQL (other backends: an UPDATE, then an
INSERT that the primary key makes atomic).

:class:`LeasedSchedule` runs a slice's timer job (consolidation, retention, a catalog
refresh) on whichever replica holds the job's lease: the lease lasts one and a half
periods and the holder renews it at each tick, so one replica keeps the job and another
takes over within a period and a half of the holder's death (at once after a clean stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.kit.database import SliceDatabase
from services.kit.kit_tables import leases

log = structlog.get_logger("lease")


def replica_id() -> str:
    """A name for this process, unique across the fleet: host, pid and a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def take_lease(session: Session, *, name: str, holder: str, ttl_s: float) -> bool:
    """Take or renew the lease ``name`` for ``ttl_s`` seconds if it is free, expired or
    already ``holder``'s; whether ``holder`` now holds it."""
    now = time.time()
    values = {"name": name, "holder": holder, "expires_at": now + ttl_s}
    free = (leases.c.expires_at < now) | (leases.c.holder == holder)
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        ins: Any = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(leases)
        stmt = (
            ins.values(**values)
            .on_conflict_do_update(
                index_elements=[leases.c.name],
                set_={"holder": holder, "expires_at": now + ttl_s},
                where=free,
            )
            .returning(leases.c.holder)
        )
        return session.execute(stmt).first() is not None  # a row only if written
    taken = session.execute(
        update(leases).where(leases.c.name == name, free).values(**values)
    ).rowcount  # type: ignore[attr-defined]
    if taken:
        return True
    try:
        with session.begin_nested():
            session.execute(insert(leases).values(**values))
    except IntegrityError:
        return False  # someone else holds it
    return True


def drop_lease(session: Session, *, name: str, holder: str) -> None:
    """Give the lease up, if ``holder`` holds it."""
    session.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


def lease_holder(session: Session, *, name: str) -> str | None:
    """Who holds the lease now (None when free or expired)."""
    row = session.execute(
        select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)
    ).first()
    return row.holder if row is not None and row.expires_at >= time.time() else None


class Lease:
    """One named lease, as this process tries to hold it."""

    def __init__(
        self, db: SliceDatabase, name: str, *, ttl_s: float, holder: str | None = None
    ) -> None:
        self.db, self.name, self.ttl_s = db, name, ttl_s
        self.holder = holder or replica_id()

    def acquire(self) -> bool:
        """Take or renew it; whether this process holds it now."""
        with self.db.session() as s:
            return take_lease(s, name=self.name, holder=self.holder, ttl_s=self.ttl_s)

    def release(self) -> None:
        with self.db.session() as s:
            drop_lease(s, name=self.name, holder=self.holder)

    async def aacquire(self) -> bool:
        return await anyio.to_thread.run_sync(self.acquire)

    async def arelease(self) -> None:
        await anyio.to_thread.run_sync(self.release)


class LeasedSchedule:
    """``job`` every ``every_s`` seconds on one replica of the fleet: the lease's holder."""

    def __init__(
        self,
        db: SliceDatabase,
        name: str,
        every_s: float,
        job: Callable[[], Awaitable[Any]],
        *,
        run_at_start: bool = False,
    ) -> None:
        self.lease = Lease(db, f"schedule:{name}", ttl_s=every_s * 1.5)
        self.name, self.every_s, self.job, self.run_at_start = name, every_s, job, run_at_start
        self.runs = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop, and hand the lease on at once rather than when it expires."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(Exception):
            await self.lease.arelease()

    async def _run(self) -> None:
        if not self.run_at_start:
            await asyncio.sleep(self.every_s)
        while True:
            try:
                if await self.lease.aacquire():
                    self.runs += 1
                    await self.job()
            except Exception:  # the schedule survives a failed run or a busy database
                log.exception("scheduled_job_failed", job=self.name)
            await asyncio.sleep(self.every_s)
