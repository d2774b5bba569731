"""The ledger: every upstream call recorded with its tokens, cost and outcome."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from openrouter_gateway import ChatStream, OpenRouterClient, OpenRouterError
from openrouter_gateway.router import NoModelFits, RouteDecision, route
from services.kit.context import request_id_var
from services.kit.database import SliceDatabase
from services.kit.errors import BadRequest, ServiceUnavailable, SliceError, UpstreamError
from services.providers import budgets
from services.providers.catalog import Catalog
from services.providers.config import ProvidersSettings
from services.providers.ledger import LedgerWriter
from services.providers.metrics import ProvidersMetrics
from services.providers.models import UsageRecord
from services.providers.schemas import (
    ChatCompletionRequest,
    ReportGroup,
    SpendReport,
    SpendRow,
    UsagePublic,
)
from services.providers.upstreams import UpstreamRegistry


def usage_from_body(
    body: dict[str, Any], requested: str | None, catalog: Catalog
) -> dict[str, Any]:
    """Tokens, model and cost of an OpenAI-shaped response; cost from the catalog if absent."""
    usage = body.get("usage") or {}
    model = body.get("model") or requested
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cost = usage.get("cost")
    source = "upstream"
    if cost is None:
        cost, source = (
            (catalog.cost_usd(model, prompt, completion), "catalog") if model else (0.0, "none")
        )
    details_in = usage.get("prompt_tokens_details") or {}
    details_out = usage.get("completion_tokens_details") or {}
    return {
        "model": model,
        "generation_id": body.get("id"),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
        "cached_tokens": int(details_in.get("cached_tokens") or 0),
        "reasoning_tokens": int(details_out.get("reasoning_tokens") or 0),
        "cost_usd": float(cost),
        "cost_source": source,
    }


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


AUTO_MODEL = "auto"
log = structlog.get_logger("providers")


@dataclass
class Call:
    """A call made ready to go out: routed, within its budgets, its hold taken."""

    payload: dict[str, Any]
    model: str
    base: dict[str, Any]
    upstream: str
    client: OpenRouterClient
    decision: RouteDecision | None
    reservation: budgets.Reservation | None
    ledger: LedgerWriter
    metrics: ProvidersMetrics
    catalog: Catalog
    started: float = field(default_factory=time.perf_counter)

    async def failed(self, exc: OpenRouterError, **fields: Any) -> None:
        """Book a failed call: its ledger row, the hold released (or settled on ``fields``)."""
        spent = budgets.to_nusd(fields.get("cost_usd", 0.0))
        row = {
            **self.base,
            **fields,
            "latency_ms": (time.perf_counter() - self.started) * 1000,
            "attempts": max(fields.get("attempts", 1), exc.attempts),
            "outcome": type(exc).__name__,
            "error": str(exc.message)[:500],
        }
        await self.ledger.record(
            row, settle=(self.reservation, spent) if self.reservation else None
        )
        self.metrics.observe(model=self.model, outcome=type(exc).__name__)

    async def succeeded(
        self, body: dict[str, Any], *, ttft_s: float | None, streamed: bool, attempts: int
    ) -> None:
        fields = usage_from_body(body, self.model, self.catalog)
        latency_s = time.perf_counter() - self.started
        ttft_s = latency_s if ttft_s is None else ttft_s
        await self.ledger.record(
            {
                **self.base,
                **fields,
                "latency_ms": latency_s * 1000,
                "ttft_ms": ttft_s * 1000,
                "streamed": streamed,
                "attempts": attempts,
                "outcome": "ok",
            },
            settle=(self.reservation, budgets.to_nusd(fields["cost_usd"]))
            if self.reservation
            else None,
        )
        self.metrics.observe(
            model=fields["model"] or "default",
            outcome="ok",
            prompt=fields["prompt_tokens"],
            completion=fields["completion_tokens"],
            cost=fields["cost_usd"],
            seconds=latency_s,
            ttft_seconds=ttft_s if streamed else None,
            retries=attempts - 1,
        )


async def prepare(
    *,
    upstreams: UpstreamRegistry,
    db: SliceDatabase,
    request: ChatCompletionRequest,
    caller: str | None,
    session_id: str | None,
    api_key_id: str | None,
    settings: ProvidersSettings,
    metrics: ProvidersMetrics,
    catalog: Catalog,
    budget_cache: budgets.BudgetCache,
    ledger: LedgerWriter,
    max_price_usd: float | None = None,
) -> Call:
    """Validate, route (``model: "auto"``) and reserve the call's worst-case cost against
    the budgets that govern it; a call that would overspend is refused with 402."""
    cap = settings.max_tokens_cap
    if request.max_tokens is not None and request.max_tokens > cap:
        raise BadRequest(f"max_tokens {request.max_tokens} is above the limit {cap}")
    payload = request.model_dump(exclude_none=True)
    if request.stream:
        # OpenRouter always ends a stream with usage; other upstreams only when asked.
        payload.setdefault("stream_options", {"include_usage": True})
    else:
        payload.pop("stream", None)
    base = {
        "request_id": request_id_var.get(),
        "caller": caller,
        "session_id": session_id,
        "api_key_id": api_key_id,
        "requested_model": request.model,
        "streamed": request.stream,
    }
    decision = None
    if request.model == AUTO_MODEL:
        try:
            decision = route(payload, catalog.models, max_price_usd=max_price_usd)
        except NoModelFits as exc:
            raise BadRequest(f"model auto: {exc}") from exc
        # OpenRouter tries the fallbacks in order when the first choice fails.
        payload["model"] = decision.model
        payload["models"] = [decision.model, *decision.fallbacks]
        base["route_reason"] = decision.header()[:300]
        log.info(
            "routed",
            model=decision.model,
            tier=decision.tier,
            reason=decision.reason,
            fallbacks=decision.fallbacks,
        )
    model = payload.get("model") or "default"

    reservation = None
    governing = await budget_cache.governing(caller, api_key_id)
    if governing:
        if request.model is None:
            raise BadRequest("model is required when a budget applies")
        # A call under a budget always has a ceiling, so its worst case is bounded; with
        # fallbacks, the dearest of them is what it may cost.
        payload.setdefault("max_tokens", settings.budget_default_max_tokens)
        worst = max(
            budgets.worst_case_nusd(
                model=m,
                payload=payload,
                max_tokens=payload["max_tokens"],
                price_of=catalog.price_of,
            )
            for m in payload.get("models") or [model]
        )
        try:
            reservation = await db.run(
                lambda s: budgets.reserve(session=s, amount_nusd=worst, governing=governing)
            )
        except budgets.BudgetExceeded as exc:
            await ledger.record({**base, "outcome": "budget_exceeded", "error": exc.message[:500]})
            metrics.observe(model=model, outcome="budget_exceeded")
            raise
    upstream, client = upstreams.client_for(payload.get("model"))
    return Call(
        payload=payload,
        model=model,
        base=base,
        upstream=upstream,
        client=client,
        decision=decision,
        reservation=reservation,
        ledger=ledger,
        metrics=metrics,
        catalog=catalog,
    )


async def complete(call: Call) -> dict[str, Any]:
    """Send a prepared call (not streamed) and book it, failed or not."""
    call.started = time.perf_counter()
    try:
        result = await call.client.chat_completions(call.payload)
    except OpenRouterError as exc:
        await call.failed(exc)
        raise slice_error_from(exc) from exc
    await call.succeeded(result.body, ttft_s=None, streamed=False, attempts=result.attempts)
    return result.body


async def open_stream(call: Call) -> AsyncIterator[bytes]:
    """Open the upstream stream (retries happen here, before anything is sent on) and
    return the SSE bytes to relay. An upstream error at this point is raised with its own
    status; after it, errors arrive in the stream as an error chunk, as OpenRouter does."""
    call.started = time.perf_counter()
    context = call.client.stream_chat_completions(call.payload)
    try:
        stream = await context.__aenter__()
    except OpenRouterError as exc:
        await call.failed(exc)
        raise slice_error_from(exc) from exc
    return _relay(call, stream)


async def _relay(call: Call, stream: ChatStream) -> AsyncIterator[bytes]:
    booked: Awaitable[None] | None = None
    try:
        try:
            async for ev in stream:
                if ev.data is not None:
                    yield b"data: " + ev.data.encode() + b"\n\n"
                else:
                    yield b": " + (ev.comment or "").encode() + b"\n\n"
        except OpenRouterError as exc:
            booked = call.failed(exc, **_partial_usage(call, stream))
            yield error_chunk(exc, stream.generation_id, call.model)
        else:
            booked = call.succeeded(
                stream.acc.result(),
                ttft_s=stream.first_token_s,
                streamed=True,
                attempts=stream.attempts,
            )
        yield b"data: [DONE]\n\n"
    finally:
        await stream.aclose()
        if booked is None:  # the caller went away: book what was used so far
            gone = OpenRouterError("the client disconnected during the stream")
            booked = call.failed(gone, **_partial_usage(call, stream))
        # Shielded: the booking completes even when this task is being cancelled.
        await asyncio.shield(asyncio.ensure_future(booked))


def _partial_usage(call: Call, stream: ChatStream) -> dict[str, Any]:
    """Usage of a stream that did not finish: the upstream's if it sent one, else estimated
    from the text so far and the prompt's size (what the provider will likely bill)."""
    if stream.acc.usage is not None:
        fields = usage_from_body(stream.acc.result(), call.model, call.catalog)
    else:
        prompt = len(json.dumps(call.payload.get("messages", [])).encode()) // 4
        completion = len(stream.acc.text.encode()) // 4
        fields = {
            "model": stream.acc.model or call.model,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cost_usd": call.catalog.cost_usd(call.model, prompt, completion),
            "cost_source": "estimate",
        }
    fields["generation_id"] = stream.generation_id
    fields["attempts"] = stream.attempts
    fields["ttft_ms"] = None if stream.first_token_s is None else stream.first_token_s * 1000
    return fields


