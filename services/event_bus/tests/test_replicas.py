"""Two replicas of the bus on one database (and one NATS): what one replica leases, the
other can acknowledge, and a producer's rate limit holds for both together. Each runs on
a SQLite file and on PostgreSQL (127.0.0.1:5432; skipped, saying why, when absent)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.event_bus.slice import create_slice
from services.event_bus.tests.conftest import publish, pull
from services.event_bus.tests.test_nats import _nats_up, cleanup
from services.kit.app import create_app
from services.kit.testing import (
    TEST_TOKEN,
    fresh_postgres_database,
    serve_app,
    settings_for_tests,
)

pytestmark = pytest.mark.integration  # every test here starts servers or processes


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Settings for one shared database: the data folder's SQLite file, or a fresh
    PostgreSQL database."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_postgres_database() as url:
        yield {"database_url": url}


def replicas(tmp_path: Path, stack: ExitStack, **bus: Any) -> tuple[httpx.Client, httpx.Client]:
    """Two apps on one database, each on its own port."""
    settings = settings_for_tests(tmp_path, event_bus=bus)
    clients = []
    for _ in range(2):
        url = stack.enter_context(serve_app(create_app(create_slice(), settings)))
        clients.append(
            stack.enter_context(
                httpx.Client(base_url=url, headers={"X-Internal-Token": TEST_TOKEN}, timeout=30)
            )
        )
    return clients[0], clients[1]


def ev(i: int) -> dict:
    return {"id": f"e{i}", "type": "test", "payload": {"n": i}}


@pytest.mark.integration
def test_replicas_share_a_producers_rate(tmp_path: Path, database: dict[str, str]) -> None:
    with ExitStack() as stack:
        a, b = replicas(tmp_path, stack, producer_rate=50, **database)
        for attempt in range(5):  # a busy machine may take a second between two calls: again
            topic = f"rated{attempt}"
            started = time.monotonic()
            first = publish(a, topic, *(ev(i) for i in range(50)), producer="chatty")
            second = publish(b, topic, *(ev(100 + i) for i in range(50)), producer="chatty")
            if time.monotonic() - started < 0.9:  # too little time to refill 50 tokens
                break
            time.sleep(1.05)
        else:
            pytest.skip("two publishes never fit in 0.9 s on this machine")
        assert first.status_code == 201
        assert second.status_code == 429, second.text  # one bucket for both replicas
        assert float(second.headers["Retry-After"]) > 0
        assert publish(b, topic, ev(200), producer="quiet").status_code == 201
        time.sleep(1.05)  # refilled: either replica may publish again
        assert publish(b, topic, *(ev(300 + i) for i in range(50)), producer="chatty").is_success
        assert a.get(f"/v1/topics/{topic}").json()["depth"] == 101


@pytest.mark.integration
def test_no_rate_means_no_buckets(tmp_path: Path) -> None:
    with ExitStack() as stack:
        a, b = replicas(tmp_path, stack)
        for i in range(20):
            assert publish((a, b)[i % 2], "free", ev(i)).status_code == 201
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "slice_event_bus.db") as db:
        assert db.execute("SELECT count(*) FROM producer_buckets").fetchone() == (0,)


@pytest.fixture
def prefix() -> Iterator[str]:
    if not _nats_up():
        pytest.skip("no NATS server on 127.0.0.1:4222")
    p = f"t{uuid.uuid4().hex[:8]}"
    yield p
    cleanup(p)


@pytest.mark.integration
def test_nats_lease_taken_on_one_replica_is_acked_on_the_other(tmp_path: Path, prefix: str) -> None:
    topic = f"{prefix}.jobs"
    with ExitStack() as stack:
        a, b = replicas(tmp_path, stack, backend="nats")
        a.put(f"/v1/topics/{topic}", json={"visibility_timeout_s": 1, "max_deliveries": 5})
        publish(a, topic, ev(1), ev(2), ev(3))
        got = pull(a, topic, "w", max=10, wait_s=1)
        seqs = [d["seq"] for d in got]
        assert len(seqs) == 3
        acked = b.post(f"/v1/topics/{topic}/groups/w/ack", json={"seqs": seqs[:2]}).json()
        assert acked == {"done": seqs[:2], "unknown": [], "dead_lettered": []}
        nacked = b.post(f"/v1/topics/{topic}/groups/w/nack", json={"seqs": seqs[2:]}).json()
        assert nacked["done"] == seqs[2:]
        # the nacked event comes back at once, to either replica; the acked ones do not
        again = pull(a, topic, "w", max=10, wait_s=2)
        assert [(d["seq"], d["attempt"]) for d in again] == [(seqs[2], 2)]
        assert (
            b.post(f"/v1/topics/{topic}/groups/w/ack", json={"seqs": seqs[2:]}).json()["done"]
            == seqs[2:]
        )
        # a lease is claimed once: acking it again, anywhere, is "unknown"
        assert (
            a.post(f"/v1/topics/{topic}/groups/w/ack", json={"seqs": seqs}).json()["unknown"]
            == seqs
        )
        time.sleep(1.3)  # past the visibility timeout: nothing is redelivered
        assert pull(a, topic, "w", max=10, wait_s=0.3) == []
        assert pull(b, topic, "w", max=10, wait_s=0.3) == []
        groups = a.get(f"/v1/topics/{topic}").json()["groups"]
        assert groups[0]["lag"] == 0 and groups[0]["in_flight"] == 0


@pytest.mark.integration
def test_nats_nack_on_another_replica_dead_letters_after_the_last_delivery(
    tmp_path: Path, prefix: str, database: dict[str, str]
) -> None:
    topic = f"{prefix}.poison"
    with ExitStack() as stack:
        a, b = replicas(tmp_path, stack, backend="nats", **database)
        a.put(f"/v1/topics/{topic}", json={"max_deliveries": 2})
        publish(a, topic, ev(9))
        for attempt, (puller, nacker) in enumerate(((a, b), (b, a)), start=1):
            got = pull(puller, topic, "w", max=1, wait_s=2)
            assert [d["attempt"] for d in got] == [attempt]
            r = nacker.post(
                f"/v1/topics/{topic}/groups/w/nack", json={"seqs": [got[0]["seq"]], "error": "no"}
            ).json()
            assert (r["done"], r["dead_lettered"]) == (
                ([got[0]["seq"]], []) if attempt == 1 else ([], [got[0]["seq"]])
            )
        dead = pull(b, f"{topic}.dead", "inspect", max=5, wait_s=1)
        assert [d["payload"] for d in dead] == [{"n": 9}] and dead[0]["headers"][
            "dead_error"
        ] == "no"
