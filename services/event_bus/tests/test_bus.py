"""The SQLite event bus through HTTP: publish, idempotency, groups, acks, redelivery,
dead letters, backpressure, lossy topics, long polling."""

from __future__ import annotations

import threading
import time

import httpx

from services.event_bus.tests.conftest import publish, pull


def ev(i: int, **extra: object) -> dict:
    return {"id": f"e{i}", "type": "test.happened", "payload": {"n": i}, **extra}


def test_publish_pull_ack_in_order(bus: httpx.Client) -> None:
    r = publish(bus, "orders", *(ev(i) for i in range(5)))
    assert r.status_code == 201
    seqs = [p["seq"] for p in r.json()["data"]]
    assert seqs == sorted(seqs) and not any(p["duplicate"] for p in r.json()["data"])
    got = pull(bus, "orders", "billing", max=3)
    assert [d["payload"]["n"] for d in got] == [0, 1, 2] and all(d["attempt"] == 1 for d in got)
    # a second group reads everything independently
    assert len(pull(bus, "orders", "audit", max=10)) == 5
    done = bus.post(
        "/v1/topics/orders/groups/billing/ack", json={"seqs": [d["seq"] for d in got] + [999]}
    ).json()
    assert done["done"] == [d["seq"] for d in got] and done["unknown"] == [999]
    rest = pull(bus, "orders", "billing", max=10)
    assert [d["payload"]["n"] for d in rest] == [3, 4]
    topic = bus.get("/v1/topics/orders").json()
    lag = {g["name"]: g["lag"] for g in topic["groups"]}
    assert lag == {"billing": 2, "audit": 5}


def test_idempotent_publish(bus: httpx.Client) -> None:
    first = publish(bus, "t", ev(1)).json()["data"][0]
    again = publish(bus, "t", ev(1), ev(2), ev(2)).json()["data"]
    assert again[0] == {**first, "duplicate": True}
    assert again[1]["duplicate"] is False and again[2] == {**again[1], "duplicate": True}
    assert bus.get("/v1/topics/t").json()["depth"] == 2


def test_bad_input_is_4xx(bus: httpx.Client) -> None:
    assert publish(bus, "t", {"type": "x", "payload": "y" * 300_000}).status_code == 413
    assert publish(bus, "Bad Name", ev(1)).status_code == 422
    assert bus.post("/v1/topics/t/events", json={"events": []}).status_code == 422
    assert bus.post("/v1/topics/nope/groups/g/pull", json={}).status_code == 404
    assert bus.post("/v1/topics/t/groups/g/ack", json={"seqs": [1]}).status_code == 404
    assert bus.put("/v1/topics/t", json={"on_full": "explode"}).status_code == 422


def test_unacked_events_come_back_and_poison_goes_to_dead_letters(bus: httpx.Client) -> None:
    bus.put("/v1/topics/jobs", json={"visibility_timeout_s": 0.3, "max_deliveries": 3})
    publish(bus, "jobs", ev(1), ev(2))
    first = pull(bus, "jobs", "workers", max=10)
    assert len(first) == 2
    # the consumer "dies": it acks neither; after the visibility timeout both come back
    assert pull(bus, "jobs", "workers", max=10) == []
    time.sleep(0.35)
    again = pull(bus, "jobs", "workers", max=10)
    assert [d["attempt"] for d in again] == [2, 2]
    bus.post("/v1/topics/jobs/groups/workers/ack", json={"seqs": [again[0]["seq"]]})
    # the second is poison: it fails every time
    poison = again[1]["seq"]
    r = bus.post(
        "/v1/topics/jobs/groups/workers/nack", json={"seqs": [poison], "error": "boom"}
    ).json()
    assert r["done"] == [poison]
    third = pull(bus, "jobs", "workers", max=10)
    assert [d["attempt"] for d in third] == [3]
    r = bus.post(
        "/v1/topics/jobs/groups/workers/nack", json={"seqs": [poison], "error": "boom again"}
    ).json()
    assert r["dead_lettered"] == [poison]
    dead = pull(bus, "jobs.dead", "inspect", max=10)
    assert len(dead) == 1 and dead[0]["payload"] == {"n": 2}
    assert dead[0]["headers"]["dead_error"] == "boom again"
    assert dead[0]["headers"]["dead_attempts"] == "3"
    groups = {g["name"]: g for g in bus.get("/v1/topics/jobs").json()["groups"]}
    assert groups["workers"]["dead_lettered"] == 1 and groups["workers"]["lag"] == 0
    # replay puts it back on the topic
    assert bus.post("/v1/topics/jobs/dead/replay").json() == {"replayed": 1}
    assert [d["payload"] for d in pull(bus, "jobs", "workers", max=10)] == [{"n": 2}]


