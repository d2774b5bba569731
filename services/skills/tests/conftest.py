from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.skills.slice import create_slice

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class SkillsEnv:
    client: httpx.Client
    folder: Path  # a configured skills folder the test may write to
    uploads: Path


@pytest.fixture
def skills_env(tmp_path: Path) -> Iterator[SkillsEnv]:
    folder = tmp_path / "skills"
    folder.mkdir()
    uploads = tmp_path / "data" / "skills"
    settings = settings_for_tests(
        tmp_path,
        skills={"folders": [str(ROOT / "skills"), str(folder), str(uploads)], "watch_every_s": 0.2},
    )
    with (
        serve_app(create_app(create_slice(), settings)) as url,
        httpx.Client(base_url=url, headers={"X-Internal-Token": TEST_TOKEN}, timeout=10) as c,
    ):
        yield SkillsEnv(c, folder, uploads)


def skill_md(name: str = "demo-skill", body: str = "Do the thing well.", **front: str) -> str:
    fields = {
        "name": name,
        "description": "A demo skill",
        "version": "1.0.0",
        **front,
    }
    lines = "\n".join(f"{k}: {v}" for k, v in fields.items())
    return f"---\n{lines}\n---\n{body}\n"
