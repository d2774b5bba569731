"""master_core's public routes: everything behind an API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response

from master_core import service
from master_core.deps import MasterDep
from master_core.keys import Principal, new_key, store_key
from master_core.schemas import ChatRequest, ChatResponse, FleetStatus, KeyCreate, KeyCreated
from services.agent_core.schemas import SESSION_ID_PATTERN, TurnCreate
from services.kit.app import DbSessionDep
from services.kit.client import SliceClient
from services.kit.errors import (
    BadRequest,
    DeadlineExceeded,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    UpstreamError,
    error_responses,
)
from services.kit.manifest import SLICE_NAMES
from services.kit.query import MAX_SEQ
from services.session.schemas import MessagesPublic

router = APIRouter(prefix="/v1", tags=["gateway"], responses=error_responses(Unauthorized))


async def authenticate(
    master: MasterDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller's key from ``Authorization: Bearer <key>``."""
    scheme, _, raw = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not raw:
        raise Unauthorized(
            "send your API key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await master.keys.verify(raw.strip())
    if principal is None:
        raise Unauthorized("invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise Forbidden("this needs an admin API key")
    return principal


@router.post(
    "/chat",
    responses=error_responses(NotFound, UpstreamError, ServiceUnavailable, DeadlineExceeded),
)
async def create_chat(
    body: ChatRequest, master: MasterDep, principal: PrincipalDep
) -> ChatResponse:
    """One chat turn: the agent answers ``message`` in the session (new if none given)."""
    turn = await master.agent.run_turn(
        TurnCreate(session_id=body.session_id, message=body.message, api_key_id=principal.key_id)
    )
    return ChatResponse(
        session_id=turn.session_id,
        reply=turn.reply,
        model=turn.model,
        usage=turn.usage,
        turn_id=turn.turn_id,
    )


@router.get("/sessions/{session_id}/messages", responses=error_responses(NotFound))
async def read_session_messages(
    master: MasterDep,
    _: PrincipalDep,
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MessagesPublic:
    """A session's history, oldest first, page by page."""
    return await master.sessions.list_messages(session_id, after_seq=after_seq, limit=limit)


@router.get("/fleet/status")
async def read_fleet_status(master: MasterDep, _: PrincipalDep) -> FleetStatus:
    """Every service's /status in one answer."""
    ctx = master.ctx
    own = (await master.own_status()).model_dump(mode="json")
    return await service.fleet_status(pool=ctx.pool, settings=ctx.settings, own=own)


@router.post("/keys", status_code=201, responses=error_responses(Forbidden))
def create_key(
    body: KeyCreate, db: DbSessionDep, _: Annotated[Principal, Depends(require_admin)]
) -> KeyCreated:
    """Make a new API key (admin only). The key is in this answer and nowhere else."""
    raw = new_key()
    principal = store_key(session=db, raw=raw, name=body.name, admin=body.admin)
    return KeyCreated(id=principal.key_id, name=principal.name, admin=principal.admin, key=raw)


@router.api_route(
    "/admin/{service}/{path:path}",
    methods=["GET", "POST", "PATCH", "DELETE"],
    responses=error_responses(Forbidden, NotFound, ServiceUnavailable),
)
async def forward_to_slice(
    service: str,
    path: str,
    request: Request,
    master: MasterDep,
    _: Annotated[Principal, Depends(require_admin)],
) -> Response:
    """An admin's window onto a slice's own /v1/ routes (the dashboard reads through it):
    e.g. ``GET /v1/admin/providers/usage`` is the providers slice's ``GET /v1/usage``."""
    if service not in SLICE_NAMES:
        raise NotFound(f"no slice {service!r}; one of: {', '.join(SLICE_NAMES)}")
    if any(part in ("", ".", "..") for part in path.split("/")) or "\\" in path:
        raise BadRequest(f"path {path!r}: empty, '.' or '..' segments are not allowed")
    client = SliceClient(master.ctx.pool, master.ctx.settings.service(service).base_url)
    client.service = service
    status, body, content_type = await client.forward(
        request.method,
        f"/v1/{path}",
        body=await request.body(),
        params=list(request.query_params.multi_items()),
    )
    return Response(body, status_code=status, media_type=content_type)
