"""A local stand-in for OpenRouter's API, for tests and for running without a key.

What it reproduces:

- ``POST /api/v1/chat/completions``, streamed or not, in OpenRouter's shape: ``gen-`` ids
  (also in the ``X-Generation-Id`` header), ``usage`` with ``cost`` from the shipped
  catalog's prices, token details (cached, reasoning). A stream starts with the
  ``: OPENROUTER PROCESSING`` keep-alive comment, sends the text in small chunks and tool
  calls as fragments, then a chunk with ``finish_reason``, a usage chunk with
  ``choices: []``, and ``data: [DONE]``.
- Tool calls when the request offers ``tools`` and the scenario scripts them.
- ``GET /api/v1/generation?id=`` for the stats of a recent generation, ``GET
  /api/v1/models`` for the catalog snapshot.
- Errors in OpenRouter's body ``{"error": {"code", "message", "metadata"}}``, and faults on
  demand: latency, slow first token, 429 with ``Retry-After``, 402, 502/503, a mid-stream
  error chunk, a dropped connection (see :mod:`openrouter_gateway.scenario`).

It is deterministic: the same request gets the same id and text. Without a scenario it
echoes the last user message (in JSON mode, ``response_format``, as ``{"reply": ...}``);
a scenario's ``extract`` turn answers an extraction prompt with JSON built from the input.
Token counts are an estimate, not a real tokenizer:
ceil(characters / 4) per message plus 4 tokens of overhead each.

Run it with ``python -m openrouter_gateway.simulator [--host H] [--port P] [--latency-ms MS]
[--scenarios-dir DIR] [--default-scenario NAME]`` (RefactorBot's fleet runner passes its
config's ``simulator`` section).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from openrouter_gateway.catalog import compute_cost, load_snapshot
from openrouter_gateway.scenario import (
    Fault,
    Scenario,
    ScenarioError,
    Turn,
    load_scenarios,
    parse_fault_header,
)

DEFAULT_MODEL = "openai/gpt-4o-mini"
ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
REMARKS = (
    "This answer comes from the local OpenRouter simulator.",
    "Set OPENROUTER_API_KEY to talk to a real model.",
    "The simulator is deterministic: the same question gets the same answer.",
    "Nothing left this machine to produce this reply.",
)
SCENARIO_HEADER = "X-Simulator-Scenario"
FAULT_HEADER = "X-Simulator-Fault"
KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
CHUNK_CHARS = 16  # characters of text per streamed chunk
MAX_GENERATIONS = 10_000  # generation stats kept for GET /generation
MAX_FAULT_COUNTERS = 10_000


class SimulatedDrop(Exception):
    """Raised inside a response to close the connection without finishing the answer."""


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _error(
    status: int, message: str, *, retry_after: float | None = None, **metadata: Any
) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": status, "message": message}}
    if metadata:
        body["error"]["metadata"] = metadata
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


class Simulator:
    """The simulator's state: catalog, scenarios, fault counters and recent generations."""

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        scenarios: dict[str, Scenario] | None = None,
        default_scenario: str | None = None,
    ) -> None:
        self.models = {m["id"]: m for m in load_snapshot()}
        self.latency_ms = latency_ms
        self.scenarios = scenarios if scenarios is not None else load_scenarios()
        if default_scenario is not None and default_scenario not in self.scenarios:
            raise ScenarioError(f"default scenario {default_scenario!r} is not loaded")
        self.default_scenario = default_scenario
        self.generations: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.fault_counts: OrderedDict[str, int] = OrderedDict()
        self.requests = 0

    def pick_scenario(self, header: str | None, messages: list[dict[str, Any]]) -> Scenario | None:
        if header:
            if header not in self.scenarios:
                raise ScenarioError(f"{SCENARIO_HEADER}: no scenario named {header!r}")
            return self.scenarios[header]
        first_user = next(
            (_content_text(m.get("content")) for m in messages if m.get("role") == "user"), ""
        )
        for scenario in self.scenarios.values():
            if scenario.match and re.search(scenario.match, first_user):
                return scenario
        return self.scenarios[self.default_scenario] if self.default_scenario else None

    def fault_fires(self, fault: Fault, key: str) -> bool:
        """Whether this attempt fails: always, or only the first ``times`` attempts."""
        if fault.times is None:
            return True
        seen = self.fault_counts.get(key, 0)
        self.fault_counts[key] = seen + 1
        self.fault_counts.move_to_end(key)
        while len(self.fault_counts) > MAX_FAULT_COUNTERS:
            self.fault_counts.popitem(last=False)
        return seen < fault.times

    def remember(self, gen_id: str, stats: dict[str, Any]) -> None:
        self.generations[gen_id] = stats
        self.generations.move_to_end(gen_id)
        while len(self.generations) > MAX_GENERATIONS:
            self.generations.popitem(last=False)


