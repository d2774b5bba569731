"""Shared registry versions: how a replica notices that another one changed a registry it
keeps in memory (the tools' switches, the uploaded skills, the providers' upstreams).

A change bumps the registry's row in ``kit_registry_versions`` in the same transaction as
the change itself, so the new version is visible exactly when the change is. Each replica
remembers the version it loaded; :meth:`SharedVersion.due` says (without any I/O) whether
``recheck_s`` has passed since it last looked, and :meth:`SharedVersion.moved` reads the
one row by its primary key. A replica thus sees another's change within ``recheck_s``
(``replicas.registry_recheck_s``; 0 checks on every request).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from services.kit.kit_tables import registry_versions


def bump_version(session: Session, *, name: str) -> None:
    """Record, in the caller's transaction, that the registry ``name`` changed."""
    now = datetime.now(UTC)
    t = registry_versions
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        ins: Any = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(t)
        session.execute(
            ins.values(name=name, version=1, updated_at=now).on_conflict_do_update(
                index_elements=[t.c.name], set_={"version": t.c.version + 1, "updated_at": now}
            )
        )
        return
    bumped = session.execute(
        update(t).where(t.c.name == name).values(version=t.c.version + 1, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not bumped:
        session.execute(insert(t).values(name=name, version=1, updated_at=now))


def read_version(session: Session, *, name: str) -> int:
    """The registry's current version (0 if it never changed)."""
    found = session.execute(
        select(registry_versions.c.version).where(registry_versions.c.name == name)
    ).scalar()
    return int(found or 0)


class SharedVersion:
    """The version of one shared registry this process has loaded."""

    def __init__(self, name: str, *, recheck_s: float) -> None:
        self.name, self.recheck_s = name, recheck_s
        self.loaded: int | None = None
        self._checked = float("-inf")

    def due(self) -> bool:
        """Whether it is time to look again (no I/O)."""
        return time.monotonic() - self._checked >= self.recheck_s

    def moved(self, session: Session) -> int | None:
        """The current version if it differs from the loaded one, else None."""
        self._checked = time.monotonic()
        now = read_version(session, name=self.name)
        return None if now == self.loaded else now

    def loaded_as(self, version: int) -> None:
        """This process now holds the registry as of ``version``."""
        self.loaded = version
        self._checked = time.monotonic()
