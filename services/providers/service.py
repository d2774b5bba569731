"""The ledger: every upstream call recorded with its tokens, cost and outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from openrouter_gateway import OpenRouterError
from openrouter_gateway.router import NoModelFits, RouteDecision, route
from services.kit.config import ProvidersSettings
from services.kit.context import request_id_var
from services.kit.database import SliceDatabase
from services.kit.errors import BadRequest, ServiceUnavailable, SliceError, UpstreamError
from services.providers import budgets
from services.providers.catalog import Catalog
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
    return {
        "model": model,
        "generation_id": body.get("id"),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
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


@dataclass(frozen=True)
class Completion:
    body: dict[str, Any]
    upstream: str
    decision: RouteDecision | None = None


async def complete(
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
) -> Completion:
    """Forward a chat completion upstream within the budgets that govern it, and record it
    in the ledger, failed or not. ``model: "auto"`` lets the router choose."""
    if request.stream:
        raise BadRequest("stream=true is not supported yet; send stream=false")
    cap = settings.max_tokens_cap
    if request.max_tokens is not None and request.max_tokens > cap:
        raise BadRequest(f"max_tokens {request.max_tokens} is above the limit {cap}")
    payload = request.model_dump(exclude_none=True, exclude={"stream"})
    base = {
        "request_id": request_id_var.get(),
        "caller": caller,
        "session_id": session_id,
        "api_key_id": api_key_id,
        "requested_model": request.model,
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
    started = time.perf_counter()
    try:
        result = await client.chat_completions(payload)
    except OpenRouterError as exc:
        row = {
            **base,
            "latency_ms": (time.perf_counter() - started) * 1000,
            "outcome": type(exc).__name__,
            "error": str(exc.message)[:500],
        }
        await ledger.record(row, settle=(reservation, 0) if reservation else None)
        metrics.observe(model=model, outcome=type(exc).__name__)
        raise slice_error_from(exc) from exc
    fields = usage_from_body(result.body, model, catalog)
    actual = budgets.to_nusd(fields["cost_usd"])
    await ledger.record(
        {**base, **fields, "latency_ms": result.latency_s * 1000, "outcome": "ok"},
        settle=(reservation, actual) if reservation else None,
    )
    metrics.observe(
        model=fields["model"] or "default",
        outcome="ok",
        prompt=fields["prompt_tokens"],
        completion=fields["completion_tokens"],
        cost=fields["cost_usd"],
        seconds=result.latency_s,
    )
    return Completion(body=result.body, upstream=upstream, decision=decision)


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