def _validate(body: Any, models: dict[str, Any]) -> tuple[str, JSONResponse | None]:
    """The model to answer as, or the error response for a malformed request."""
    if not isinstance(body, dict):
        return "", _error(400, "Request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "", _error(400, "messages: expected a non-empty array")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return "", _error(400, f"messages[{i}]: expected an object with a valid role")
    tools = body.get("tools")
    if tools is not None and (
        not isinstance(tools, list)
        or not all(isinstance(t, dict) and isinstance(t.get("function"), dict) for t in tools)
    ):
        return "", _error(400, "tools: expected an array of {type: function, function: {...}}")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return "", _error(400, "max_tokens: expected a positive integer")
    candidates = [body["model"]] if body.get("model") else []
    candidates += [m for m in body.get("models") or [] if isinstance(m, str)]
    model = next((m for m in candidates if m in models), None)
    if model is None and candidates:
        return "", _error(404, f"No endpoints found for {candidates[0]}.")
    return model or DEFAULT_MODEL, None


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    return next(
        (_content_text(m.get("content")) for m in reversed(messages) if m["role"] == "user"), ""
    )


def _answer(
    model: str,
    messages: list[dict[str, Any]],
    turn: Turn | None,
    digest: str,
    offers_tools: bool,
    json_mode: bool = False,
) -> tuple[str | None, list[dict[str, Any]], str]:
    """Text, tool calls and finish reason of the answer."""
    if turn is not None and turn.tool_calls and offers_tools:
        calls = [
            {
                "id": spec.id or f"call_{digest[:12]}_{i}",
                "type": "function",
                "function": {"name": spec.name, "arguments": spec.arguments_json()},
            }
            for i, spec in enumerate(turn.tool_calls)
        ]
        return turn.content, calls, turn.finish_reason or "tool_calls"
    if turn is not None and turn.extract is not None:
        answer = turn.extract.answer(_last_user_text(messages))
        return json.dumps(answer), [], turn.finish_reason or "stop"
    if turn is not None and turn.content is not None:
        return turn.content, [], turn.finish_reason or "stop"
    if turn is not None and turn.tool_calls:
        names = ", ".join(s.name for s in turn.tool_calls)
        return f"[simulated {model}] I would call {names}, but no tools were offered.", [], "stop"
    if json_mode:
        return json.dumps({"reply": _last_user_text(messages)[:500]}), [], "stop"
    last = messages[-1]
    if last.get("role") == "tool":
        said = f"The tool answered: {_content_text(last.get('content'))[:200]}"
    else:
        said = f"You said: {_last_user_text(messages)[:200]}"
    remark = REMARKS[int(digest[:8], 16) % len(REMARKS)]
    return f"[simulated {model}] {said} {remark}", [], "stop"


def _usage(
    model: str,
    body: dict[str, Any],
    text: str | None,
    calls: list[dict[str, Any]],
    turn: Turn | None,
) -> dict[str, Any]:
    messages = body["messages"]
    prompt = sum(estimate_tokens(_content_text(m.get("content"))) + 4 for m in messages)
    if body.get("tools"):
        prompt += estimate_tokens(json.dumps(body["tools"]))
    completion = estimate_tokens(text or "") + sum(
        estimate_tokens(c["function"]["name"] + c["function"]["arguments"]) + 4 for c in calls
    )
    cached = reasoning = 0
    if turn is not None and turn.usage is not None:
        prompt = turn.usage.prompt_tokens if turn.usage.prompt_tokens is not None else prompt
        completion = (
            turn.usage.completion_tokens if turn.usage.completion_tokens is not None else completion
        )
        cached, reasoning = turn.usage.cached_tokens, turn.usage.reasoning_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": compute_cost(model, prompt, completion),
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "image_tokens": 0},
    }


