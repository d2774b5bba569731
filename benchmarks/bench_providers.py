"""POST /v1/chat/completions: straight to the simulator, through the providers slice, and
through LiteLLM proxy configured against the same simulator, in one run.

LiteLLM is installed with pip into a throwaway virtualenv (reused between runs) under
``$XDG_CACHE_HOME/refactorbot`` (default ``~/.cache/refactorbot``); set
``RB_BENCH_SKIP_LITELLM=1`` to leave it out.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import aiohttp

from benchmarks.common import Result, fmt_ms, load, median_result, table, wait_http
from services.kit.testing import TEST_TOKEN, free_port

ROUNDS = 5
TOTALS = {1: 600, 10: 2000}
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}


def litellm_bin() -> Path | None:
    """The litellm CLI from a cached throwaway virtualenv, installed on first use."""
    if os.environ.get("RB_BENCH_SKIP_LITELLM"):
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "refactorbot"
    env_dir = cache / "litellm-venv"
    exe = env_dir / "bin" / "litellm"
    if not exe.exists():
        print(
            f"installing litellm[proxy] into {env_dir} (a minute or two) ...",
            file=sys.stderr,
            flush=True,
        )
        venv.create(env_dir, with_pip=True)
        done = subprocess.run(
            [str(env_dir / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"litellm install failed, leaving it out:\n{done.stderr[-800:]}", file=sys.stderr)
            return None
    return exe


def start(
    argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=cwd
        )


async def _bench(targets: dict[str, tuple[str, dict[str, str]]]) -> dict[int, dict[str, Result]]:
    out: dict[int, dict[str, Result]] = {}
    async with aiohttp.ClientSession() as http:

        def caller(url: str, headers: dict[str, str]):
            async def call() -> object:
                async with http.post(url, json=BODY, headers=headers) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"{resp.status}: {await resp.text()}")
                    return await resp.read()

            return call

        calls = {name: caller(url, h) for name, (url, h) in targets.items()}
        for conc in (1, 10):
            rounds: dict[str, list[Result]] = {name: [] for name in calls}
            order = list(calls)
            for _ in range(ROUNDS):
                for name in order:
                    total = TOTALS[conc] // (5 if name.startswith("LiteLLM") else 1)
                    rounds[name].append(
                        await load(name, calls[name], concurrency=conc, total=total, warmup=20)
                    )
                order = order[1:] + order[:1]
            out[conc] = {name: median_result(rs) for name, rs in rounds.items()}
    return out


def run() -> str:
    tmp = Path(tempfile.mkdtemp(prefix="rb-bench-providers-"))
    sim_port, prov_port, lite_port = free_port(), free_port(), free_port()
    wb_port = free_port()
    env = {
        "REFACTORBOT_DATA_DIR": str(tmp / "data"),
        "REFACTORBOT_LOG_DIR": str(tmp),
        "REFACTORBOT_INTERNAL_TOKEN": TEST_TOKEN,
        "REFACTORBOT_LOG_LEVEL": "WARNING",
        "REFACTORBOT_SIMULATOR__PORT": str(sim_port),
        "REFACTORBOT_PROVIDERS__PORT": str(prov_port),
    }
    procs = [
        start(
            [sys.executable, "-m", "openrouter_gateway.simulator", "--port", str(sim_port)],
            env,
            tmp / "sim.log",
        ),
        start([sys.executable, "-m", "services.providers"], env, tmp / "providers.log"),
        # the same slice with the write-behind ledger, its own data folder
        start(
            [sys.executable, "-m", "services.providers"],
            {
                **env,
                "REFACTORBOT_DATA_DIR": str(tmp / "data-wb"),
                "REFACTORBOT_PROVIDERS__PORT": str(wb_port),
                "REFACTORBOT_PROVIDERS__LEDGER_MODE": "write_behind",
            },
            tmp / "providers-wb.log",
        ),
    ]
    sim = f"http://127.0.0.1:{sim_port}"
    targets = {
        "simulator direct": (f"{sim}/api/v1/chat/completions", {}),
        "via providers": (
            f"http://127.0.0.1:{prov_port}/v1/chat/completions",
            {"X-Internal-Token": TEST_TOKEN},
        ),
        "via providers, write_behind": (
            f"http://127.0.0.1:{wb_port}/v1/chat/completions",
            {"X-Internal-Token": TEST_TOKEN},
        ),
    }
    try:
        wait_http(f"{sim}/health")
        wait_http(f"http://127.0.0.1:{prov_port}/ready")
        wait_http(f"http://127.0.0.1:{wb_port}/ready")
        exe = litellm_bin()
        if exe is not None:
            (tmp / "litellm.yaml").write_text(
                "model_list:\n  - model_name: openai/gpt-4o-mini\n    litellm_params:\n"
                "      model: openai/openai/gpt-4o-mini\n"
                f"      api_base: {sim}/api/v1\n      api_key: sk-simulator\n"
                "litellm_settings:\n  drop_params: true\n"
            )
            procs.append(
                start(
                    [
                        str(exe),
                        "--config",
                        "litellm.yaml",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(lite_port),
                    ],
                    {
                        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
                    },
                    tmp / "litellm.log",
                    cwd=tmp,
                )
            )
            wait_http(f"http://127.0.0.1:{lite_port}/health/liveliness", timeout=180)
            targets["LiteLLM proxy"] = (
                f"http://127.0.0.1:{lite_port}/v1/chat/completions",
                {"Authorization": "Bearer sk-any"},
            )
        results = asyncio.run(_bench(targets))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    rows = []
    for conc, by_name in results.items():
        direct = by_name["simulator direct"]
        for name, r in by_name.items():
            added = r.pct(0.5) - direct.pct(0.5)
            rows.append(
                [
                    str(conc),
                    name,
                    f"{r.rps:,.0f}",
                    fmt_ms(r.pct(0.5)),
                    fmt_ms(r.pct(0.99)),
                    "-" if name == "simulator direct" else fmt_ms(added),
                    str(r.errors),
                ]
            )
    lite = results[10].get("LiteLLM proxy")
    note = ""
    if lite:
        durable = results[10]["via providers"].rps / lite.rps
        behind = results[10]["via providers, write_behind"].rps / lite.rps
        note = (
            f"; throughput at 10 conns vs LiteLLM: {durable:.1f}x (durable ledger), "
            f"{behind:.1f}x (write_behind)"
        )
    return table(
        f"(3) Chat completions through the LLM gateway, median of {ROUNDS} rounds{note}",
        ["conns", "path", "req/s", "p50 ms", "p99 ms", "added p50 ms", "errors"],
        rows,
    )


if __name__ == "__main__":
    print(run())
