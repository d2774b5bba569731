"""Two replicas of the skills slice sharing one database but not a disk: an upload made
through one is listed, selected and readable through the other, and survives the other's
reloads (which once deleted registry rows of skills missing from its own disk)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.skills.slice import create_slice
from services.skills.tests.conftest import skill_md

pytestmark = pytest.mark.integration  # every test here starts servers or processes

AUTH = {"X-Internal-Token": TEST_TOKEN}


def archive(version: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            "shared/SKILL.md",
            skill_md("shared-upload", version=version, resources="[notes.txt]",
                     triggers='["shared upload please"]'),
        )  # fmt: skip
        z.writestr("shared/notes.txt", f"notes {version}")
    return buf.getvalue()


@pytest.mark.integration
def test_an_upload_through_one_replica_is_everyones(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'skills.db'}"

    def replica(name: str) -> FastAPI:  # its own data_dir (disk), the shared database
        settings = settings_for_tests(
            tmp_path / name,
            skills={"database_url": db, "watch_every_s": 0.2},
            replicas={"registry_recheck_s": 0},
        )
        return create_app(create_slice(), settings)

    with serve_app(replica("a")) as a, serve_app(replica("b")) as b:
        r = httpx.post(f"{a}/v1/skills/upload", content=archive("1.0.0"), headers=AUTH)
        assert r.status_code == 201, r.text
        listed = httpx.get(f"{b}/v1/skills", headers=AUTH).json()["data"]
        assert "shared-upload" in {s["name"] for s in listed}
        picked = httpx.post(
            f"{b}/v1/skills/select", json={"text": "shared upload please"}, headers=AUTH
        ).json()
        assert [s["name"] for s in picked["selected"]] == ["shared-upload"]
        notes = httpx.get(f"{b}/v1/skills/shared-upload/resources/notes.txt", headers=AUTH)
        assert notes.status_code == 200 and notes.text == "notes 1.0.0"  # unpacked on b
        assert (tmp_path / "b" / "data" / "skills" / "shared-upload" / "notes.txt").exists()
        reloaded = httpx.post(f"{b}/v1/skills/reload", headers=AUTH).json()
        assert reloaded["removed"] == []
        # a new version through b reaches a
        r = httpx.post(f"{b}/v1/skills/upload", content=archive("2.0.0"), headers=AUTH)
        assert r.status_code == 201 and r.json()["version"] == "2.0.0"
        notes = httpx.get(f"{a}/v1/skills/shared-upload/resources/notes.txt", headers=AUTH)
        assert notes.text == "notes 2.0.0"
        assert httpx.post(f"{a}/v1/skills/reload", headers=AUTH).json()["removed"] == []
    # a third replica with an empty disk starts, reloads, and keeps it too
    with serve_app(replica("c")) as c:
        httpx.post(f"{c}/v1/skills/reload", headers=AUTH)
        detail = httpx.get(f"{c}/v1/skills/shared-upload", headers=AUTH).json()
        assert detail["version"] == "2.0.0"
        notes = httpx.get(f"{c}/v1/skills/shared-upload/resources/notes.txt", headers=AUTH)
        assert notes.text == "notes 2.0.0"
