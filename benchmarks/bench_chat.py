"""The fleet as a user starts it (``refactorbot up`` with the default config, dashboard
included; only ports and folders differ): time to "fleet is ready", memory of the whole
fleet when idle (PSS: shared pages counted once), then chat turns through master_core
with the simulator answering instantly, the load from this process, each worker in its own
session."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.common import fmt_ms, load, median_result, table
from refactorbot.testing import ADMIN_KEY, fleet_process

ROUNDS = 3
TOTALS = {1: 150, 8: 400}
START_ROUNDS = 3
IDLE_S = 5  # settle before memory is read


def _tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _memory_mb(root: int) -> tuple[float, float, int]:
    """PSS and RSS of a process tree in MB, and how many processes it has."""
    pss = rss = 0
    pids = _tree(root)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            continue
    return pss / 1024, rss / 1024, len(pids)


def _fleet_rows() -> tuple[list[list[str]], list[list[str]]]:
    """Start the fleet START_ROUNDS times (time to ready), read the idle memory of the last
    one, run the chat turns on it."""
    starts: list[float] = []
    for n in range(START_ROUNDS):
        with tempfile.TemporaryDirectory(prefix="rb-bench-fleet-") as tmp:
            began = time.perf_counter()
            with fleet_process(Path(tmp), dashboard=True) as fleet:
                starts.append(time.perf_counter() - began)
                if n < START_ROUNDS - 1:
                    continue
                time.sleep(IDLE_S)
                pss, rss, procs = _memory_mb(fleet.runner.pid)
                chat = asyncio.run(_bench(fleet.url("master_core")))
    fleet_rows = [
        ["make run to ready (s)", f"{statistics.median(starts):.1f}",
         " / ".join(f"{s:.1f}" for s in starts)],
        ["idle memory, PSS MB", f"{pss:,.0f}", f"RSS {rss:,.0f} MB, {procs} processes"],
    ]  # fmt: skip
    return fleet_rows, chat


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
    fleet_rows, rows = _fleet_rows()
    return "\n".join(
        [
            table(
                f"(0) The fleet as make run starts it (dashboard included), median of "
                f"{START_ROUNDS} starts",
                ["figure", "value", "detail"],
                fleet_rows,
            ),
            table(
                f"(2) Turns via master_core -> agent_core -> session/providers/tools -> "
                f"simulator, the fleet as make run starts it, median of {ROUNDS} rounds",
                ["turn", "sessions", "turns", "turns/s", "p50 ms", "p99 ms", "errors"],
                rows,
            ),
        ]
    )


if __name__ == "__main__":
    print(run())