def error_chunk(exc: OpenRouterError, generation_id: str | None, model: str) -> bytes:
    """An error inside a stream, in OpenRouter's shape (the openai package raises it)."""
    chunk = {
        "id": generation_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "error": {"code": exc.status_code or 502, "message": f"LLM upstream: {exc.message}"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


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


def spend_report(
    *, session: Session, group_by: ReportGroup, since: datetime | None, until: datetime | None
) -> SpendReport:
    """Calls, tokens and spend from the ledger, grouped by model, caller, API key or day."""
    column = {
        "model": col(UsageRecord.model),
        "caller": col(UsageRecord.caller),
        "api_key": col(UsageRecord.api_key_id),
        "day": func.date(UsageRecord.created_at),
    }[group_by]
    where = []
    if since is not None:
        where.append(col(UsageRecord.created_at) >= since)
    if until is not None:
        where.append(col(UsageRecord.created_at) < until)
    cost = func.sum(UsageRecord.cost_usd)
    rows = session.execute(  # plain SQLAlchemy: SQLModel's select types four columns at most
        sa_select(
            column,
            func.count(),
            func.sum(case((col(UsageRecord.outcome) != "ok", 1), else_=0)),
            func.sum(UsageRecord.prompt_tokens),
            func.sum(UsageRecord.completion_tokens),
            cost,
        )
        .where(*where)
        .group_by(column)
        .order_by(cost.desc())
    ).all()
    data = [
        SpendRow(
            key=None if k is None else str(k),
            calls=n,
            errors=e or 0,
            prompt_tokens=p or 0,
            completion_tokens=c or 0,
            cost_usd=float(usd or 0.0),
        )
        for k, n, e, p, c, usd in rows
    ]
    return SpendReport(
        group_by=group_by,
        since=since,
        until=until,
        rows=data,
        total_cost_usd=sum(r.cost_usd for r in data),
    )
