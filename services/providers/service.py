"""The ledger: every upstream call recorded with its tokens, cost and outcome."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from openrouter_gateway import OpenRouterClient, OpenRouterError, compute_cost
from services.kit.context import request_id_var
from services.kit.database import SliceDatabase
from services.kit.errors import BadRequest, ServiceUnavailable, SliceError, UpstreamError
from services.providers.metrics import ProvidersMetrics
from services.providers.models import UsageRecord
from services.providers.schemas import ChatCompletionRequest, UsagePublic


def usage_from_body(body: dict[str, Any], requested: str | None) -> dict[str, Any]:
    """Tokens, model and cost of an OpenAI-shaped response; cost from the catalog if absent."""
    usage = body.get("usage") or {}
    model = body.get("model") or requested
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cost = usage.get("cost")
    source = "upstream"
    if cost is None:
        cost, source = (
            (compute_cost(model, prompt, completion), "catalog") if model else (0.0, "none")
        )
    return {
        "model": model,
        "generation_id": body.get("id"),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
        "cost_usd": float(cost),
        "cost_source": source,
    }


def record_usage(*, session: Session, **fields: Any) -> UsagePublic:
    """Store one ledger row."""
    row = UsageRecord(created_at=datetime.now(UTC), **fields)
    session.add(row)
    session.flush()
    return UsagePublic.model_validate(row, from_attributes=True)


def list_usage(
    *, session: Session, session_id: str | None, limit: int, offset: int
) -> tuple[list[UsagePublic], int, float, int]:
    """Ledger rows, newest first, with the count and totals of everything matching."""
    where = [] if session_id is None else [UsageRecord.session_id == session_id]
    count, cost, tokens = session.exec(
        select(
            func.count(),
            func.coalesce(func.sum(UsageRecord.cost_usd), 0.0),
            func.coalesce(func.sum(UsageRecord.total_tokens), 0),
        ).where(*where)
    ).one()
    rows = session.exec(
        select(UsageRecord)
        .where(*where)
        .order_by(col(UsageRecord.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [UsagePublic.model_validate(r, from_attributes=True) for r in rows], count, cost, tokens


async def complete(
    *,
    client: OpenRouterClient,
    db: SliceDatabase,
    request: ChatCompletionRequest,
    caller: str | None,
    session_id: str | None,
    api_key_id: str | None,
    max_tokens_cap: int,
    metrics: ProvidersMetrics,
) -> dict[str, Any]:
    """Forward a chat completion upstream and record it in the ledger, failed or not."""
    if request.stream:
        raise BadRequest("stream=true is not supported yet; send stream=false")
    if request.max_tokens is not None and request.max_tokens > max_tokens_cap:
        raise BadRequest(f"max_tokens {request.max_tokens} is above the limit {max_tokens_cap}")
    payload = request.model_dump(exclude_none=True, exclude={"stream"})
    base = {
        "request_id": request_id_var.get(),
        "caller": caller,
        "session_id": session_id,
        "api_key_id": api_key_id,
        "requested_model": request.model,
    }
    started = time.perf_counter()
    try:
        result = await client.chat_completions(payload)
    except OpenRouterError as exc:
        failure = {
            "latency_ms": (time.perf_counter() - started) * 1000,
            "outcome": type(exc).__name__,
            "error": str(exc.message)[:500],
        }
        await db.run(lambda s: record_usage(session=s, **base, **failure))
        metrics.observe(model=request.model or "default", outcome=type(exc).__name__)
        raise slice_error_from(exc) from exc
    fields = usage_from_body(result.body, request.model)
    await db.run(
        lambda s: record_usage(
            session=s, **base, **fields, latency_ms=result.latency_s * 1000, outcome="ok"
        )
    )
    metrics.observe(
        model=fields["model"] or "default",
        outcome="ok",
        prompt=fields["prompt_tokens"],
        completion=fields["completion_tokens"],
        cost=fields["cost_usd"],
        seconds=result.latency_s,
    )
    return result.body


def slice_error_from(exc: OpenRouterError) -> SliceError:
    """The caller's mistakes keep their status; upstream failures become 502/503."""
    status = exc.status_code
    message = f"LLM upstream: {exc.message}"
    if status in (400, 402, 404, 413, 422, 429):
        return SliceError(message, status_code=status, code=f"upstream_{status}")
    if status in (401, 403):
        # Our key was refused or the content moderated: not the caller's credentials.
        return UpstreamError(message, code=f"upstream_{status}")
    if status is None:
        return ServiceUnavailable(message)
    return UpstreamError(message)
