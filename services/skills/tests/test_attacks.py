"""The attack corpus: hostile skills on disk and hostile uploads. Every one is refused
with a 4xx (or a recorded error) naming the reason, before any expensive work (a bound of
1 s here: an expansion or unpacking would take much longer; the bound is loose so a busy
machine cannot fail it), and the registry is unchanged."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from services.kit.testing import settings_for_tests
from services.skills.loader import SkillRejected, load_skill
from services.skills.tests.conftest import SkillsEnv, skill_md

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
)

REFUSED_WITHIN_S = 1.0


def front(yaml_text: str, body: str = "Instructions.") -> str:
    return f"---\n{yaml_text}\n---\n{body}\n"


GOOD = "name: evil-skill\ndescription: x\nversion: 1.0.0\n"

# (name, SKILL.md text, expected words in the reason)
DISK_CORPUS: list[tuple[str, str | bytes, str]] = [
    ("billion laughs", front(GOOD + BILLION_LAUGHS), "aliases"),
    ("deep nesting", front(GOOD + "x: " + "[" * 60 + "]" * 60), "nested"),
    ("python tag", front(GOOD + 'x: !!python/object/apply:os.system ["touch /tmp/pwned"]'), "tag"),
    (
        "python name tag",
        front("name: !!python/name:os.system\ndescription: x\nversion: 1.0.0"),
        "tag",
    ),
    ("custom tag", front(GOOD + "x: !include /etc/passwd"), "tag"),
    ("too many nodes", front(GOOD + "tags: [" + ",".join(["t"] * 2000) + "]"), "nodes"),
    ("oversized file", front(GOOD, "x" * 300_000), "bytes"),
    ("oversized front matter", front(GOOD + "description2: " + "y" * 20_000), "larger"),
    ("traversal resource", front(GOOD + 'resources: ["../../etc/passwd"]'), "inside"),
    ("absolute resource", front(GOOD + 'resources: ["/etc/passwd"]'), "inside"),
    ("home resource", front(GOOD + 'resources: ["~/.ssh/id_rsa"]'), "valid"),
    ("backslash resource", front(GOOD + 'resources: ["a\\\\..\\\\..\\\\x"]'), "valid"),
    ("missing resource", front(GOOD + 'resources: ["nope.md"]'), "does not exist"),
    ("no front matter", "Just text, no front matter\n", "start with"),
    ("unclosed front matter", "---\n" + GOOD + "body", "not closed"),
    ("missing name", front("description: x\nversion: 1.0.0"), "name"),
    ("bad name", front("name: ../evil\ndescription: x\nversion: 1.0.0"), "name"),
    ("wrong type", front("name: evil-skill\ndescription: x\nversion: [1]"), "version"),
    ("unknown field", front(GOOD + "run_on_load: rm -rf /"), "run_on_load"),
    ("not a mapping", front("- just\n- a list"), "mapping"),
    ("empty body", front(GOOD, ""), "no instructions"),
    ("bad tool name", front(GOOD + "requires: {tools: ['rm -rf']}"), "tool name"),
    ("not utf-8", b"---\nname: \xff\xfe\n---\nx\n", "UTF-8"),
    ("malformed yaml", front("name: [unclosed\ndescription: x"), "not valid YAML"),
]


def registry(env: SkillsEnv) -> dict[str, str]:
    return {s["name"]: s["checksum"] for s in env.client.get("/v1/skills").json()["data"]}


@pytest.mark.parametrize(
    ("label", "content", "reason"), DISK_CORPUS, ids=[c[0] for c in DISK_CORPUS]
)
def test_hostile_skill_on_disk(
    skills_env: SkillsEnv, label: str, content: str | bytes, reason: str
) -> None:
    before = registry(skills_env)
    folder = skills_env.folder / "evil"
    folder.mkdir()
    data = content.encode() if isinstance(content, str) else content
    (folder / "SKILL.md").write_bytes(data)
    settings = settings_for_tests(skills_env.folder.parent)
    started = time.perf_counter()
    with pytest.raises(SkillRejected) as info:
        load_skill(folder, settings.skills)
    took = time.perf_counter() - started
    assert reason.lower() in str(info.value).lower(), str(info.value)
    assert took < REFUSED_WITHIN_S, f"{label} took {took * 1000:.0f} ms"
    result = skills_env.client.post("/v1/skills/reload")
    assert result.status_code == 200
    errors = {e["source"]: e["reason"] for e in result.json()["errors"]}
    assert reason.lower() in errors[str(folder)].lower()
    assert registry(skills_env) == before
    assert not Path("/tmp/pwned").exists()


def test_symlinks_out_are_refused(skills_env: SkillsEnv, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    before = registry(skills_env)
    cases: list[tuple[str, Callable[[Path], None]]] = [
        ("resource links out", lambda f: (
            (f / "SKILL.md").write_text(front(GOOD + "resources: [leak.txt]")),
            os.symlink(secret, f / "leak.txt"),
        )),
        ("SKILL.md is a link", lambda f: os.symlink(secret, f / "SKILL.md")),
        ("a folder inside links out", lambda f: (
            (f / "SKILL.md").write_text(front(GOOD)),
            os.symlink(tmp_path, f / "up"),
        )),
    ]  # fmt: skip
    for i, (_label, build) in enumerate(cases):
        folder = skills_env.folder / f"link{i}"
        folder.mkdir()
        build(folder)
        with pytest.raises(SkillRejected, match="symbolic link"):
            load_skill(folder, settings_for_tests(tmp_path).skills)
    os.symlink(tmp_path, skills_env.folder / "whole-skill-link")
    errors = skills_env.client.post("/v1/skills/reload").json()["errors"]
    assert len(errors) == len(cases) + 1
    assert all("link" in e["reason"] for e in errors)
    assert registry(skills_env) == before


def _zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return buf.getvalue()


def _tar(build: Callable[[tarfile.TarFile], None], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:  # type: ignore[call-overload]
        build(t)
    return buf.getvalue()


def _add(t: tarfile.TarFile, name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE,
         link: str = "") -> None:  # fmt: skip
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


OK_MD = skill_md("upload-evil").encode()
ZEROS = b"\0" * (30 << 20)  # 30 MiB, compresses to a few dozen KiB

UPLOAD_CORPUS: list[tuple[str, bytes, str]] = [
    ("zip slip", _zip({"SKILL.md": OK_MD, "../../evil.txt": b"pwned"}), ".."),
    ("zip absolute", _zip({"SKILL.md": OK_MD, "/tmp/evil.txt": b"pwned"}), "absolute"),
    ("zip symlink", _zip({"SKILL.md": OK_MD}, {"leak": "/etc/passwd"}), "symbolic link"),
    ("zip bomb", _zip({"SKILL.md": OK_MD, "bomb.bin": ZEROS}), "unpacks to more than"),
    ("zip too many", _zip({"SKILL.md": OK_MD, **{f"f{i}": b"x" for i in range(300)}}), "entries"),
    ("zip duplicate", b"", "twice"),  # built below (zipfile warns on duplicates)
    ("zip backslash", _zip({"SKILL.md": OK_MD, "..\\..\\evil": b"x"}), "backslash"),
    ("zip no skill", _zip({"README.md": b"hello"}), "no SKILL.md"),
    ("zip bad skill", _zip({"SKILL.md": front(GOOD + BILLION_LAUGHS).encode()}), "aliases"),
    ("tar slip", _tar(lambda t: (_add(t, "SKILL.md", OK_MD), _add(t, "../evil", b"x"))), ".."),
    ("tar symlink", _tar(lambda t: (_add(t, "SKILL.md", OK_MD),
                                    _add(t, "leak", kind=tarfile.SYMTYPE, link="/etc/passwd"))),
     "link"),
    ("tar hardlink", _tar(lambda t: (_add(t, "SKILL.md", OK_MD),
                                     _add(t, "hard", kind=tarfile.LNKTYPE, link="/etc/passwd"))),
     "link"),
    ("tar device", _tar(lambda t: (_add(t, "SKILL.md", OK_MD),
                                   _add(t, "dev", kind=tarfile.CHRTYPE))), "regular file"),
    ("tar fifo", _tar(lambda t: (_add(t, "SKILL.md", OK_MD),
                                 _add(t, "fifo", kind=tarfile.FIFOTYPE))), "regular file"),
    ("tar bomb", _tar(lambda t: (_add(t, "SKILL.md", OK_MD), _add(t, "bomb", ZEROS)), "w:xz"),
     "unpacks to more than"),
    ("tar absolute", _tar(lambda t: _add(t, "/etc/cron.d/evil", b"x")), "absolute"),
    ("garbage", os.urandom(2048), "not a valid"),
    ("empty", b"", "request body"),
]  # fmt: skip


def _duplicate_zip() -> bytes:
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as z:
        warnings.simplefilter("ignore")
        z.writestr("SKILL.md", OK_MD)
        z.writestr("SKILL.md", OK_MD)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("label", "data", "reason"), UPLOAD_CORPUS, ids=[c[0] for c in UPLOAD_CORPUS]
)
def test_hostile_upload(skills_env: SkillsEnv, label: str, data: bytes, reason: str) -> None:
    if label == "zip duplicate":
        data = _duplicate_zip()
    before = registry(skills_env)
    started = time.perf_counter()
    r = skills_env.client.post("/v1/skills/upload", content=data)
    took = time.perf_counter() - started
    assert 400 <= r.status_code < 500, (label, r.status_code, r.text)
    assert reason.lower() in r.json()["error"]["message"].lower(), r.text
    assert took < REFUSED_WITHIN_S, f"{label} took {took * 1000:.0f} ms"
    assert registry(skills_env) == before
    leftovers = [p for p in skills_env.uploads.rglob("*") if ".staging" not in p.parts]
    assert leftovers == [] or all(p.name == ".staging" for p in leftovers)
    assert not Path("/tmp/evil.txt").exists()


def test_a_bomb_whose_headers_lie_stops_at_the_byte_limit(
    skills_env: SkillsEnv, tmp_path: Path
) -> None:
    """Headers can understate sizes: the bytes actually written are counted too."""
    from services.skills.archive import unpack

    data = _zip({"SKILL.md": OK_MD, "bomb.bin": b"\0" * (3 << 20)})
    # rewrite the declared size of bomb.bin in both headers to 10 bytes
    real = (3 << 20).to_bytes(4, "little")
    forged = data.replace(real, (10).to_bytes(4, "little"))
    settings = settings_for_tests(tmp_path, skills={"max_unpacked_bytes": 1 << 20}).skills
    with pytest.raises(SkillRejected, match=r"more than|Bad CRC|damaged|size"):
        unpack(forged, tmp_path / "staging", settings)


def test_oversized_archive_is_413(skills_env: SkillsEnv) -> None:
    r = skills_env.client.post("/v1/skills/upload", content=os.urandom(6 << 20))
    assert r.status_code == 413
