"""Memory search at 10k and 100k memories (FTS5, BM25, scoped to one user as the agent
asks, and unscoped), through the memory slice's HTTP API and as the bare SQL query; and the
session slice's append and history read. Each slice runs as its own process."""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from sqlalchemy import insert

from benchmarks.common import Result, fmt_ms, load, median_result, service_process, table, wait_http
from services.kit.app import open_database
from services.kit.testing import TEST_TOKEN, free_port, settings_for_tests
from services.memory.models import Memory
from services.memory.service import fts_query, scope_key
from services.memory.slice import create_slice as memory_slice

SIZES = (10_000, 100_000)
USERS = 1_000
QUERIES = 300
ROUNDS = 3
SUBJECTS = (
    "user team manager partner daughter cat client project service database".split()  # noqa: SIM905
)
VERBS = "prefers uses likes avoids decided owns deploys reviews schedules moved".split()  # noqa: SIM905
rng = random.Random(7)
SYLLABLES = ("ka", "lo", "mi", "ne", "po", "ru", "sa", "te", "vi", "zo")
ENDINGS = (
    "ber cor dan fel gor hen jul kin lor mun nor pel quin ros sul tam ulf ven wil yor".split()  # noqa: SIM905
)
VOCAB = [f"{a}{b}" for a in SYLLABLES for b in ENDINGS]  # 200 made-up words


def sentence() -> str:
    words = rng.sample(VOCAB, 6)
    return (
        f"The {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {words[0]} {words[1]} with "
        f"{words[2]} and {words[3]} every {words[4]}, because of {words[5]}"
    )


