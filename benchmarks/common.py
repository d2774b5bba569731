"""Shared benchmark helpers: a load loop, percentiles, tables, service processes."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.results import record_table


@dataclass
class Result:
    name: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(
    name: str,
    call: Callable[[], Awaitable[object]],
    *,
    concurrency: int,
    total: int,
    warmup: int = 50,
) -> Result:
    """Run ``total`` calls with ``concurrency`` workers; record each call's latency."""
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    errors = 0
    per_worker = total // concurrency

    async def worker() -> None:
        nonlocal errors
        for _ in range(per_worker):
            t0 = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(
        name, concurrency, per_worker * concurrency, time.perf_counter() - start, latencies, errors
    )


def median_result(rounds: list[Result]) -> Result:
    """The round with the median throughput (this machine is noisy)."""
    ordered = sorted(rounds, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


def table(title: str, headers: list[str], rows: list[list[str]]) -> str:
    record_table(title, headers, rows)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([f"\n{title}", line, sep, *body])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def service_process(name: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m services.NAME`` with ``env`` added, stopping it at the end."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def fmt_ms(v: float) -> str:
    return f"{v:.2f}"


def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b * 100:.0f}%" if b else "-"


__all__ = [
    "Result",
    "fmt_ms",
    "fmt_ratio",
    "load",
    "median_result",
    "service_process",
    "statistics",
    "table",
    "wait_http",
]
