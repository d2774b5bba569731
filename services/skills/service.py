"""The skill registry: load the folders, keep what is valid, report what is not, pick the
skills relevant to a request."""

from __future__ import annotations

import hashlib
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlmodel import Session, col, delete, select

from services.kit.config import Settings
from services.kit.errors import NotFound
from services.kit.outbox import add_event
from services.kit.text import content_words
from services.kit.versions import bump_version
from services.skills.archive import unpack
from services.skills.config import SkillsSettings
from services.skills.loader import LoadedSkill, SkillRejected, load_skill, resource_path
from services.skills.models import (
    SessionSkill,
    SkillError,
    SkillRecord,
    SkillUpload,
    SkillVersion,
)
from services.skills.schemas import (
    ReloadResult,
    SelectedSkill,
    SelectResult,
    SkillDetail,
    SkillSummary,
    SkippedSkill,
)
from services.skills.schemas import SkillError as SkillErrorPublic

log = structlog.get_logger("skills")
SHIPPED = Path(__file__).resolve().parents[2] / "skills"
MIN_SCORE = 2.0  # a trigger, a word of the name, or two words of the description
UPLOADS_REGISTRY = "skills.uploads"  # its row in kit_registry_versions


def skill_folders(settings: Settings) -> list[Path]:
    """Where skills live: configured folders, else the shipped ones and data_dir/skills
    (where uploads go)."""
    return list(settings.skills.folders) or [SHIPPED, upload_folder(settings)]


def upload_folder(settings: Settings) -> Path:
    return settings.data_dir / "skills"


