"""master_core's domain logic: fleet status aggregation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from master_core.schemas import FleetStatus, ServiceHealth
from openrouter_gateway.streaming import iter_sse
from services.agent_core.schemas import TurnPublic
from services.kit.client import ClientPool
from services.kit.config import Settings
from services.kit.manifest import SERVICE_NAMES

STATUS_TIMEOUT_S = 3.0


async def _one_status(pool: ClientPool, name: str, url: str) -> tuple[str, ServiceHealth]:
    try:
        async with pool.session.get(
            url + "/status", timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S)
        ) as resp:
            raw = await resp.read()
            if resp.status != 200:
                return name, ServiceHealth(ok=False, url=url, error=f"HTTP {resp.status}")
            return name, ServiceHealth(ok=True, url=url, status=json.loads(raw))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return name, ServiceHealth(ok=False, url=url, error=exc.__class__.__name__)


async def fleet_status(
    *, pool: ClientPool, settings: Settings, own: dict[str, object]
) -> FleetStatus:
    """Every service's /status, asked concurrently; master_core reports itself directly."""
    others = [n for n in SERVICE_NAMES if n != "master_core"]
    results = dict(
        await asyncio.gather(*(_one_status(pool, n, settings.service(n).base_url) for n in others))
    )
    results["master_core"] = ServiceHealth(ok=True, url=settings.master_core.base_url, status=own)
    return FleetStatus(ok=all(h.ok for h in results.values()), services=results)


def completion_body(turn: TurnPublic) -> dict[str, Any]:
    """An agent turn as a ``chat.completion``. A turn stopped by a bound finishes with
    ``length`` (it was cut short), a finished one with ``stop``."""
    return {
        "id": f"chatcmpl-{turn.turn_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": turn.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": turn.reply},
                "finish_reason": "stop" if turn.stop_reason == "final_answer" else "length",
            }
        ],
        "usage": {
            "prompt_tokens": turn.usage.prompt_tokens,
            "completion_tokens": turn.usage.completion_tokens,
            "total_tokens": turn.usage.total_tokens,
            "cost": turn.usage.cost_usd,
        },
        "session_id": turn.session_id,
        "stop_reason": turn.stop_reason,
    }


def _chunk(cid: str, model: str, choices: list[dict[str, Any]], **extra: Any) -> bytes:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        **extra,
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def completion_chunks(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The agent's progress events as ``chat.completion.chunk`` s: text deltas as content,
    tool activity as SSE comments (clients ignore them; they keep the line alive), the end
    as a finish chunk, a usage chunk and ``[DONE]``; an error as an error chunk."""
    cid, model, started = "chatcmpl-pending", "agent", False
    async for ev in iter_sse(events):
        if ev.data is None or ev.event is None:
            continue
        data = json.loads(ev.data)
        if ev.event == "turn.started":
            cid = f"chatcmpl-{data['turn_id']}"
        elif ev.event in ("tool.started", "tool.finished", "llm.started", "reflection", "plan"):
            label = data.get("name") or data.get("kind") or ev.event
            yield f": {ev.event} {label}\n\n".encode()
        elif ev.event == "delta":
            if not started:
                yield _chunk(cid, model, [{"index": 0, "delta": {"role": "assistant"}}])
                started = True
            choice = {"index": 0, "delta": {"content": data["text"]}, "finish_reason": None}
            yield _chunk(cid, model, [choice])
        elif ev.event == "final":
            turn = TurnPublic.model_validate(data)
            body = completion_body(turn)
            if not started:  # no text was streamed (e.g. a stopped turn): send it whole
                delta = {"role": "assistant", "content": turn.reply}
                yield _chunk(cid, turn.model, [{"index": 0, "delta": delta}])
            finish = body["choices"][0]["finish_reason"]
            yield _chunk(cid, turn.model, [{"index": 0, "delta": {}, "finish_reason": finish}])
            yield _chunk(cid, turn.model, [], usage=body["usage"])
        elif ev.event == "error":
            err = {"code": data.get("status", 500), "message": data.get("message", "")}
            choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
            yield _chunk(cid, model, [choice], error=err)
    yield b"data: [DONE]\n\n"
