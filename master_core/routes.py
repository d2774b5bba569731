"""master_core's public routes: everything behind an API key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from master_core import keys, service
from master_core.deps import MasterDep
from master_core.keys import Principal
from master_core.schemas import (
    AgentCompletionRequest,
    ChatRequest,
    ChatResponse,
    FleetStatus,
    FleetSummary,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    KeysPublic,
)
from services.agent_core.schemas import SESSION_ID_PATTERN, TurnCreate
from services.kit.app import DbSessionDep
from services.kit.client import SliceClient
from services.kit.context import OWNER_HEADER
from services.kit.errors import (
    BadRequest,
    Conflict,
    DeadlineExceeded,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    UpstreamError,
    error_responses,
)
from services.kit.manifest import SLICE_NAMES
from services.kit.query import MAX_SEQ, Page, PageDep, pagination
from services.session.schemas import (
    MessagesPublic,
    SearchResults,
    SessionsPublic,
)

router = APIRouter(prefix="/v1", tags=["gateway"], responses=error_responses(Unauthorized))
NO_BUFFER = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# OpenAPI links: what a response's ids lead to (schemathesis chains calls along them)
_SESSION_ID = {"session_id": "$response.body#/session_id"}
SESSION_LINKS = {
    f"{op}": {"operationId": op, "parameters": _SESSION_ID}
    for op in ("read_session_messages", "search_session", "export_session", "delete_session")
}
_KEY_ID = {"key_id": "$response.body#/id"}
KEY_LINKS = {op: {"operationId": op, "parameters": _KEY_ID} for op in ("revoke_key", "rotate_key")}


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
    return await master.keys.verify(raw.strip())


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise Forbidden("this needs an admin API key")
    return principal


@router.post(
    "/chat",
    response_model=ChatResponse,
    operation_id="create_chat",
    responses={
        **error_responses(NotFound, UpstreamError, ServiceUnavailable, DeadlineExceeded),
        200: {"content": {"text/event-stream": {}}, "links": SESSION_LINKS},
    },
)
async def create_chat(body: ChatRequest, master: MasterDep, principal: PrincipalDep) -> Any:
    """One chat turn: the agent answers ``message`` in the session (new if none given).

    With ``stream: true``: Server-Sent Events of the turn's progress (``turn.started``,
    ``llm.started``, ``delta``, ``tool.started``, ``tool.finished``, ``reflection``,
    ``stopped``) ending with ``final`` (this endpoint's answer) or ``error``."""
    request = TurnCreate(
        session_id=body.session_id, message=body.message, api_key_id=principal.key_id
    )
    if body.stream:
        events = await service.open_turn_events(master.agent, request)
        return StreamingResponse(events, media_type="text/event-stream", headers=NO_BUFFER)
    turn = await master.agent.run_turn(request)
    return ChatResponse(
        session_id=turn.session_id,
        reply=turn.reply,
        model=turn.model,
        usage=turn.usage,
        turn_id=turn.turn_id,
    )


@router.post(
    "/chat/completions",
    responses={
        **error_responses(BadRequest, NotFound, UpstreamError, ServiceUnavailable),
        200: {"content": {"text/event-stream": {}}},
    },
)
async def create_agent_completion(
    body: AgentCompletionRequest,
    master: MasterDep,
    principal: PrincipalDep,
    session_id: Annotated[
        str | None, Header(alias="X-Session-ID", pattern=SESSION_ID_PATTERN)
    ] = None,
) -> Response:
    """OpenAI-compatible: a full agent turn (tools, memory of the session, bounds) answered
    as a chat completion, streamed or not. The last message is the user's input and the
    earlier ones the history; ``X-Session-ID`` continues a stored session instead. The
    answer's ``X-Session-ID`` and ``X-Turn-ID`` headers name what was stored."""
    *history, last = body.messages
    text = last.text()
    if last.role != "user" or not text:
        raise BadRequest("the last message must be the user's, with text content")
    request = TurnCreate(
        session_id=session_id,
        message=text,
        api_key_id=principal.key_id,
        messages=None if session_id else [m.as_history() for m in history],
    )
    if body.stream:
        events = await service.open_turn_events(master.agent, request)
        return StreamingResponse(
            service.completion_chunks(events), media_type="text/event-stream", headers=NO_BUFFER
        )
    turn = await master.agent.run_turn(request)
    return JSONResponse(
        service.completion_body(turn),
        headers={"X-Session-ID": turn.session_id, "X-Turn-ID": turn.turn_id},
    )


SessionPath = Annotated[str, Path(pattern=SESSION_ID_PATTERN)]
SessionsPage = Annotated[Page, Depends(pagination(default=50))]
MessagesPage = Annotated[Page, Depends(pagination(offset=False))]  # pages by after_seq
SearchPage = Annotated[Page, Depends(pagination(default=20, most=100, offset=False))]


def _acting_for(principal: Principal) -> dict[str, str]:
    """Whose sessions a request may touch: its own key's; an admin key's, every one."""
    return {} if principal.admin else {OWNER_HEADER: principal.key_id}


async def _session_call(
    master: MasterDep,
    principal: Principal,
    method: str,
    path: str,
    params: list[tuple[str, str]] | None = None,
) -> Response:
    status, body, ctype = await master.sessions.forward(
        method,
        f"/v1/sessions{path}",
        body=None,
        params=params or [],
        headers=_acting_for(principal),
    )
    return Response(body, status_code=status, media_type=ctype or None)


@router.get("/sessions", response_model=SessionsPublic)
async def read_sessions(
    master: MasterDep,
    principal: PrincipalDep,
    page: SessionsPage,
) -> Response:
    """Your key's sessions, most recently active first (an admin key sees all)."""
    params = [("limit", str(page.limit)), ("offset", str(page.offset))]
    return await _session_call(master, principal, "GET", "", params)


@router.get(
    "/sessions/{session_id}/messages",
    operation_id="read_session_messages",
    response_model=MessagesPublic,
    responses=error_responses(NotFound),
)
async def read_session_messages(
    master: MasterDep,
    principal: PrincipalDep,
    session_id: SessionPath,
    page: MessagesPage,
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
) -> Response:
    """A session's history, oldest first, page by page. Another key's session is 404."""
    params = [("after_seq", str(after_seq)), ("limit", str(page.limit))]
    return await _session_call(master, principal, "GET", f"/{session_id}/messages", params)


@router.get(
    "/sessions/{session_id}/search",
    operation_id="search_session",
    response_model=SearchResults,
    responses=error_responses(NotFound, BadRequest),
)
async def search_session(
    master: MasterDep,
    principal: PrincipalDep,
    session_id: SessionPath,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    page: SearchPage,
) -> Response:
    """Full-text search in one of your sessions, best first, with snippets."""
    params = [("q", q), ("limit", str(page.limit))]
    return await _session_call(master, principal, "GET", f"/{session_id}/search", params)


@router.get(
    "/sessions/{session_id}/export",
    operation_id="export_session",
    responses={**error_responses(NotFound), 200: {"content": {"application/x-ndjson": {}}}},
)
async def export_session(
    master: MasterDep, principal: PrincipalDep, session_id: SessionPath
) -> Response:
    """The session and all its messages as JSON Lines (a download)."""
    response = await _session_call(master, principal, "GET", f"/{session_id}/export")
    if response.status_code == 200:
        response.headers["Content-Disposition"] = (
            f'attachment; filename="session-{session_id}.jsonl"'
        )
    return response


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    operation_id="delete_session",
    responses=error_responses(NotFound),
)
async def delete_session(
    master: MasterDep, principal: PrincipalDep, session_id: SessionPath
) -> Response:
    """Delete one of your sessions and every message of it, for good."""
    return await _session_call(master, principal, "DELETE", f"/{session_id}")


