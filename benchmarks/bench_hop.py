"""One hop: the kit client vs a raw aiohttp request vs a default httpx client, same endpoint.

The session slice runs as its own process (as in the fleet); the load comes from this one.
Two endpoints: ``/health`` (the hop alone) and ``GET /v1/sessions/{id}`` (a real read).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import aiohttp

from benchmarks.common import (
    Result,
    fmt_ms,
    fmt_ratio,
    load,
    median_result,
    service_process,
    table,
    wait_http,
)
from services.kit.client import ClientPool, SliceClient
from services.kit.testing import TEST_TOKEN, free_port

ROUNDS = 7
TOTALS = {1: 1500, 8: 4000}


async def _bench(base: str, path: str) -> list[list[str]]:
    import httpx

    pool = ClientPool(caller="bench", token=TEST_TOKEN)
    kit = SliceClient(pool, base)
    raw = aiohttp.ClientSession()
    hx = httpx.AsyncClient()
    headers = {"X-Internal-Token": TEST_TOKEN}
    url = base + path

    async def kit_call() -> object:
        return await kit.request("GET", path)

    async def raw_call() -> object:
        async with raw.get(url, headers=headers) as resp:
            return await resp.read()

    async def httpx_call() -> object:
        return (await hx.get(url, headers=headers)).content

    rows = []
    try:
        for conc in (1, 8):
            calls = {"kit client": kit_call, "raw aiohttp": raw_call, "httpx default": httpx_call}
            rounds: dict[str, list[Result]] = {name: [] for name in calls}
            order = list(calls)
            for _ in range(ROUNDS):  # interleaved and rotated: drift hits every client alike
                for name in order:
                    total = TOTALS[conc] // (2 if name == "httpx default" else 1)
                    rounds[name].append(
                        await load(name, calls[name], concurrency=conc, total=total)
                    )
                order = order[1:] + order[:1]
            raw_rps = median_result(rounds["raw aiohttp"]).rps
            for name, results in rounds.items():
                r = median_result(results)
                rows.append(
                    [
                        path,
                        str(conc),
                        name,
                        f"{r.rps:,.0f}",
                        fmt_ms(r.pct(0.5)),
                        fmt_ms(r.pct(0.99)),
                        fmt_ratio(r.rps, raw_rps),
                        str(r.errors),
                    ]
                )
    finally:
        await pool.close()
        await raw.close()
        await hx.aclose()
    return rows


def run() -> str:
    tmp = Path(tempfile.mkdtemp(prefix="rb-bench-hop-"))
    port = free_port()
    env = {
        "REFACTORBOT_DATA_DIR": str(tmp / "data"),
        "REFACTORBOT_LOG_DIR": str(tmp),
        "REFACTORBOT_INTERNAL_TOKEN": TEST_TOKEN,
        "REFACTORBOT_SESSION__PORT": str(port),
        "REFACTORBOT_LOG_LEVEL": "WARNING",
    }
    base = f"http://127.0.0.1:{port}"
    with service_process("session", env, tmp / "session.log"):
        wait_http(base + "/health")
        import json
        import urllib.request

        req = urllib.request.Request(
            base + "/v1/sessions",
            data=b"{}",
            method="POST",
            headers={"X-Internal-Token": TEST_TOKEN, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as resp:
            sid = json.loads(resp.read())["id"]
        rows = asyncio.run(_bench(base, "/health"))
        rows += asyncio.run(_bench(base, f"/v1/sessions/{sid}"))
    for row in rows:
        if row[1:] and row[0].startswith("/v1/sessions/"):
            row[0] = "/v1/sessions/{id}"
    return table(
        f"(1) One hop to the session slice (separate process), median of {ROUNDS} rounds",
        ["endpoint", "conns", "client", "req/s", "p50 ms", "p99 ms", "vs raw", "errors"],
        rows,
    )


if __name__ == "__main__":
    print(run())
