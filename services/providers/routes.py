"""The providers slice's HTTP routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from openrouter_gateway import OpenRouterError
from services.kit.app import DbSessionDep, UnitOfWorkDep
from services.kit.context import CALLER_HEADER
from services.kit.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
    error_responses,
)
from services.kit.query import PageDep
from services.providers import budgets, service, upstreams
from services.providers.budgets import BudgetExceeded
from services.providers.catalog import CatalogError
from services.providers.deps import ProvidersDep
from services.providers.schemas import (
    API_KEY_ID_HEADER,
    MAX_PRICE_HEADER,
    SESSION_HEADER,
    UPSTREAM_NAME,
    BudgetCreate,
    BudgetPublic,
    BudgetsPublic,
    BudgetUpdate,
    ChatCompletion,
    ChatCompletionRequest,
    ModelPublic,
    ModelsPublic,
    ModelsRefreshed,
    ReportGroup,
    SpendReport,
    UpstreamCreate,
    UpstreamPublic,
    UpstreamsPublic,
    UpstreamUpdate,
    UsagesPublic,
)

router = APIRouter(prefix="/v1", tags=["providers"])


@router.post(
    "/chat/completions",
    responses={
        200: {"model": ChatCompletion, "description": "The completion (or its SSE chunks)"},
        **error_responses(BadRequest, BudgetExceeded, UpstreamError, ServiceUnavailable),
    },
)
async def create_chat_completion(
    body: ChatCompletionRequest,
    deps: ProvidersDep,
    caller: Annotated[str | None, Header(alias=CALLER_HEADER, max_length=64)] = None,
    session_id: Annotated[str | None, Header(alias=SESSION_HEADER, max_length=64)] = None,
    api_key_id: Annotated[str | None, Header(alias=API_KEY_ID_HEADER, max_length=64)] = None,
    max_price_usd: Annotated[
        float | None,
        Header(
            alias=MAX_PRICE_HEADER,
            ge=0,
            description="With model auto: the most a call may cost (estimated)",
        ),
    ] = None,
) -> Response:
    """OpenAI-compatible chat completion through OpenRouter (or the simulator), streamed as
    Server-Sent Events with ``stream: true``.

    ``model: "auto"`` routes the request: the answer's ``X-Route-Model`` and
    ``X-Route-Reason`` headers say which model was chosen and why."""
    ctx = deps.ctx
    call = await service.prepare(
        upstreams=deps.upstreams,
        db=ctx.db,
        request=body,
        caller=caller,
        session_id=session_id,
        api_key_id=api_key_id,
        settings=ctx.settings.providers,
        catalog=deps.catalog,
        budget_cache=deps.budget_cache,
        ledger=deps.ledger,
        metrics=deps.metrics,
        max_price_usd=max_price_usd,
    )
    headers = {"X-Upstream": call.upstream}
    if call.decision is not None:
        headers["X-Route-Model"] = call.decision.model
        headers["X-Route-Reason"] = call.decision.header()
    if body.stream:
        events = await service.open_stream(call)
        headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    answer = await service.complete(call)
    headers["X-Model"] = str(answer.get("model", ""))
    return JSONResponse(answer, headers=headers)


@router.get("/usage")
def read_usage(
    db: DbSessionDep,
    page: PageDep,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
) -> UsagesPublic:
    """The usage ledger, newest first, optionally for one session."""
    data, count, cost, tokens = service.list_usage(
        session=db, session_id=session_id, limit=page.limit, offset=page.offset
    )
    return UsagesPublic(data=data, count=count, total_cost_usd=cost, total_tokens=tokens)


BudgetId = Annotated[str, Path(pattern=r"^[a-f0-9]{1,32}$", description="Budget id")]


@router.post("/budgets", status_code=201, responses=error_responses(Conflict))
def create_budget(body: BudgetCreate, uow: UnitOfWorkDep, deps: ProvidersDep) -> BudgetPublic:
    """A spending limit for everyone, one calling slice, or one API key, per window."""
    made = budgets.create_budget(session=uow.session, data=body)
    uow.after_commit(deps.budget_cache.invalidate)  # committed before the cache reloads it
    return made


@router.get("/budgets")
def read_budgets(db: DbSessionDep) -> BudgetsPublic:
    """Every budget with its current window's spend, holds and what remains."""
    data = budgets.list_budgets(session=db)
    return BudgetsPublic(data=data, count=len(data))


