"""The skills slice's HTTP routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.kit.app import ContextDep, DbSessionDep
from services.kit.errors import NotFound, PayloadTooLarge, Unprocessable, error_responses
from services.skills import service
from services.skills.deps import SkillsDep
from services.skills.loader import SkillRejected
from services.skills.schemas import (
    SKILL_NAME,
    ReloadResult,
    SelectRequest,
    SelectResult,
    SkillDetail,
    SkillsPublic,
    SkillToggle,
)

router = APIRouter(prefix="/v1/skills", tags=["skills"])
SkillName = Annotated[str, Path(pattern=SKILL_NAME)]
ARCHIVE_TYPES = (
    "application/zip",
    "application/x-zip-compressed",
    "application/x-tar",
    "application/gzip",
    "application/x-gzip",
    "application/x-bzip2",
    "application/x-xz",
    "application/octet-stream",
)


BINARY = {"type": "string", "format": "binary"}


def rejected(exc: SkillRejected) -> Unprocessable:
    return Unprocessable(f"skill refused: {exc}", code="skill_rejected")


@router.get("")
def read_skills(db: DbSessionDep) -> SkillsPublic:
    """Every loaded skill, and the skills refused at the last load with the reason."""
    data, errors = service.list_skills(db)
    return SkillsPublic(data=data, count=len(data), errors=errors)


@router.post(
    "/upload",
    status_code=201,
    responses=error_responses(Unprocessable, PayloadTooLarge),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in ARCHIVE_TYPES
            },
        }
    },
)
async def upload_skill(request: Request, ctx: ContextDep, skills: SkillsDep) -> SkillDetail:
    """Install a skill from a zip or tar archive (the request body). It is unpacked with
    limits, checked like any skill, and loaded; a refusal changes nothing."""
    limit = ctx.settings.skills.max_archive_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the archive is larger than {limit} bytes")
    if not body:
        raise Unprocessable("send the archive as the request body", code="skill_rejected")
    try:
        name = await skills.upload(bytes(body))
    except SkillRejected as exc:
        raise rejected(exc) from None
    return await ctx.db.run(lambda s: service.get_skill(s, name), write=False)


@router.post("/reload")
async def reload_skills(skills: SkillsDep) -> ReloadResult:
    """Read the skill folders again now (changes are also picked up on their own)."""
    return await skills.reload()


@router.post("/select")
def select_skills(body: SelectRequest, db: DbSessionDep, ctx: ContextDep) -> SelectResult:
    """The skills relevant to a request, within a token budget; skipped ones with why."""
    s = ctx.settings.skills
    return service.select_skills(
        db,
        text=body.text,
        session_id=body.session_id,
        available_tools=body.available_tools,
        budget=s.select_token_budget if body.token_budget is None else body.token_budget,
        most=s.max_selected,
    )


@router.get("/{name}", responses=error_responses(NotFound))
def read_skill(name: SkillName, db: DbSessionDep) -> SkillDetail:
    """A skill with its instructions, files, resources and versions."""
    return service.get_skill(db, name)


@router.get(
    "/{name}/resources/{path:path}",
    responses={**error_responses(NotFound, Unprocessable), 200: {"content": {"text/plain": {}}}},
)
async def read_resource(
    name: SkillName,
    path: Annotated[str, Path(max_length=500)],
    ctx: ContextDep,
    skills: SkillsDep,
) -> Response:
    """One resource file the skill names, confined to its folder (an upload made through
    another replica is unpacked here first)."""
    await skills.refresh()
    most = ctx.settings.skills.max_skill_md_bytes
    try:
        data = await ctx.db.run(lambda s: service.read_resource(s, name, path, most), write=False)
    except SkillRejected as exc:
        raise rejected(exc) from None
    return Response(data, media_type="text/plain; charset=utf-8")


@router.patch("/{name}", responses=error_responses(NotFound))
def toggle_skill(
    name: SkillName,
    body: SkillToggle,
    db: DbSessionDep,
    session_id: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Only here"),
    ] = None,
) -> SkillDetail:
    """Enable or disable a skill, everywhere or for one session."""
    service.set_enabled(db, name, body.enabled, session_id)
    return service.get_skill(db, name)
