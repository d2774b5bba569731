"""Unpacking an uploaded skill (zip or tar, optionally gzip/bz2/xz) without trusting it.

Refused: absolute names, ``..`` components, backslashes, NUL bytes, symbolic and hard
links, devices and FIFOs, duplicate names, more than ``max_archive_members`` entries, and
more than ``max_unpacked_bytes`` written. Sizes are counted as bytes are actually
written, not taken from headers, so a zip bomb stops at the limit. The result is a folder
holding the skill (``SKILL.md`` at the top, or in the archive's single top-level folder).
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from services.skills.config import SkillsSettings
from services.skills.loader import SKILL_FILE, SkillRejected

CHUNK = 64 * 1024


def _safe_name(raw: str) -> PurePosixPath | None:
    """The member's path, or None for a directory-only entry; refuses anything unsafe."""
    if "\x00" in raw or "\\" in raw:
        raise SkillRejected(f"archive member {raw!r} has a NUL byte or a backslash")
    name = PurePosixPath(raw)
    if name.is_absolute() or raw.startswith("/"):
        raise SkillRejected(f"archive member {raw!r} has an absolute path")
    parts = [p for p in name.parts if p not in ("", ".")]
    if ".." in parts:
        raise SkillRejected(f"archive member {raw!r} points outside the archive ('..')")
    return PurePosixPath(*parts) if parts else None


class _Budget:
    def __init__(self, settings: SkillsSettings) -> None:
        self.left = settings.max_unpacked_bytes
        self.limit = settings.max_unpacked_bytes

    def copy(self, src: IO[bytes], dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "xb") as out:  # never overwrites: duplicates were refused earlier
            while chunk := src.read(CHUNK):
                self.left -= len(chunk)
                if self.left < 0:
                    raise SkillRejected(f"the archive unpacks to more than {self.limit} bytes")
                out.write(chunk)


def _zip_members(data: bytes, target: Path, settings: SkillsSettings) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise SkillRejected(f"not a valid zip archive: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > settings.max_archive_members:
            raise SkillRejected(f"more than {settings.max_archive_members} archive entries")
        declared = sum(i.file_size for i in infos)
        if declared > settings.max_unpacked_bytes:  # headers can lie: bytes are counted too
            raise SkillRejected(
                f"the archive unpacks to more than {settings.max_unpacked_bytes} bytes"
            )
        seen: set[PurePosixPath] = set()
        budget = _Budget(settings)
        for info in infos:
            name = _safe_name(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise SkillRejected(f"archive member {info.filename!r} is a symbolic link")
            if name is None or info.is_dir():
                continue
            if name in seen:
                raise SkillRejected(f"archive member {info.filename!r} appears twice")
            seen.add(name)
            try:
                with archive.open(info) as src:
                    budget.copy(src, target / name)
            except (zipfile.BadZipFile, NotImplementedError, OSError) as exc:
                if isinstance(exc, SkillRejected):
                    raise
                raise SkillRejected(f"archive member {info.filename!r}: {exc}") from None


def _tar_members(data: bytes, target: Path, settings: SkillsSettings) -> None:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SkillRejected(f"not a valid zip or tar archive: {exc}") from None
    with archive:
        seen: set[PurePosixPath] = set()
        budget = _Budget(settings)
        count = 0
        try:
            for member in archive:  # streamed: a huge member list stops at the limit
                count += 1
                if count > settings.max_archive_members:
                    raise SkillRejected(f"more than {settings.max_archive_members} archive entries")
                name = _safe_name(member.name)
                if member.issym() or member.islnk():
                    raise SkillRejected(f"archive member {member.name!r} is a link")
                if member.isdir() or name is None:
                    continue
                if not member.isfile():
                    raise SkillRejected(f"archive member {member.name!r} is not a regular file")
                if member.size > budget.left:  # refused on the header, before any byte
                    raise SkillRejected(
                        f"the archive unpacks to more than {settings.max_unpacked_bytes} bytes"
                    )
                if name in seen:
                    raise SkillRejected(f"archive member {member.name!r} appears twice")
                seen.add(name)
                src = archive.extractfile(member)
                if src is None:
                    raise SkillRejected(f"archive member {member.name!r} cannot be read")
                with src:
                    budget.copy(src, target / name)
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, SkillRejected):
                raise
            raise SkillRejected(f"the tar archive is damaged: {exc}") from None


def unpack(data: bytes, staging: Path, settings: SkillsSettings) -> tuple[Path, Path]:
    """Unpack ``data`` into a new folder under ``staging``. Returns the folder holding
    SKILL.md and the folder to remove afterwards."""
    if len(data) > settings.max_archive_bytes:
        raise SkillRejected(f"the archive is larger than {settings.max_archive_bytes} bytes")
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / f"upload-{os.getpid()}-{os.urandom(6).hex()}"
    target.mkdir()
    try:
        if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
            _zip_members(data, target, settings)
        else:
            _tar_members(data, target, settings)
        if (target / SKILL_FILE).is_file():
            return target, target
        tops = list(target.iterdir())
        if len(tops) == 1 and tops[0].is_dir() and (tops[0] / SKILL_FILE).is_file():
            return tops[0], target
        raise SkillRejected(f"no {SKILL_FILE} at the top of the archive or its single folder")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
