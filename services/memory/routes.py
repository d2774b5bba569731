"""The memory slice's HTTP routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from services.kit.app import ContextDep, DbSessionDep
from services.kit.context import OWNER_HEADER
from services.kit.errors import BadRequest, NotFound, PayloadTooLarge, error_responses
from services.kit.query import Page, PageDep, pagination
from services.memory import service
from services.memory.deps import MemoryDep
from services.memory.schemas import (
    MEMORY_ID,
    ConsolidateRequest,
    ConsolidationPublic,
    ConsolidationsPublic,
    MemoriesPublic,
    MemoryCreate,
    MemoryPublic,
    MemoryUpdate,
    Scope,
    SearchResults,
)

router = APIRouter(prefix="/v1", tags=["memory"])
MemoryId = Annotated[str, Path(pattern=MEMORY_ID)]
SearchPage = Annotated[Page, Depends(pagination(default=10, offset=False))]
RunsPage = Annotated[Page, Depends(pagination(default=50))]
Owner = Annotated[
    str | None,
    Header(alias=OWNER_HEADER, max_length=64, description="Act for this API key id"),
]


@router.post("/memories", status_code=201, responses=error_responses(BadRequest, PayloadTooLarge))
def create_memory(
    body: MemoryCreate,
    db: DbSessionDep,
    ctx: ContextDep,
    response: Response,
    owner: Owner = None,
    dedupe: Annotated[
        bool, Query(description="Merge into a near-duplicate in the same scope (200)")
    ] = False,
) -> MemoryPublic:
    """Remember something."""
    made, created = service.create_memory(
        db, body, owner=owner, settings=ctx.settings.memory, dedupe=dedupe
    )
    if not created:
        response.status_code = 200
    return made


@router.get("/memories")
def read_memories(
    db: DbSessionDep,
    page: PageDep,
    owner: Owner = None,
    scope: Scope | None = None,
    subject: Annotated[str | None, Query(max_length=128)] = None,
    tag: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:-]{1,40}$")] = None,
) -> MemoriesPublic:
    """Memories, most recently changed first."""
    data, count = service.list_memories(
        db,
        owner=owner,
        scope=scope,
        subject=subject,
        tag=tag,
        limit=page.limit,
        offset=page.offset,
    )
    return MemoriesPublic(data=data, count=count)


@router.get("/memories/search", responses=error_responses(BadRequest))
def search_memories(
    db: DbSessionDep,
    ctx: ContextDep,
    q: Annotated[str, Query(min_length=1, max_length=2_000, description="What to look for")],
    page: SearchPage,
    owner: Owner = None,
    user: Annotated[str | None, Query(max_length=128, description="This user's memories")] = None,
    session_id: Annotated[
        str | None, Query(max_length=64, description="This session's memories")
    ] = None,
    include_global: bool = True,
) -> SearchResults:
    """Full-text search (BM25), best first, with scores; scoped to a user and/or session."""
    return service.search(
        db,
        query=q,
        owner=owner,
        user=user,
        session_id=session_id,
        include_global=include_global,
        limit=min(page.limit, ctx.settings.memory.max_search_results),
    )


@router.get("/memories/{memory_id}", responses=error_responses(NotFound))
def read_memory(memory_id: MemoryId, db: DbSessionDep, owner: Owner = None) -> MemoryPublic:
    return service.get_memory(db, memory_id, owner)


@router.patch(
    "/memories/{memory_id}", responses=error_responses(NotFound, BadRequest, PayloadTooLarge)
)
def update_memory(
    memory_id: MemoryId,
    body: MemoryUpdate,
    db: DbSessionDep,
    ctx: ContextDep,
    owner: Owner = None,
) -> MemoryPublic:
    return service.update_memory(db, memory_id, body, owner=owner, settings=ctx.settings.memory)


@router.delete("/memories/{memory_id}", status_code=204, responses=error_responses(NotFound))
def delete_memory(memory_id: MemoryId, db: DbSessionDep, owner: Owner = None) -> None:
    service.delete_memory(db, memory_id, owner)


@router.post("/consolidations", status_code=201, responses=error_responses(NotFound))
async def consolidate(body: ConsolidateRequest, memory: MemoryDep) -> ConsolidationPublic:
    """Consolidate a session's history since the last run into memories, now."""
    run = await memory.consolidator.run(body.session_id, min_age_s=body.min_age_s)
    return ConsolidationPublic.model_validate(run, from_attributes=True)


@router.get("/consolidations")
def read_consolidations(
    db: DbSessionDep,
    page: RunsPage,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
) -> ConsolidationsPublic:
    """Consolidation runs, newest first, with their prompts and outputs."""
    data, count = service.list_runs(db, session_id=session_id, limit=page.limit, offset=page.offset)
    return ConsolidationsPublic(data=data, count=count)
