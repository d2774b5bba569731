"""The skills slice's settings: ``skills:`` in the config, ``REFACTORBOT_SKILLS__*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.kit.config import ServiceSettings


class SkillsSettings(ServiceSettings):
    folders: list[Path] = Field(
        default_factory=list,
        description="Skill folders to load; default: the shipped skills/ and data_dir/skills",
    )
    max_skill_md_bytes: int = Field(256 * 1024, gt=0, description="Largest SKILL.md")
    max_front_matter_bytes: int = Field(16 * 1024, gt=0, description="Largest front matter")
    max_yaml_depth: int = Field(10, gt=0, description="Deepest nesting in front matter")
    max_yaml_nodes: int = Field(1_000, gt=0, description="Most YAML nodes in front matter")
    max_files_per_skill: int = Field(100, gt=0, description="Most files in one skill")
    max_skill_bytes: int = Field(5 << 20, gt=0, description="Most bytes in one skill")
    max_archive_bytes: int = Field(5 << 20, gt=0, description="Largest upload")
    max_archive_members: int = Field(200, gt=0, description="Most entries in an upload")
    max_unpacked_bytes: int = Field(20 << 20, gt=0, description="Most bytes an upload unpacks")
    watch_every_s: float = Field(
        2.0, ge=0, description="Look for changed skill files this often (0: only on reload)"
    )
    select_token_budget: int = Field(
        1_500, ge=0, description="Skill instructions added to a turn, in estimated tokens"
    )
    max_selected: int = Field(3, ge=0, description="Most skills offered to one turn")


#: The section this service adds to the fleet's Settings (found by the kit).
SETTINGS_MODEL = SkillsSettings
