"""The event bus: publish (single and batched) and consume throughput, and publish latency,
for the SQLite bus (the event_bus slice over HTTP, every publish committed FULL before its
answer) and for NATS JetStream on the same machine (nats-py straight to the server, file
storage, each publish acknowledged), in one run. NATS is skipped when it is not running.

Three backends in one run: the slice on SQLite, the slice on its NATS backend (same HTTP
API), and JetStream used directly (what the NATS backend could reach without the HTTP
hop)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks.common import Result, fmt_ms, load, median_result, service_process, table, wait_http
from services.kit.testing import TEST_TOKEN, free_port

ROUNDS = 3
SINGLE = {1: 400, 8: 1600}
BATCH = 100
BATCHES = 40
CONSUME = 5_000
NATS_URL = "nats://127.0.0.1:4222"
PAYLOAD = {"session_id": "s-1", "first_seq": 1, "last_seq": 2, "roles": ["user", "assistant"]}


def _events_per_s(r: Result, per_call: int) -> str:
    return f"{r.rps * per_call:,.0f}"


async def _via_slice(url: str, label: str, topic: str) -> list[list[str]]:
    headers = {"X-Internal-Token": TEST_TOKEN}
    rows = []
    async with aiohttp.ClientSession(headers=headers) as http:
        n = iter(range(10**9))

        async def one() -> object:
            body = {"events": [{"id": f"s{next(n)}", "type": "bench", "payload": PAYLOAD}]}
            async with http.post(f"{url}/v1/topics/{topic}/events", json=body) as r:
                if r.status != 201:
                    raise RuntimeError(await r.text())
                return await r.read()

        async def batch() -> object:
            events = [
                {"id": f"b{next(n)}", "type": "bench", "payload": PAYLOAD} for _ in range(BATCH)
            ]
            async with http.post(f"{url}/v1/topics/{topic}/events", json={"events": events}) as r:
                if r.status != 201:
                    raise RuntimeError(await r.text())
                return await r.read()

        for conc in (1, 8):
            r = median_result(
                [await load("p", one, concurrency=conc, total=SINGLE[conc]) for _ in range(ROUNDS)]
            )
            rows.append([label, f"publish 1 event, {conc} conn", _events_per_s(r, 1),
                         fmt_ms(r.pct(0.5)), fmt_ms(r.pct(0.99))])  # fmt: skip
        r = median_result(
            [await load("b", batch, concurrency=1, total=BATCHES, warmup=2) for _ in range(ROUNDS)]
        )
        rows.append([label, f"publish batches of {BATCH}", _events_per_s(r, BATCH),
                     fmt_ms(r.pct(0.5)), fmt_ms(r.pct(0.99))])  # fmt: skip
        consumed, started = 0, time.perf_counter()
        while consumed < CONSUME:
            async with http.post(
                f"{url}/v1/topics/{topic}/groups/bench/pull", json={"max": 100}
            ) as resp:
                got = (await resp.json())["data"]
            if not got:
                break
            async with http.post(
                f"{url}/v1/topics/{topic}/groups/bench/ack", json={"seqs": [d["seq"] for d in got]}
            ) as resp:
                await resp.read()
            consumed += len(got)
        took = time.perf_counter() - started
        rows.append([label, "consume (pull 100 + ack)", f"{consumed / took:,.0f}", "-", "-"])
    return rows


async def _nats() -> list[list[str]]:
    import nats
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(NATS_URL, connect_timeout=2)
    js = nc.jetstream()
    stream = f"RBBENCH{int(time.time())}"
    await js.add_stream(
        StreamConfig(name=stream, subjects=[f"{stream}.>"], storage=StorageType.FILE)
    )
    rows = []
    try:
        n = iter(range(10**9))

        async def one() -> object:
            i = next(n)
            return await js.publish(
                f"{stream}.ev", b'{"bench": true}', headers={"Nats-Msg-Id": f"s{i}"}
            )

        async def batch() -> object:
            return await asyncio.gather(
                *(
                    js.publish(
                        f"{stream}.ev", b'{"bench": true}', headers={"Nats-Msg-Id": f"b{next(n)}"}
                    )
                    for _ in range(BATCH)
                )
            )

        for conc in (1, 8):
            r = median_result(
                [await load("p", one, concurrency=conc, total=SINGLE[conc]) for _ in range(ROUNDS)]
            )
            rows.append(["jetstream direct", f"publish 1 event, {conc} conn", _events_per_s(r, 1),
                         fmt_ms(r.pct(0.5)), fmt_ms(r.pct(0.99))])  # fmt: skip
        r = median_result(
            [await load("b", batch, concurrency=1, total=BATCHES, warmup=2) for _ in range(ROUNDS)]
        )
        rows.append(["jetstream direct", f"publish batches of {BATCH}", _events_per_s(r, BATCH),
                     fmt_ms(r.pct(0.5)), fmt_ms(r.pct(0.99))])  # fmt: skip
        sub = await js.pull_subscribe(f"{stream}.>", durable="bench")
        consumed, started = 0, time.perf_counter()
        while consumed < CONSUME:
            try:
                msgs = await sub.fetch(100, timeout=1)
            except TimeoutError:
                break
            await asyncio.gather(*(m.ack() for m in msgs))
            consumed += len(msgs)
        took = time.perf_counter() - started
        rows.append(
            ["jetstream direct", "consume (fetch 100 + ack)", f"{consumed / took:,.0f}", "-", "-"]
        )
    finally:
        await js.delete_stream(stream)
        await nc.close()
    return rows


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="rb-bench-bus-") as tmp:
        port = free_port()
        env = {
            "REFACTORBOT_DATA_DIR": tmp,
            "REFACTORBOT_LOG_DIR": tmp,
            "REFACTORBOT_LOG_LEVEL": "WARNING",
            "REFACTORBOT_INTERNAL_TOKEN": TEST_TOKEN,
            "REFACTORBOT_EVENT_BUS__PORT": str(port),
        }
        with service_process("event_bus", env, Path(tmp) / "bus.log"):
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/health")
            rows = asyncio.run(_via_slice(url, "slice, sqlite", "bench"))
        note = ""
        try:
            rows_nats = asyncio.run(_nats())
            nport = free_port()
            nenv = {**env, "REFACTORBOT_EVENT_BUS__PORT": str(nport),
                    "REFACTORBOT_EVENT_BUS__BACKEND": "nats",
                    "REFACTORBOT_DATA_DIR": str(Path(tmp) / "n")}  # fmt: skip
            with service_process("event_bus", nenv, Path(tmp) / "bus-nats.log"):
                nurl = f"http://127.0.0.1:{nport}"
                wait_http(f"{nurl}/health")
                topic = f"bench{int(time.time())}"
                rows += asyncio.run(_via_slice(nurl, "slice, nats backend", topic))
            rows += rows_nats
        except Exception as exc:  # not running here: say so, keep the SQLite rows
            note = f" (NATS left out: {exc.__class__.__name__}: {exc})"
    return table(
        f"(7) Event bus, median of {ROUNDS} rounds{note}",
        ["backend", "operation", "events/s", "p50 ms", "p99 ms"],
        rows,
    )


if __name__ == "__main__":
    print(run())
