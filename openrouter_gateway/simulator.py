"""A local stand-in for OpenRouter's API, for tests and for running without a key.

``POST /api/v1/chat/completions`` answers in OpenRouter's shape (``gen-`` ids, ``usage`` with
``cost`` from the shipped catalog's prices) and is deterministic: the same request gets the
same id and text. ``GET /api/v1/models`` serves the catalog snapshot. Errors use
OpenRouter's body ``{"error": {"code", "message", "metadata"}}`` and status codes.

Token counts are an estimate, not a real tokenizer: ceil(characters / 4) per message plus 4
tokens of overhead each. Streaming and tool calls are not simulated yet.

Run it with ``python -m openrouter_gateway.simulator`` (host and port from the config).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import sys
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from openrouter_gateway.catalog import compute_cost, load_snapshot

DEFAULT_MODEL = "openai/gpt-4o-mini"
ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
REMARKS = (
    "This answer comes from the local OpenRouter simulator.",
    "Set OPENROUTER_API_KEY to talk to a real model.",
    "The simulator is deterministic: the same question gets the same answer.",
    "Nothing left this machine to produce this reply.",
)


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _error(status: int, message: str, **metadata: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": status, "message": message}}
    if metadata:
        body["error"]["metadata"] = metadata
    return JSONResponse(body, status_code=status)


def create_simulator_app(latency_ms: float = 0.0) -> FastAPI:
    models = {m["id"]: m for m in load_snapshot()}
    catalog_body = json.dumps({"data": list(models.values())}).encode()
    app = FastAPI(title="OpenRouter simulator", docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/models")
    async def list_models() -> JSONResponse:
        return JSONResponse(json.loads(catalog_body))

    @app.post("/api/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        auth = request.headers.get("authorization")
        if auth is not None and not auth.startswith("Bearer "):
            return _error(401, "No auth credentials found")
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "Invalid JSON body")
        if not isinstance(body, dict):
            return _error(400, "Request body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages: expected a non-empty array")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                return _error(400, f"messages[{i}]: expected an object with a valid role")
        if body.get("stream"):
            return _error(400, "The simulator does not stream yet; send stream=false")
        candidates = [body["model"]] if body.get("model") else []
        candidates += [m for m in body.get("models") or [] if isinstance(m, str)]
        model = next((m for m in candidates if m in models), None)
        if model is None and candidates:
            return _error(404, f"No endpoints found for {candidates[0]}.")
        model = model or DEFAULT_MODEL
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            return _error(400, "max_tokens: expected a positive integer")
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        digest = hashlib.sha256(json.dumps([model, messages], sort_keys=True).encode()).hexdigest()
        last_user = next(
            (_content_text(m.get("content")) for m in reversed(messages) if m["role"] == "user"), ""
        )
        text = (
            f"[simulated {model}] You said: {last_user[:200]} "
            f"{REMARKS[int(digest[:8], 16) % len(REMARKS)]}"
        )
        finish = "stop"
        completion_tokens = estimate_tokens(text)
        if max_tokens is not None and completion_tokens > max_tokens:
            text, completion_tokens, finish = text[: max_tokens * 4], max_tokens, "length"
        prompt_tokens = sum(estimate_tokens(_content_text(m.get("content"))) + 4 for m in messages)
        return JSONResponse(
            {
                "id": f"gen-{digest[:24]}",
                "provider": "Simulator",
                "model": model,
                "object": "chat.completion",
                "created": int(time.time()),
                "choices": [
                    {
                        "index": 0,
                        "logprobs": None,
                        "finish_reason": finish,
                        "native_finish_reason": finish,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "cost": compute_cost(model, prompt_tokens, completion_tokens),
                },
            }
        )

    return app


def main() -> None:
    """Serve the simulator on the configured host and port."""
    import uvicorn

    from services.kit.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"openrouter simulator: {exc}", file=sys.stderr)
        sys.exit(2)
    sim = settings.simulator
    print(f"OpenRouter simulator on http://{sim.host}:{sim.port}/api/v1", file=sys.stderr)
    uvicorn.run(
        create_simulator_app(sim.latency_ms),
        host=sim.host,
        port=sim.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