def test_expired_poison_is_dead_lettered_by_the_sweeper(bus: httpx.Client) -> None:
    bus.put("/v1/topics/p", json={"visibility_timeout_s": 0.1, "max_deliveries": 1})
    publish(bus, "p", ev(1))
    assert len(pull(bus, "p", "g")) == 1
    deadline = time.monotonic() + 5
    while (
        bus.get("/v1/topics/p.dead").status_code != 200
        or not bus.get("/v1/topics/p.dead").json()["depth"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_full_topic_answers_503_fast_and_drains(bus: httpx.Client) -> None:
    bus.put("/v1/topics/small", json={"max_messages": 20})
    assert publish(bus, "small", *(ev(i) for i in range(20))).status_code == 201
    started = time.perf_counter()
    refused = [publish(bus, "small", ev(100 + i)) for i in range(50)]
    took = (time.perf_counter() - started) / 50
    assert {r.status_code for r in refused} == {503}
    assert refused[0].headers["Retry-After"] == "1"
    assert "full" in refused[0].json()["error"]["message"]
    assert took < 0.05  # fast refusals, not a hang
    topic = bus.get("/v1/topics/small").json()
    assert topic["depth"] == 20 and topic["published"] == 20  # nothing accepted was dropped
    # the consumer resumes: acked events are purged and the topic takes events again
    got = pull(bus, "small", "c", max=20)
    bus.post("/v1/topics/small/groups/c/ack", json={"seqs": [d["seq"] for d in got]})
    deadline = time.monotonic() + 5
    while bus.get("/v1/topics/small").json()["depth"] > 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert publish(bus, "small", ev(500)).status_code == 201


def test_lossy_topic_drops_oldest(bus: httpx.Client) -> None:
    bus.put("/v1/topics/metrics", json={"max_messages": 5, "on_full": "drop_oldest"})
    for i in range(8):
        assert publish(bus, "metrics", ev(i)).status_code == 201
    topic = bus.get("/v1/topics/metrics").json()
    assert topic["depth"] == 5 and topic["dropped"] == 3
    assert [d["payload"]["n"] for d in pull(bus, "metrics", "g", max=10)] == [3, 4, 5, 6, 7]


def test_long_poll_wakes_on_publish(bus: httpx.Client) -> None:
    publish(bus, "lp", ev(0))
    pull(bus, "lp", "g", max=10)
    timer = threading.Timer(0.3, lambda: publish(bus, "lp", ev(1)))
    timer.start()
    started = time.perf_counter()
    got = pull(bus, "lp", "g", max=10, wait_s=5)
    waited = time.perf_counter() - started
    assert [d["payload"]["n"] for d in got] == [1]
    assert 0.25 < waited < 2.0
    started = time.perf_counter()
    assert pull(bus, "lp", "g", wait_s=0.3) == []
    assert time.perf_counter() - started >= 0.3


def test_metrics(bus: httpx.Client) -> None:
    publish(bus, "m", ev(1))
    pull(bus, "m", "g")
    text = httpx.get(str(bus.base_url) + "/metrics").text
    assert 'bus_topic_depth{topic="m"} 1.0' in text
    assert 'bus_group_lag{group="g",topic="m"} 1.0' in text


def test_seqs_are_never_reused_after_a_purge(bus: httpx.Client) -> None:
    publish(bus, "r", ev(1), ev(2))
    got = pull(bus, "r", "g", max=10)
    bus.post("/v1/topics/r/groups/g/ack", json={"seqs": [d["seq"] for d in got]})
    deadline = time.monotonic() + 5
    while bus.get("/v1/topics/r").json()["depth"]:  # the sweeper purges both
        assert time.monotonic() < deadline
        time.sleep(0.05)
    later = publish(bus, "r", ev(3)).json()["data"][0]
    assert later["seq"] > got[-1]["seq"]
    assert [d["payload"]["n"] for d in pull(bus, "r", "g", max=10)] == [3]