def fingerprint(folders: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """A cheap picture of the folders (paths, sizes, mtimes) to notice changes."""
    seen = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            try:
                st = path.lstat()
            except OSError:
                continue
            seen.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(seen)


def _summary(row: SkillRecord) -> SkillSummary:
    meta = row.meta
    return SkillSummary(
        name=row.name,
        version=row.version,
        description=row.description,
        tags=meta.get("tags", []),
        triggers=meta.get("triggers", []),
        requires_tools=meta.get("requires", {}).get("tools", []),
        source=row.source,
        checksum=row.checksum,
        enabled=row.enabled,
        updated_at=row.updated_at,
    )


def _errors(session: Session) -> list[SkillErrorPublic]:
    rows = session.exec(select(SkillError).order_by(col(SkillError.at).desc())).all()
    return [SkillErrorPublic.model_validate(r, from_attributes=True) for r in rows]


def scan(folders: list[Path], settings: SkillsSettings) -> tuple[list[LoadedSkill], dict[str, str]]:
    """Every valid skill in the folders, and the reason for every refused one (by path).
    A name found twice keeps the first folder's skill."""
    found: dict[str, LoadedSkill] = {}
    refused: dict[str, str] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith(".") or not (entry.is_dir() or entry.is_symlink()):
                continue
            try:
                skill = load_skill(entry, settings)
            except SkillRejected as exc:
                refused[str(entry)] = str(exc)
                continue
            except OSError as exc:
                refused[str(entry)] = f"could not be read: {exc.strerror or exc}"
                continue
            if skill.meta.name in found:
                refused[str(entry)] = f"a skill named {skill.meta.name!r} is already loaded"
                continue
            found[skill.meta.name] = skill
    return list(found.values()), refused


def store(
    session: Session,
    skills: list[LoadedSkill],
    refused: dict[str, str],
    *,
    seen_before: set[str] | None = None,
) -> ReloadResult:
    """Make the registry match what was found: new and changed skills (re)registered with a
    version row, vanished ones removed, operator switches kept, refusals recorded.

    Replicas share the registry but not their disks, so a skill is removed only when this
    process saw it on its own disk before (``seen_before``, None: any) and its folder has
    gone since; a skill it simply does not have (another replica's, or an upload not yet
    unpacked here) is left alone, and uploads (kept in the database) never vanish."""
    now = datetime.now(UTC)
    existing = {r.name: r for r in session.exec(select(SkillRecord)).all()}
    loaded, unchanged = [], 0
    for skill in skills:
        row = existing.pop(skill.meta.name, None)
        if row is not None and row.checksum == skill.checksum and row.source == str(skill.path):
            unchanged += 1
            continue
        if row is None:
            row = SkillRecord(
                name=skill.meta.name,
                version=skill.meta.version,
                description=skill.meta.description,
                source=str(skill.path),
                checksum=skill.checksum,
                meta={},
                body="",
                files=[],
                loaded_at=now,
                updated_at=now,
            )
        row.version, row.description = skill.meta.version, skill.meta.description
        row.source, row.checksum = str(skill.path), skill.checksum
        row.meta, row.body, row.files = skill.meta.model_dump(), skill.body, skill.files
        row.updated_at = now
        session.add(row)
        session.add(
            SkillVersion(
                name=row.name,
                version=row.version,
                checksum=row.checksum,
                source=row.source,
                loaded_at=now,
            )
        )
        loaded.append(row.name)
        add_event(
            session,
            "skills.loaded",
            "skills.loaded",
            {
                "name": row.name,
                "version": row.version,
                "checksum": row.checksum,
                "source": row.source,
            },
        )
    removed = []
    uploads = set(session.exec(select(SkillUpload.name)).all())
    for name, row in existing.items():
        mine = seen_before is None or name in seen_before
        if mine and name not in uploads and not Path(row.source).exists():
            session.delete(row)
            removed.append(name)
        # a skill whose folder is there but now invalid keeps its last good version
    session.execute(delete(SkillError))
    for source, reason in refused.items():
        session.add(SkillError(source=source[:1000], reason=reason[:1000], at=now))
    session.flush()
    return ReloadResult(
        loaded=loaded, unchanged=unchanged, removed=removed, errors=_errors(session)
    )


def install_upload(data: bytes, settings: Settings) -> LoadedSkill:
    """Unpack an uploaded archive, check the skill, and move it into the upload folder
    (replacing an earlier upload of the same name). Nothing is installed on a refusal."""
    target_root = upload_folder(settings)
    staging = target_root / ".staging"
    folder, cleanup = unpack(data, staging, settings.skills)
    try:
        skill = load_skill(folder, settings.skills)
        if any(
            (f / skill.meta.name).exists() and f != target_root for f in skill_folders(settings)
        ):
            raise SkillRejected(f"a shipped or configured skill is named {skill.meta.name!r}")
        dest = target_root / skill.meta.name
        old = target_root / f".old-{skill.meta.name}-{datetime.now(UTC).timestamp():.0f}"
        if dest.exists():
            dest.rename(old)
        folder.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
        return load_skill(dest, settings.skills)
    finally:
        shutil.rmtree(cleanup, ignore_errors=True)


def archive_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_upload(session: Session, *, name: str, data: bytes) -> str:
    """Keep an accepted upload's archive for every replica; its sha256."""
    sha = archive_sha256(data)
    row = session.get(SkillUpload, name) or SkillUpload(
        name=name, archive=b"", sha256="", uploaded_at=datetime.now(UTC)
    )
    row.archive, row.sha256, row.uploaded_at = data, sha, datetime.now(UTC)
    session.add(row)
    bump_version(session, name=UPLOADS_REGISTRY)  # the other replicas unpack it
    session.flush()
    return sha


def upload_digests(session: Session) -> dict[str, str]:
    """Every upload's name and archive sha256 (not the archives)."""
    return {n: sha for n, sha in session.exec(select(SkillUpload.name, SkillUpload.sha256))}


def read_upload(session: Session, *, name: str) -> bytes | None:
    row = session.get(SkillUpload, name)
    return None if row is None else row.archive


def list_skills(session: Session) -> tuple[list[SkillSummary], list[SkillErrorPublic]]:
    rows = session.exec(select(SkillRecord).order_by(col(SkillRecord.name))).all()
    return [_summary(r) for r in rows], _errors(session)


def get_skill(session: Session, name: str) -> SkillDetail:
    row = session.get(SkillRecord, name)
    if row is None:
        raise NotFound(f"skill {name!r} not found")
    versions = session.exec(
        select(SkillVersion).where(SkillVersion.name == name).order_by(col(SkillVersion.id).desc())
    ).all()
    return SkillDetail(
        **_summary(row).model_dump(),
        instructions=row.body,
        files=row.files,
        resources=row.meta.get("resources", []),
        meta=row.meta,
        versions=[
            {"version": v.version, "checksum": v.checksum, "loaded_at": v.loaded_at.isoformat()}
            for v in versions
        ],
    )


def read_resource(session: Session, name: str, path: str, max_bytes: int) -> bytes:
    """A resource file of a skill, checked again at read time (resolve, then contain)."""
    row = session.get(SkillRecord, name)
    if row is None:
        raise NotFound(f"skill {name!r} not found")
    if path not in row.meta.get("resources", []) and path not in row.files:
        raise NotFound(f"skill {name!r} has no file {path!r}")
    real = resource_path(Path(row.source), path)
    data = real.read_bytes()[: max_bytes + 1]
    if len(data) > max_bytes:
        raise SkillRejected(f"{path!r} is larger than {max_bytes} bytes")
    return data


def set_enabled(session: Session, name: str, enabled: bool, session_id: str | None) -> None:
    row = session.get(SkillRecord, name)
    if row is None:
        raise NotFound(f"skill {name!r} not found")
    if session_id is None:
        row.enabled = enabled
        row.updated_at = datetime.now(UTC)
        session.add(row)
    else:
        switch = session.get(SessionSkill, (session_id, name)) or SessionSkill(
            session_id=session_id, name=name, enabled=enabled
        )
        switch.enabled = enabled
        session.add(switch)
    session.flush()


def _words(text: str) -> set[str]:
    return content_words(text)


def select_skills(
    session: Session,
    *,
    text: str,
    session_id: str | None,
    available_tools: list[str] | None,
    budget: int,
    most: int,
) -> SelectResult:
    """The skills for a request: a trigger phrase in it scores 3, each word it shares with
    the skill's name, tags and description 1 (name words 2). Disabled skills (globally or
    for the session) and skills whose required tools are missing are skipped, with the
    reason; the rest are taken best first within the token budget."""
    rows = session.exec(select(SkillRecord)).all()
    switches: dict[str, bool] = {}
    if session_id is not None:
        for s in session.exec(select(SessionSkill).where(SessionSkill.session_id == session_id)):
            switches[s.name] = s.enabled
    asked = text.lower()
    asked_words = _words(text)
    scored: list[tuple[float, str, SkillRecord]] = []
    skipped: list[SkippedSkill] = []
    for row in rows:
        meta: dict[str, Any] = row.meta
        triggers = [t for t in meta.get("triggers", []) if t.lower() in asked]
        name_hits = asked_words & _words(row.name.replace("-", " "))
        text_hits = asked_words & _words(" ".join([row.description, *meta.get("tags", [])]))
        score = 3.0 * len(triggers) + 2.0 * len(name_hits) + len(text_hits - name_hits)
        if score < MIN_SCORE:
            continue  # one shared word is chance, not relevance
        enabled = switches.get(row.name, row.enabled)
        if not enabled:
            where = "for this session" if row.name in switches else "globally"
            skipped.append(SkippedSkill(name=row.name, reason=f"disabled {where}"))
            continue
        needed = meta.get("requires", {}).get("tools", [])
        if available_tools is not None:
            missing = sorted(set(needed) - set(available_tools))
            if missing:
                skipped.append(
                    SkippedSkill(
                        name=row.name, reason=f"needs tools that are not available: {missing}"
                    )
                )
                continue
        why = ", ".join(
            [
                *(f"trigger {t!r}" for t in triggers),
                *(f"word {w!r}" for w in sorted(name_hits | text_hits)),
            ]
        )
        scored.append((score, why, row))
    scored.sort(key=lambda x: (-x[0], x[2].name))
    selected: list[SelectedSkill] = []
    used = 0
    for score, why, row in scored:
        tokens = math.ceil(len(row.body) / 4) + 10
        if len(selected) >= most:
            skipped.append(SkippedSkill(name=row.name, reason=f"only {most} skills per turn"))
        elif used + tokens > budget:
            skipped.append(SkippedSkill(name=row.name, reason="over the token budget"))
        else:
            used += tokens
            selected.append(
                SelectedSkill(
                    name=row.name,
                    version=row.version,
                    score=score,
                    why=why,
                    instructions=row.body,
                    tokens=tokens,
                )
            )
    return SelectResult(selected=selected, skipped=skipped)