@router.get("/fleet/status", response_model=FleetStatus | FleetSummary)
async def read_fleet_status(
    master: MasterDep, principal: PrincipalDep
) -> FleetStatus | FleetSummary:
    """Every service's health in one answer: up or down per service for every key; each
    service's /status in full (paths, process ids, sandbox, ...) only for an admin key."""
    ctx = master.ctx
    own = (await master.own_status()).model_dump(mode="json")
    fleet = await service.fleet_status(pool=ctx.pool, settings=ctx.settings, own=own)
    return fleet if principal.admin else service.fleet_summary(fleet)


AdminDep = Annotated[Principal, Depends(require_admin)]
KeyIdPath = Annotated[str, Path(pattern=r"^[a-f0-9]{16}$", description="The key's id")]


def _key_public(row: Any) -> KeyPublic:
    return KeyPublic.model_validate(keys.describe_key(row))


@router.post(
    "/keys",
    status_code=201,
    operation_id="create_key",
    responses={**error_responses(Forbidden), 201: {"description": "Created", "links": KEY_LINKS}},
)
def create_key(_: AdminDep, body: KeyCreate, db: DbSessionDep) -> KeyCreated:
    """Make a new API key (admin only), optionally expiring. The key is in this answer and
    nowhere else."""
    expires_at = keys.expiry_from(days=body.expires_in_days, at=body.expires_at)
    if expires_at is not None and expires_at <= keys.utcnow():
        raise BadRequest("expires_at: must be in the future")
    raw = keys.new_key()
    row = keys.store_key(
        session=db, raw=raw, name=body.name, admin=body.admin, expires_at=expires_at
    )
    return KeyCreated(id=row.id, name=row.name, admin=row.admin, expires_at=expires_at, key=raw)


@router.get("/keys", responses=error_responses(Forbidden))
def read_keys(
    _: AdminDep,
    db: DbSessionDep,
    page: PageDep,
) -> KeysPublic:
    """Every API key, newest first, with its state (admin only); never a secret or hash."""
    rows, count = keys.list_keys(session=db, limit=page.limit, offset=page.offset)
    return KeysPublic(data=[_key_public(r) for r in rows], count=count)


@router.delete(
    "/keys/{key_id}",
    operation_id="revoke_key",
    responses=error_responses(Forbidden, NotFound, Conflict),
)
def revoke_key(_: AdminDep, key_id: KeyIdPath, db: DbSessionDep) -> KeyPublic:
    """Revoke a key (admin only): refused at once by every replica. Revoking a revoked key
    is a no-op; the last live admin key and the configured one cannot be revoked (409)."""
    return _key_public(keys.revoke_key(session=db, key_id=key_id))


@router.post(
    "/keys/{key_id}/rotate",
    operation_id="rotate_key",
    responses=error_responses(Forbidden, NotFound, Conflict),
)
def rotate_key(_: AdminDep, key_id: KeyIdPath, db: DbSessionDep) -> KeyCreated:
    """A new secret for the same key (id, name, admin, expiry; admin only). The old secret
    is refused at once; the new one is in this answer and nowhere else."""
    row, raw = keys.rotate_key(session=db, key_id=key_id)
    return KeyCreated(id=row.id, name=row.name, admin=row.admin, expires_at=row.expires_at, key=raw)


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
    _: AdminDep,
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
