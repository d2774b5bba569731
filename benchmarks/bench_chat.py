"""A chat turn through master_core with the simulator answering instantly: the whole fleet
as separate processes, the load from this one, each worker in its own session."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.common import fmt_ms, load, median_result, table
from refactorbot.testing import ADMIN_KEY, fleet_process

ROUNDS = 3
TOTALS = {1: 150, 8: 400}


async def _measure(label: str, call: Callable[[], Awaitable[object]], conc: int) -> list[str]:
    results = [
        await load(label, call, concurrency=conc, total=TOTALS[conc], warmup=10)
        for _ in range(ROUNDS)
    ]
    r = median_result(results)
    return [
        label,
        str(conc),
        str(r.requests),
        f"{r.rps:,.1f}",
        fmt_ms(r.pct(0.5)),
        fmt_ms(r.pct(0.99)),
        str(r.errors),
    ]


async def _bench(url: str) -> list[list[str]]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    rows = []
    async with aiohttp.ClientSession(headers=headers) as http:

        async def post(path: str, body: dict[str, Any]) -> object:
            async with http.post(f"{url}{path}", json=body) as r:
                if r.status != 200:
                    raise RuntimeError(await r.text())
                return await r.read()

        async def new_session() -> str:
            async with http.post(f"{url}/v1/chat", json={"message": "start"}) as resp:
                sid: str = (await resp.json())["session_id"]
                return sid

        for conc in (1, 8):
            queue = [await new_session() for _ in range(conc)]

            async def turn(queue: list[str] = queue) -> object:
                sid = queue.pop(0)  # round-robin: each in-flight turn has its own session
                queue.append(sid)
                return await post("/v1/chat", {"session_id": sid, "message": "How are you?"})

            rows.append(await _measure("chat turn, no tool call", turn, conc))
        # A full agent turn with one tool call: the model (scripted) lists the workspace
        # through the tools slice, gets the result, answers. Each turn starts fresh.
        agent_body = {
            "model": "agent",
            "messages": [{"role": "user", "content": "benchmark: one tool call, please"}],
        }

        async def agent_turn() -> object:
            return await post("/v1/chat/completions", agent_body)

        for conc in (1, 8):
            rows.append(await _measure("agent turn, 1 tool call", agent_turn, conc))
    return rows


def run() -> str:
    with (
        tempfile.TemporaryDirectory(prefix="rb-bench-chat-") as tmp,
        fleet_process(
            Path(tmp),
            extra_env={
                "REFACTORBOT_LOG_LEVEL": "WARNING",
                "REFACTORBOT_AGENT_CORE__MAX_HISTORY_MESSAGES": "20",
            },
        ) as fleet,
    ):
        rows = asyncio.run(_bench(fleet.url("master_core")))
    return table(
        f"(2) Turns via master_core -> agent_core -> session/providers/tools -> simulator "
        f"(10 processes, 2 cores), median of {ROUNDS} rounds",
        ["turn", "sessions", "turns", "turns/s", "p50 ms", "p99 ms", "errors"],
        rows,
    )


if __name__ == "__main__":
    print(run())
