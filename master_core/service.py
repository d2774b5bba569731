"""master_core's domain logic: fleet status aggregation, turns as completions."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from master_core.schemas import FleetStatus, FleetSummary, ServiceHealth, ServiceUp
from openrouter_gateway.streaming import iter_sse
from services.agent_core.client import AgentCoreClient
from services.agent_core.schemas import TurnCreate, TurnPublic
from services.kit.client import ClientPool
from services.kit.config import Settings
from services.kit.errors import SliceError, UpstreamError
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


def fleet_summary(fleet: FleetStatus) -> FleetSummary:
    """The fleet as an ordinary key sees it: up or down per service, nothing more."""
    return FleetSummary(
        ok=fleet.ok, services={n: ServiceUp(ok=h.ok) for n, h in fleet.services.items()}
    )


def _first_event(buf: bytes) -> tuple[str, dict[str, Any]] | None:
    """The first complete event (comments skipped) of an SSE byte stream, or None yet."""
    for block in buf.replace(b"\r\n", b"\n").split(b"\n\n")[:-1]:
        name, data = None, []
        for line in block.decode("utf-8", errors="replace").split("\n"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if name is not None:
            try:
                payload = json.loads("\n".join(data)) if data else {}
            except ValueError:
                payload = {}
            return name, payload if isinstance(payload, dict) else {}
    return None


async def _close(events: AsyncIterator[bytes]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


async def open_turn_events(agent: AgentCoreClient, request: TurnCreate) -> AsyncIterator[bytes]:
    """Start a streamed turn and wait for its first event, so that what fails before the
    turn starts (another key's session, an unknown one, a message too long) is an HTTP
    error with its own status, not a 200 whose stream carries an error event. Returns the
    stream's bytes, from the beginning."""
    events = await agent.open_turn_stream(request)
    buf = b""
    first = None
    try:
        while first is None:
            try:
                buf += await anext(events)
            except StopAsyncIteration:
                raise UpstreamError("agent_core ended the stream before the turn started") from None
            first = _first_event(buf)
    except BaseException:
        await _close(events)
        raise
    name, data = first
    if name == "error":
        await _close(events)
        status = data.get("status")
        message = str(data.get("message") or "the turn failed")
        if isinstance(status, int) and 400 <= status < 500:
            raise SliceError(message, code=str(data.get("code") or "error"), status_code=status)
        raise UpstreamError(f"agent_core failed: {message}")

    async def replay() -> AsyncIterator[bytes]:
        try:
            yield buf
            async for piece in events:
                yield piece
        finally:
            await _close(events)

    return replay()


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
