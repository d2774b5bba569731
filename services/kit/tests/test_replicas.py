"""What replicas of one slice share through its database: leases (SQLite and PostgreSQL,
raced by separate processes), leased schedules, registry versions, improvement feedback."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData, text

from services.kit.app import create_app
from services.kit.database import SliceDatabase
from services.kit.lease import Lease, LeasedSchedule, lease_holder
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.kit.tests.conftest import DemoSlice
from services.kit.tests.test_postgres import pg_url  # noqa: F401 - the fixture
from services.kit.versions import SharedVersion, bump_version, read_version

EMPTY = Path(__file__).parents[2] / "communication" / "migrations" / "versions"  # none
AUTH = {"X-Internal-Token": TEST_TOKEN}


def open_db(url: str) -> SliceDatabase:
    db = SliceDatabase(url, metadata=MetaData(), versions_dir=EMPTY)
    db.migrate()
    return db


def check_lease(url: str) -> None:
    a, b = open_db(url), open_db(url)
    try:
        la = Lease(a, "job", ttl_s=0.5, holder="a")
        lb = Lease(b, "job", ttl_s=0.5, holder="b")
        assert la.acquire() is True
        assert lb.acquire() is False  # held, not expired
        assert la.acquire() is True  # renewed by its holder
        with a.session(write=False) as s:
            assert lease_holder(s, name="job") == "a"
        time.sleep(0.6)
        assert lb.acquire() is True  # expired: passes on
        assert la.acquire() is False
        lb.release()
        assert la.acquire() is True  # released: free at once
        with b.session(write=False) as s:
            assert lease_holder(s, name="job") == "a"
            assert lease_holder(s, name="other") is None
    finally:
        a.dispose()
        b.dispose()


def test_lease_on_sqlite(tmp_path: Path) -> None:
    check_lease(f"sqlite:///{tmp_path / 'x.db'}")


def test_lease_on_postgres(pg_url: str) -> None:  # noqa: F811
    check_lease(pg_url)


RACE = """
import sys, time
from pathlib import Path
from sqlalchemy import MetaData
from services.kit.database import SliceDatabase
from services.kit.lease import Lease
db = SliceDatabase(sys.argv[1], metadata=MetaData(), versions_dir=Path(sys.argv[2]))
start = float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
print("won" if Lease(db, "race", ttl_s=60).acquire() else "lost")
"""


def race(url: str) -> list[str]:
    db = open_db(url)  # migrated once, before the racers start
    db.dispose()
    start = time.time() + 2
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, url, str(EMPTY), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    return sorted(p.communicate(timeout=60)[0].strip() for p in procs)


@pytest.mark.integration
def test_one_of_four_processes_gets_the_lease_sqlite(tmp_path: Path) -> None:
    assert race(f"sqlite:///{tmp_path / 'x.db'}") == ["lost", "lost", "lost", "won"]


@pytest.mark.integration
def test_one_of_four_processes_gets_the_lease_postgres(pg_url: str) -> None:  # noqa: F811
    assert race(pg_url) == ["lost", "lost", "lost", "won"]


def test_leased_schedule_runs_once_across_replicas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    dbs = [open_db(url), open_db(url)]
    runs: list[int] = []

    async def main() -> list[LeasedSchedule]:
        scheds = []
        for i, db in enumerate(dbs):

            async def job(i: int = i) -> None:
                runs.append(i)

            scheds.append(LeasedSchedule(db, "tick", 0.2, job, run_at_start=True))
        for sch in scheds:
            sch.start()
        await asyncio.sleep(1.1)
        await scheds[runs[0]].stop()  # a clean stop hands the job on
        await asyncio.sleep(0.7)
        await scheds[1 - runs[0]].stop()
        return scheds

    try:
        asyncio.run(main())
    finally:
        for db in dbs:
            db.dispose()
    first = runs[0]
    before = runs[: runs.index(1 - first)] if 1 - first in runs else runs
    assert set(before) == {first} and 5 <= len(before) <= 7  # one replica, every 0.2 s
    after = runs[len(before) :]
    assert set(after) == {1 - first} and 2 <= len(after) <= 5


def test_registry_version_bumps_with_the_change(tmp_path: Path) -> None:
    db = open_db(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        seen = SharedVersion("tools", recheck_s=60)
        with db.session() as s:
            assert seen.due() and seen.moved(s) == 0
            seen.loaded_as(0)
            assert not seen.due()  # throttled: no read for a minute
            bump_version(s, name="tools")
            bump_version(s, name="tools")
        with pytest.raises(RuntimeError), db.session() as s:
            bump_version(s, name="tools")
            raise RuntimeError("the change failed: no bump either")
        with db.session(write=False) as s:
            assert read_version(s, name="tools") == 2
            assert seen.moved(s) == 2
            plan = s.execute(
                text("EXPLAIN QUERY PLAN SELECT version FROM kit_registry_versions WHERE name='x'")
            ).all()
            assert "PRIMARY KEY" in str(plan) or "INDEX" in str(plan)  # one indexed read
    finally:
        db.dispose()


@pytest.mark.integration
def test_feedback_sent_to_one_replica_is_planned_by_the_other(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    with (
        serve_app(create_app(DemoSlice(), settings)) as a,
        serve_app(create_app(DemoSlice(), settings)) as b,
    ):
        r = httpx.post(
            f"{a}/improvement/feedback",
            headers=AUTH,
            json={"source": "test", "kind": "quality", "message": "answers too long"},
        )
        assert r.status_code == 202 and r.json() == {"feedback": 1}
        plan = httpx.get(f"{b}/improvement/plan", headers=AUTH).json()
        assert any(x["problem"] == "answers too long" for x in plan["actions"])
        assert plan["based_on"]["feedback"] == 1
        r = httpx.post(
            f"{b}/improvement/feedback",
            headers=AUTH,
            json={"source": "test", "message": "second"},
        )
        assert r.json() == {"feedback": 2}
    with serve_app(create_app(DemoSlice(), settings)) as c:  # and a restart keeps them
        plan = httpx.get(f"{c}/improvement/plan", headers=AUTH).json()
        assert [x["problem"] for x in plan["actions"][-2:]] == ["answers too long", "second"]
