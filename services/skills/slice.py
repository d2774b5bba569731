"""The skills slice: standard endpoints only, no domain routes yet (issue #6 builds it)."""

from __future__ import annotations

from services.kit.slice_base import AtomicSlice


class SkillsSlice(AtomicSlice):
    name = "skills"


def create_slice() -> SkillsSlice:
    return SkillsSlice()