def create_simulator_app(
    latency_ms: float = 0.0,
    *,
    scenarios_dir: Path | None = None,
    scenarios: dict[str, Scenario] | None = None,
    default_scenario: str | None = None,
) -> FastAPI:
    """The simulator as an ASGI app. ``scenarios`` replaces the loaded set (shipped ones and
    those of ``scenarios_dir``); ``default_scenario`` answers requests no scenario matched."""
    loaded = scenarios if scenarios is not None else load_scenarios(scenarios_dir)
    sim = Simulator(latency_ms=latency_ms, scenarios=loaded, default_scenario=default_scenario)
    catalog_body = json.dumps({"data": list(sim.models.values())}).encode()
    app = FastAPI(title="OpenRouter simulator", docs_url=None, redoc_url=None)
    app.state.simulator = sim

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "scenarios": sorted(sim.scenarios), "requests": sim.requests}

    @app.get("/api/v1/models")
    async def list_models() -> Response:
        return Response(catalog_body, media_type="application/json")

    @app.get("/api/v1/generation")
    async def generation(request: Request) -> JSONResponse:
        gen_id = request.query_params.get("id")
        if not gen_id:
            return _error(400, "id: a generation id is required")
        stats = sim.generations.get(gen_id)
        if stats is None:
            return _error(404, f"Generation {gen_id} not found")
        return JSONResponse({"data": stats})

    @app.post("/api/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        sim.requests += 1
        started = time.perf_counter()
        auth = request.headers.get("authorization")
        if auth is not None and not auth.startswith("Bearer "):
            return _error(401, "No auth credentials found")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "Invalid JSON body")
        model, problem = _validate(body, sim.models)
        if problem is not None:
            return problem
        messages: list[dict[str, Any]] = body["messages"]
        try:
            scenario = sim.pick_scenario(request.headers.get(SCENARIO_HEADER), messages)
            header_fault = request.headers.get(FAULT_HEADER)
            extra_fault = parse_fault_header(header_fault) if header_fault else None
        except ScenarioError as exc:
            return _error(400, str(exc))
        assistant_turns = sum(1 for m in messages if m.get("role") == "assistant")
        turn = scenario.turn_for(assistant_turns) if scenario else None
        if scenario is not None and scenario.model and scenario.model in sim.models:
            model = scenario.model
        digest = hashlib.sha256(
            json.dumps([model, messages, body.get("tools")], sort_keys=True).encode()
        ).hexdigest()
        gen_id = f"gen-{digest[:24]}"
        stream = bool(body.get("stream"))

        fault = extra_fault or (turn.fault if turn else None)
        fault_key = f"{header_fault or (scenario.name if scenario else '')}:{digest}"
        if fault is not None and not sim.fault_fires(fault, fault_key):
            fault = None
        delay_ms = sim.latency_ms + (turn.latency_ms if turn else 0)
        if fault is not None and fault.status and not (fault.mid_stream and stream):
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            return _error(
                fault.status,
                fault.message or f"Simulated error {fault.status}",
                retry_after=fault.retry_after,
                provider_name="Simulator",
            )

        response_format = body.get("response_format")
        json_mode = isinstance(response_format, dict) and response_format.get("type") in (
            "json_object",
            "json_schema",
        )
        text, calls, finish = _answer(
            model, messages, turn, digest, bool(body.get("tools")), json_mode
        )
        max_tokens = body.get("max_tokens")
        truncate = max_tokens is not None and not calls and text is not None
        if truncate and estimate_tokens(text or "") > max_tokens:
            text, finish = (text or "")[: max_tokens * 4], "length"
        usage = _usage(model, body, text, calls, turn)
        if max_tokens is not None and finish == "length":
            usage["completion_tokens"] = max_tokens
            usage["total_tokens"] = usage["prompt_tokens"] + max_tokens
            usage["cost"] = compute_cost(model, usage["prompt_tokens"], max_tokens)
        created = int(time.time())
        headers = {"X-Generation-Id": gen_id}

        def record(outcome: str) -> None:
            elapsed = int((time.perf_counter() - started) * 1000)
            sim.remember(
                gen_id,
                {
                    "id": gen_id,
                    "model": model,
                    "provider_name": "Simulator",
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
                    "streamed": stream,
                    "finish_reason": finish if outcome == "ok" else "error",
                    "tokens_prompt": usage["prompt_tokens"],
                    "tokens_completion": usage["completion_tokens"],
                    "native_tokens_prompt": usage["prompt_tokens"],
                    "native_tokens_completion": usage["completion_tokens"],
                    "native_tokens_cached": usage["prompt_tokens_details"]["cached_tokens"],
                    "native_tokens_reasoning": usage["completion_tokens_details"][
                        "reasoning_tokens"
                    ],
                    "total_cost": usage["cost"] if outcome == "ok" else 0,
                    "latency": elapsed,
                    "generation_time": elapsed,
                    "cancelled": outcome != "ok",
                },
            )

        if not stream:
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            payload = json.dumps(
                {
                    "id": gen_id,
                    "provider": "Simulator",
                    "model": model,
                    "object": "chat.completion",
                    "created": created,
                    "choices": [
                        {
                            "index": 0,
                            "logprobs": None,
                            "finish_reason": finish,
                            "native_finish_reason": finish,
                            "message": message,
                        }
                    ],
                    "usage": usage,
                }
            ).encode()
            if fault is not None and fault.drop:
                record("dropped")
                return _DroppedResponse(payload, headers=headers, media_type="application/json")
            record("ok")
            return Response(payload, media_type="application/json", headers=headers)

        chunk_delay = turn.chunk_delay_ms / 1000 if turn else 0.0

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            data = {
                "id": gen_id,
                "provider": "Simulator",
                "model": model,
                "object": "chat.completion.chunk",
                "created": created,
                "choices": choices,
                **extra,
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        def delta(d: dict[str, Any], finish_reason: str | None = None) -> bytes:
            return chunk(
                [
                    {
                        "index": 0,
                        "delta": d,
                        "finish_reason": finish_reason,
                        "native_finish_reason": finish_reason,
                        "logprobs": None,
                    }
                ]
            )

        async def events() -> AsyncIterator[bytes]:
            yield KEEPALIVE
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            parts = [delta({"role": "assistant", "content": ""})]
            body_text = text or ""
            parts += [
                delta({"content": body_text[i : i + CHUNK_CHARS]})
                for i in range(0, len(body_text), CHUNK_CHARS)
            ]
            for i, call in enumerate(calls):
                args = call["function"]["arguments"]
                half = len(args) // 2
                parts.append(
                    delta(
                        {
                            "tool_calls": [
                                {
                                    "index": i,
                                    "id": call["id"],
                                    "type": "function",
                                    "function": {"name": call["function"]["name"], "arguments": ""},
                                }
                            ]
                        }
                    )
                )
                for piece in (args[:half], args[half:]):
                    parts.append(
                        delta({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
                    )
            for n, part in enumerate(parts):
                if fault is not None and n == fault.after_chunks:
                    if fault.drop:
                        record("dropped")
                        raise SimulatedDrop("simulated dropped connection")
                    if fault.mid_stream:
                        record("error")
                        err = {
                            "code": fault.status or "server_error",
                            "message": fault.message or "Provider disconnected unexpectedly",
                        }
                        yield chunk(
                            [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
                            error=err,
                        )
                        yield b"data: [DONE]\n\n"
                        return
                yield part
                if chunk_delay:
                    await asyncio.sleep(chunk_delay)
            yield delta({}, finish)
            yield chunk([], usage=usage)
            record("ok")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


class _DroppedResponse(Response):
    """Sends the headers and part of the body, then closes the connection."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": self.raw_headers,
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": self.body[: len(self.body) // 2],
                "more_body": True,
            }
        )
        raise SimulatedDrop("simulated dropped connection")


def main(argv: list[str] | None = None) -> None:
    """Serve the simulator on the host and port given on the command line."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m openrouter_gateway.simulator", description="A local OpenRouter stand-in"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before answers")
    parser.add_argument("--scenarios-dir", type=Path, help="scenario files added to the shipped")
    parser.add_argument("--default-scenario", help="for requests no scenario matched")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536 or args.latency_ms < 0:
        parser.error("--port must be 1-65535 and --latency-ms at least 0")
    try:
        app = create_simulator_app(
            args.latency_ms,
            scenarios_dir=args.scenarios_dir,
            default_scenario=args.default_scenario,
        )
    except ScenarioError as exc:
        print(f"openrouter simulator: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"OpenRouter simulator on http://{args.host}:{args.port}/api/v1", file=sys.stderr)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
