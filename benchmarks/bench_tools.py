"""Tool call overhead through the tools slice: ``read_file`` of a small file (schema check,
confined open, execution log row committed) against the same slice's ``/health`` (one
loopback hop and no work) and against reading the file in-process, in one run."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks.common import Result, fmt_ms, load, median_result, service_process, table, wait_http
from services.kit.testing import TEST_TOKEN, free_port

ROUNDS = 5
TOTALS = {1: 600, 8: 1600}
CONTENT = "def add(a, b):\n    return a + b\n" * 8  # 256 bytes


async def _bench(url: str, file: Path) -> dict[int, dict[str, Result]]:
    headers = {"X-Internal-Token": TEST_TOKEN}
    body = {"arguments": {"path": "small.py"}, "session_id": "bench"}
    out: dict[int, dict[str, Result]] = {}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def health() -> object:
            async with http.get(f"{url}/health") as r:
                return await r.read()

        async def read_file() -> object:
            async with http.post(f"{url}/v1/tools/read_file/call", json=body) as r:
                if r.status != 200:
                    raise RuntimeError(await r.text())
                return await r.read()

        async def in_process() -> object:
            return file.read_text()  # noqa: ASYNC240 - the baseline is the plain blocking read

        calls = {"in-process read": in_process, "/health hop": health, "read_file call": read_file}
        for conc in (1, 8):
            rounds: dict[str, list[Result]] = {n: [] for n in calls}
            order = list(calls)
            for _ in range(ROUNDS):
                for name in order:
                    rounds[name].append(
                        await load(
                            name, calls[name], concurrency=conc, total=TOTALS[conc], warmup=20
                        )
                    )
                order = order[1:] + order[:1]
            out[conc] = {n: median_result(rs) for n, rs in rounds.items()}
    return out


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="rb-bench-tools-") as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        (ws / "small.py").write_text(CONTENT)
        port = free_port()
        env = {
            "REFACTORBOT_DATA_DIR": str(Path(tmp) / "data"),
            "REFACTORBOT_LOG_DIR": tmp,
            "REFACTORBOT_LOG_LEVEL": "WARNING",
            "REFACTORBOT_INTERNAL_TOKEN": TEST_TOKEN,
            "REFACTORBOT_TOOLS__PORT": str(port),
            "REFACTORBOT_TOOLS__WORKSPACES": f'{{"default": "{ws}"}}',
        }
        with service_process("tools", env, Path(tmp) / "tools.log"):
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/ready")
            started = time.perf_counter()
            results = asyncio.run(_bench(url, ws / "small.py"))
            took = time.perf_counter() - started
    rows = []
    for conc, by_name in results.items():
        hop = by_name["/health hop"].pct(0.5)
        for name, r in by_name.items():
            rows.append(
                [
                    str(conc),
                    name,
                    f"{r.rps:,.0f}",
                    fmt_ms(r.pct(0.5)),
                    fmt_ms(r.pct(0.99)),
                    fmt_ms(r.pct(0.5) - hop) if name == "read_file call" else "-",
                    str(r.errors),
                ]
            )
    return table(
        f"(4) Tool call overhead, read_file of a {len(CONTENT)}-byte file through the tools "
        f"slice (schema check + confined open + execution log), median of {ROUNDS} rounds, "
        f"{took:.0f}s",
        ["conns", "path", "calls/s", "p50 ms", "p99 ms", "over the hop p50 ms", "errors"],
        rows,
    )


if __name__ == "__main__":
    print(run())
