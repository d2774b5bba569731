"""Reading one skill folder, treating every byte as hostile.

A skill is a folder with a ``SKILL.md``: YAML front matter between ``---`` lines, then
Markdown instructions, plus optional resource files. Loading checks, in order: the folder
and ``SKILL.md`` are real (no symbolic links), sizes and file counts are within limits,
the front matter is safe YAML (no aliases, no custom tags, bounded depth and nodes) and
matches the schema, and every resource it names resolves inside the folder. Any failure
is a :class:`SkillRejected` with the reason; nothing is half-loaded.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.kit.safe_yaml import UnsafeYamlError, load_yaml_text
from services.skills.config import SkillsSettings

SKILL_FILE = "SKILL.md"
NAME = r"^[a-z][a-z0-9-]{1,63}$"
TOOL = r"^[a-z][a-z0-9_]{0,63}$"


class SkillRejected(ValueError):
    """A skill that cannot be loaded, and why."""


class Requires(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tools: list[str] = Field(default_factory=list, max_length=32)
    settings: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("tools")
    @classmethod
    def _tools(cls, tools: list[str]) -> list[str]:
        import re

        for t in tools:
            if not re.match(TOOL, t):
                raise ValueError(f"tool name {t!r} is not valid")
        return tools


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME, description="lowercase letters, digits and -")
    description: str = Field(min_length=1, max_length=500)
    version: str = Field(pattern=r"^\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?$")
    tags: list[str] = Field(default_factory=list, max_length=20)
    triggers: list[str] = Field(default_factory=list, max_length=50)
    requires: Requires = Field(default_factory=Requires)
    resources: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("tags", "triggers")
    @classmethod
    def _short_strings(cls, values: list[str]) -> list[str]:
        for v in values:
            if not isinstance(v, str) or not 1 <= len(v) <= 100:
                raise ValueError("each entry must be text of 1 to 100 characters")
        return values


@dataclass(frozen=True)
class LoadedSkill:
    meta: FrontMatter
    body: str
    path: Path
    checksum: str
    files: list[str]


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
    )


def split_front_matter(text: str, limit: int) -> tuple[str, str]:
    """The front matter and the body of a SKILL.md."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise SkillRejected("SKILL.md must start with a '---' line opening the front matter")
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            front = "\n".join(lines[1:i])
            if len(front.encode()) > limit:
                raise SkillRejected(f"the front matter is larger than {limit} bytes")
            return front, "\n".join(lines[i + 1 :]).strip()
    raise SkillRejected("the front matter is not closed by a '---' line")


def _walk_files(folder: Path, settings: SkillsSettings) -> list[str]:
    """Every file of the skill (relative paths), refusing links and anything not regular,
    and enforcing the file count and total size."""
    files: list[str] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            mode = os.lstat(full).st_mode
            rel = full.relative_to(folder).as_posix()
            if stat.S_ISLNK(mode):
                raise SkillRejected(f"{rel!r} is a symbolic link; skills may not contain links")
            if name in filenames:
                if not stat.S_ISREG(mode):
                    raise SkillRejected(f"{rel!r} is not a regular file")
                files.append(rel)
                total += os.lstat(full).st_size
        if len(files) > settings.max_files_per_skill:
            raise SkillRejected(f"more than {settings.max_files_per_skill} files")
        if total > settings.max_skill_bytes:
            raise SkillRejected(f"larger than {settings.max_skill_bytes} bytes")
    return sorted(files)


def resource_path(folder: Path, name: str) -> Path:
    """A resource's real path: resolved, then checked to be inside the skill's folder."""
    if not name or "\x00" in name or "\\" in name or name.startswith("~"):
        raise SkillRejected(f"resource {name!r} is not a valid relative path")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise SkillRejected(f"resource {name!r} must stay inside the skill's folder")
    root = folder.resolve()
    real = (root / pure).resolve()
    if not real.is_relative_to(root) or real == root:
        raise SkillRejected(f"resource {name!r} resolves outside the skill's folder")
    if (root / pure).is_symlink():
        raise SkillRejected(f"resource {name!r} is a symbolic link")
    if not real.is_file():
        raise SkillRejected(f"resource {name!r} does not exist")
    return real


def load_skill(folder: Path, settings: SkillsSettings) -> LoadedSkill:
    """Read, check and parse one skill folder."""
    if folder.is_symlink() or not folder.is_dir():
        raise SkillRejected("the skill is not a folder (symbolic links are refused)")
    files = _walk_files(folder, settings)
    skill_md = folder / SKILL_FILE
    if SKILL_FILE not in files:
        raise SkillRejected(f"no {SKILL_FILE} in the folder")
    size = skill_md.stat().st_size
    if size > settings.max_skill_md_bytes:
        raise SkillRejected(f"{SKILL_FILE} is {size} bytes, over {settings.max_skill_md_bytes}")
    try:
        text = skill_md.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise SkillRejected(f"{SKILL_FILE} is not UTF-8 text") from None
    front, body = split_front_matter(text, settings.max_front_matter_bytes)
    try:
        data: Any = load_yaml_text(
            front,
            source="front matter",
            max_bytes=settings.max_front_matter_bytes,
            max_depth=settings.max_yaml_depth,
            max_nodes=settings.max_yaml_nodes,
        )
    except UnsafeYamlError as exc:
        raise SkillRejected(str(exc)) from None
    if not isinstance(data, dict):
        raise SkillRejected("the front matter must be a mapping of fields")
    try:
        meta = FrontMatter.model_validate(data)
    except ValidationError as exc:
        raise SkillRejected(f"front matter: {_describe(exc)}") from None
    if not body:
        raise SkillRejected("the skill has no instructions after the front matter")
    for name in meta.resources:
        resource_path(folder, name)
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode() + b"\0" + (folder / rel).read_bytes() + b"\0")
    return LoadedSkill(meta, body, folder, digest.hexdigest(), files)
