"""The providers slice's HTTP routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from services.kit.app import DbSessionDep
from services.kit.context import CALLER_HEADER
from services.kit.errors import BadRequest, ServiceUnavailable, UpstreamError, error_responses
from services.providers import service
from services.providers.deps import ProvidersDep
from services.providers.schemas import (
    API_KEY_ID_HEADER,
    SESSION_HEADER,
    ChatCompletionRequest,
    UsagesPublic,
)

router = APIRouter(prefix="/v1", tags=["providers"])


@router.post(
    "/chat/completions",
    responses=error_responses(BadRequest, UpstreamError, ServiceUnavailable),
)
async def create_chat_completion(
    body: ChatCompletionRequest,
    deps: ProvidersDep,
    caller: Annotated[str | None, Header(alias=CALLER_HEADER, max_length=64)] = None,
    session_id: Annotated[str | None, Header(alias=SESSION_HEADER, max_length=64)] = None,
    api_key_id: Annotated[str | None, Header(alias=API_KEY_ID_HEADER, max_length=64)] = None,
) -> JSONResponse:
    """OpenAI-compatible chat completion through OpenRouter (or the simulator)."""
    ctx = deps.ctx
    result = await service.complete(
        client=deps.llm,
        db=ctx.db,
        request=body,
        caller=caller,
        session_id=session_id,
        api_key_id=api_key_id,
        max_tokens_cap=ctx.settings.providers.max_tokens_cap,
        metrics=deps.metrics,
    )
    return JSONResponse(result, headers={"X-Model": str(result.get("model", ""))})


@router.get("/usage")
def read_usage(
    db: DbSessionDep,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> UsagesPublic:
    """The usage ledger, newest first, optionally for one session."""
    data, count, cost, tokens = service.list_usage(
        session=db, session_id=session_id, limit=limit, offset=offset
    )
    return UsagesPublic(data=data, count=count, total_cost_usd=cost, total_tokens=tokens)