def populate(tmp: Path, size: int) -> Path:
    data_dir = tmp / f"mem{size}"
    settings = settings_for_tests(data_dir.parent, data_dir=data_dir)
    db = open_database(memory_slice(), settings)
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    for _ in range(size):
        user = f"user{rng.randrange(USERS)}"
        rows.append(
            {
                "id": uuid.uuid4().hex,
                "scope": "user",
                "subject": user,
                "scope_key": scope_key("user", user, None),
                "owner": None,
                "text": sentence(),
                "kind": "fact",
                "importance": rng.random(),
                "tags": [],
                "mentions": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    with db.session() as s:
        s.execute(insert(Memory), rows)
    db.dispose()
    return data_dir


def bare_query_ms(data_dir: Path, queries: list[tuple[str, str]]) -> tuple[float, float]:
    """The FTS query alone (no HTTP, no JSON): p50 and p99 in ms, user-scoped."""
    import sqlite3

    conn = sqlite3.connect(data_dir / "slice_memory.db")
    times = []
    for q, user in queries:
        expr = fts_query(q, owner=None, scopes=[("global", ""), ("user", user)])
        t0 = time.perf_counter()
        conn.execute(
            "SELECT rowid, bm25(memories_fts, 1.0, 0.4, 0.0) AS rank FROM memories_fts "
            "WHERE memories_fts MATCH ? ORDER BY rank LIMIT 40",
            (expr,),
        ).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    conn.close()
    times.sort()
    return statistics.median(times), times[int(0.99 * len(times))]


async def _search(url: str, queries: list[tuple[str, str]], scoped: bool) -> Result:
    headers = {"X-Internal-Token": TEST_TOKEN}
    it = iter(queries * 100)
    async with aiohttp.ClientSession(headers=headers) as http:

        async def call() -> object:
            q, user = next(it)
            params = {"q": q, "limit": "10", **({"user": user} if scoped else {})}
            async with http.get(f"{url}/v1/memories/search", params=params) as r:
                if r.status != 200:
                    raise RuntimeError(await r.text())
                return await r.read()

        rounds = [await load("search", call, concurrency=1, total=QUERIES, warmup=20)]
        for _ in range(ROUNDS - 1):
            rounds.append(await load("search", call, concurrency=1, total=QUERIES, warmup=0))
        return median_result(rounds)


def memory_rows(tmp: Path) -> list[list[str]]:
    rows = []
    queries = [(" ".join(rng.sample(VOCAB, 3)), f"user{rng.randrange(USERS)}") for _ in range(200)]
    for size in SIZES:
        started = time.perf_counter()
        data_dir = populate(tmp, size)
        filled = time.perf_counter() - started
        port = free_port()
        env = {
            "REFACTORBOT_DATA_DIR": str(data_dir),
            "REFACTORBOT_LOG_DIR": str(tmp),
            "REFACTORBOT_LOG_LEVEL": "WARNING",
            "REFACTORBOT_INTERNAL_TOKEN": TEST_TOKEN,
            "REFACTORBOT_MEMORY__PORT": str(port),
            "REFACTORBOT_MEMORY__CONSOLIDATE_EVERY_S": "0",
        }
        with service_process("memory", env, tmp / "memory.log"):
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/health")
            for scoped in (True, False):
                r = asyncio.run(_search(url, queries, scoped))
                rows.append(
                    [
                        f"{size:,}",
                        "one user + global" if scoped else "every scope",
                        "HTTP search",
                        f"{r.rps:,.0f}",
                        fmt_ms(r.pct(0.5)),
                        fmt_ms(r.pct(0.99)),
                    ]
                )
        p50, p99 = bare_query_ms(data_dir, queries)
        rows.append(
            [f"{size:,}", "one user + global", "FTS query alone", "-", fmt_ms(p50), fmt_ms(p99)]
        )
        print(f"  {size:,} memories loaded in {filled:.1f}s", flush=True)
    return rows


async def _session(url: str) -> list[list[str]]:
    headers = {"X-Internal-Token": TEST_TOKEN}
    out = []
    async with aiohttp.ClientSession(headers=headers) as http:
        sids = []
        for _ in range(8):
            async with http.post(f"{url}/v1/sessions", json={}) as r:
                sids.append((await r.json())["id"])
        body = {"messages": [{"role": "user", "content": "How is the deploy going? " * 4}]}

        for conc in (1, 8):
            out += await _session_rounds(http, url, sids[:conc], body, conc)
    return out


async def _session_rounds(
    http: aiohttp.ClientSession, url: str, sids: list[str], body: dict, conc: int
) -> list[list[str]]:
    turn = iter(range(10**9))

    async def append() -> object:
        sid = sids[next(turn) % len(sids)]
        async with http.post(f"{url}/v1/sessions/{sid}/messages", json=body) as r:
            if r.status != 201:
                raise RuntimeError(await r.text())
            return await r.read()

    async def history() -> object:
        sid = sids[next(turn) % len(sids)]
        params = {"tail": "50", "limit": "50"}
        async with http.get(f"{url}/v1/sessions/{sid}/messages", params=params) as r:
            if r.status != 200:
                raise RuntimeError(await r.text())
            return await r.read()

    rows = []
    for name, call in (("append 1 message", append), ("history, last 50", history)):
        total = 400 if conc == 1 else 1200
        rounds = [
            await load(name, call, concurrency=conc, total=total, warmup=20) for _ in range(ROUNDS)
        ]
        r = median_result(rounds)
        rows.append([name, str(conc), f"{r.rps:,.0f}", fmt_ms(r.pct(0.5)), fmt_ms(r.pct(0.99))])
    return rows


def session_rows(tmp: Path) -> list[list[str]]:
    port = free_port()
    env = {
        "REFACTORBOT_DATA_DIR": str(tmp / "session"),
        "REFACTORBOT_LOG_DIR": str(tmp),
        "REFACTORBOT_LOG_LEVEL": "WARNING",
        "REFACTORBOT_INTERNAL_TOKEN": TEST_TOKEN,
        "REFACTORBOT_SESSION__PORT": str(port),
    }
    with service_process("session", env, tmp / "session.log"):
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health")
        return asyncio.run(_session(url))


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="rb-bench-memory-") as tmp:
        mem = memory_rows(Path(tmp))
        ses = session_rows(Path(tmp))
    return "\n".join(
        [
            table(
                f"(5) Memory search, FTS5 BM25, 1 connection, {QUERIES} queries x median of "
                f"{ROUNDS} rounds (goal: p99 < 10 ms at 100k)",
                ["memories", "scope", "path", "searches/s", "p50 ms", "p99 ms"],
                mem,
            ),
            table(
                f"(6) Session slice: append (one FULL-synced commit each) and history read, "
                f"median of {ROUNDS} rounds",
                ["operation", "conns", "ops/s", "p50 ms", "p99 ms"],
                ses,
            ),
        ]
    )


if __name__ == "__main__":
    print(run())