@router.get("/budgets/{budget_id}", responses=error_responses(NotFound))
def read_budget(budget_id: BudgetId, db: DbSessionDep) -> BudgetPublic:
    return budgets.get_budget(session=db, budget_id=budget_id)


@router.patch("/budgets/{budget_id}", responses=error_responses(NotFound))
def update_budget(
    budget_id: BudgetId, body: BudgetUpdate, uow: UnitOfWorkDep, deps: ProvidersDep
) -> BudgetPublic:
    """Change a budget's limit; spend already booked stays."""
    changed = budgets.update_budget(session=uow.session, budget_id=budget_id, data=body)
    uow.after_commit(deps.budget_cache.invalidate)
    return changed


@router.delete("/budgets/{budget_id}", status_code=204, responses=error_responses(NotFound))
def delete_budget(budget_id: BudgetId, uow: UnitOfWorkDep, deps: ProvidersDep) -> None:
    budgets.delete_budget(session=uow.session, budget_id=budget_id)
    uow.after_commit(deps.budget_cache.invalidate)


@router.get("/reports/spend")
def read_spend_report(
    db: DbSessionDep,
    group_by: Annotated[ReportGroup, Query(description="model, caller, api_key or day")],
    since: Annotated[datetime | None, Query(description="From this time (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (ISO 8601)")] = None,
) -> SpendReport:
    """Calls, tokens and spend from the ledger, for the dashboard and for people."""
    if since is not None and until is not None and since >= until:
        raise BadRequest("since must be before until")
    return service.spend_report(session=db, group_by=group_by, since=since, until=until)


@router.get("/models")
def read_models(deps: ProvidersDep) -> ModelsPublic:
    """The model catalog, OpenAI list shape, with OpenRouter's pricing and capabilities."""
    cat = deps.catalog
    data = [
        ModelPublic.model_validate(
            {
                "object": "model",
                "owned_by": mid.split("/", 1)[0],
                "created": m.get("created") or 0,
                **m,
            }
        )
        for mid, m in sorted(cat.models.items())
    ]
    return ModelsPublic(data=data, source=cat.source, updated_at=cat.updated_at)


@router.post("/models/refresh", responses=error_responses(UpstreamError, ServiceUnavailable))
async def refresh_models(deps: ProvidersDep) -> ModelsRefreshed:
    """Fetch the upstream's catalog now and replace ours (all or nothing)."""
    try:
        count = await deps.catalog.refresh(deps.llm)
    except CatalogError as exc:
        raise UpstreamError(f"the upstream catalog was refused: {exc}") from exc
    except OpenRouterError as exc:
        raise service.slice_error_from(exc) from exc
    return ModelsRefreshed(
        count=count, source=deps.catalog.source, updated_at=deps.catalog.updated_at
    )


@router.post("/upstreams", status_code=201, responses=error_responses(Conflict))
def create_upstream(body: UpstreamCreate, uow: UnitOfWorkDep, deps: ProvidersDep) -> UpstreamPublic:
    """Add an OpenAI-compatible upstream for the models matching its prefixes."""
    made = upstreams.create_upstream(session=uow.session, data=body)
    uow.after_commit(deps.reload_upstreams)
    return made


@router.get("/upstreams")
def read_upstreams(db: DbSessionDep) -> UpstreamsPublic:
    """Every extra upstream; API keys are never shown, only whether one is set."""
    data = upstreams.list_upstreams(session=db)
    return UpstreamsPublic(data=data, count=len(data))


@router.patch("/upstreams/{name}", responses=error_responses(NotFound))
def update_upstream(
    name: Annotated[str, Path(pattern=UPSTREAM_NAME)],
    body: UpstreamUpdate,
    uow: UnitOfWorkDep,
    deps: ProvidersDep,
) -> UpstreamPublic:
    changed = upstreams.update_upstream(session=uow.session, name=name, data=body)
    uow.after_commit(deps.reload_upstreams)
    return changed


@router.delete("/upstreams/{name}", status_code=204, responses=error_responses(NotFound))
def delete_upstream(
    name: Annotated[str, Path(pattern=UPSTREAM_NAME)], uow: UnitOfWorkDep, deps: ProvidersDep
) -> None:
    upstreams.delete_upstream(session=uow.session, name=name)
    uow.after_commit(deps.reload_upstreams)
