"""The skills slice: loading folders, the registry, reload on change, selection, uploads."""

from __future__ import annotations

import io
import time
import zipfile

from services.skills.tests.conftest import SkillsEnv, skill_md


def wait_for(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_shipped_skills_load(skills_env: SkillsEnv) -> None:
    listing = skills_env.client.get("/v1/skills").json()
    names = {s["name"] for s in listing["data"]}
    assert {"summarize-file", "review-diff", "explain-error"} <= names
    assert listing["errors"] == []
    review = skills_env.client.get("/v1/skills/review-diff").json()
    assert review["version"] == "1.1.0" and review["resources"] == ["checklist.md"]
    assert "Reviewing a diff" in review["instructions"] and len(review["checksum"]) == 64
    checklist = skills_env.client.get("/v1/skills/review-diff/resources/checklist.md")
    assert checklist.status_code == 200 and "Security checklist" in checklist.text
    assert skills_env.client.get("/v1/skills/review-diff/resources/SKILL.md").status_code == 200
    missing = skills_env.client.get("/v1/skills/review-diff/resources/../../../etc/passwd")
    assert missing.status_code in (404, 422)
    assert skills_env.client.get("/v1/skills/nope").status_code == 404


def test_changes_on_disk_are_picked_up_without_restart(skills_env: SkillsEnv) -> None:
    folder = skills_env.folder / "demo"
    folder.mkdir()
    (folder / "SKILL.md").write_text(skill_md(triggers='["demo please"]'))
    wait_for(lambda: skills_env.client.get("/v1/skills/demo-skill").status_code == 200)
    first = skills_env.client.get("/v1/skills/demo-skill").json()
    (folder / "SKILL.md").write_text(skill_md(version="1.1.0", body="Do it better."))
    wait_for(lambda: skills_env.client.get("/v1/skills/demo-skill").json()["version"] == "1.1.0")
    detail = skills_env.client.get("/v1/skills/demo-skill").json()
    assert detail["checksum"] != first["checksum"]
    assert [v["version"] for v in detail["versions"]] == ["1.1.0", "1.0.0"]
    # broken on disk: the last good version stays, the reason is reported
    (folder / "SKILL.md").write_text("---\nname: [unclosed\n---\nbody\n")
    wait_for(lambda: skills_env.client.get("/v1/skills").json()["errors"] != [])
    errors = skills_env.client.get("/v1/skills").json()["errors"]
    assert "not valid YAML" in errors[0]["reason"]
    assert skills_env.client.get("/v1/skills/demo-skill").json()["version"] == "1.1.0"
    # removed on disk: gone from the registry
    (folder / "SKILL.md").unlink()
    folder.rmdir()
    result = skills_env.client.post("/v1/skills/reload").json()
    assert "demo-skill" in result["removed"]


def test_selection_by_triggers_and_words_with_reasons(skills_env: SkillsEnv) -> None:
    c = skills_env.client
    picked = c.post(
        "/v1/skills/select",
        json={"text": "Could you do a code review of this diff?", "available_tools": ["read_file"]},
    ).json()
    assert picked["selected"][0]["name"] == "review-diff"
    assert "trigger 'code review'" in picked["selected"][0]["why"]
    # a skill whose tools are missing is not offered, and says why
    summary = c.post(
        "/v1/skills/select",
        json={"text": "Give me a summary of main.py", "available_tools": ["exec"]},
    ).json()
    assert "summarize-file" not in [s["name"] for s in summary["selected"]]
    skipped = {s["name"]: s["reason"] for s in summary["skipped"]}
    assert "read_file" in skipped["summarize-file"]
    # disabled for one session only
    c.patch("/v1/skills/review-diff", params={"session_id": "s1"}, json={"enabled": False})
    off = c.post("/v1/skills/select", json={"text": "code review please", "session_id": "s1"})
    on = c.post("/v1/skills/select", json={"text": "code review please", "session_id": "s2"})
    assert [s["name"] for s in off.json()["selected"]] == []
    assert "disabled for this session" in off.json()["skipped"][0]["reason"]
    assert [s["name"] for s in on.json()["selected"]] == ["review-diff"]
    # the token budget is respected
    tight = c.post("/v1/skills/select", json={"text": "code review", "token_budget": 10}).json()
    assert tight["selected"] == [] and tight["skipped"][0]["reason"] == "over the token budget"
    nothing = c.post("/v1/skills/select", json={"text": "hello there"}).json()
    assert nothing == {"selected": [], "skipped": []}
    # a single common word is chance, not relevance
    weather = c.post("/v1/skills/select", json={"text": "What is the weather in Paris?"}).json()
    assert weather["selected"] == []


def test_upload_installs_and_replaces(skills_env: SkillsEnv) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("my-skill/SKILL.md", skill_md("uploaded-skill", resources="[notes.txt]"))
        z.writestr("my-skill/notes.txt", "some notes")
    r = skills_env.client.post(
        "/v1/skills/upload", content=buf.getvalue(), headers={"Content-Type": "application/zip"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "uploaded-skill" and r.json()["files"] == ["SKILL.md", "notes.txt"]
    assert (skills_env.uploads / "uploaded-skill" / "notes.txt").read_text() == "some notes"
    buf2 = io.BytesIO()
    with zipfile.ZipFile(buf2, "w") as z:
        z.writestr("SKILL.md", skill_md("uploaded-skill", version="2.0.0"))
    r2 = skills_env.client.post("/v1/skills/upload", content=buf2.getvalue())
    assert r2.status_code == 201 and r2.json()["version"] == "2.0.0"
    assert r2.json()["files"] == ["SKILL.md"]
    clash = io.BytesIO()
    with zipfile.ZipFile(clash, "w") as z:
        z.writestr("SKILL.md", skill_md("review-diff"))
    r3 = skills_env.client.post("/v1/skills/upload", content=clash.getvalue())
    assert r3.status_code == 422 and "shipped or configured" in r3.json()["error"]["message"]
