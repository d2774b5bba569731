"""Running allowed programs for the exec tool: no shell, a scrubbed environment, a time
limit, capped output, and the whole process group killed when time is up.

Two modes, reported in the tools slice's ``/status``:

- ``bubblewrap``: the program runs under ``bwrap`` with every namespace unshared (no
  network), ``/usr`` read-only, a private ``/tmp``, and only the workspace mounted
  writable, at ``/workspace``. Nothing outside the workspace can be read or written.
- ``none``: the program runs directly, in the workspace folder. This is *not* a sandbox:
  a program given an absolute path can reach it. As a guard (not a boundary), arguments
  that are absolute paths outside the workspace, contain ``..`` or start with ``~`` are
  refused. Install bubblewrap (``apt-get install bubblewrap``) for real confinement.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import structlog

from services.tools.workspace import PathRefused, ToolFailure

log = structlog.get_logger("tools.sandbox")
Mode = Literal["bubblewrap", "none"]
SANDBOX_ROOT = "/workspace"


class NotAllowed(ToolFailure):
    status, code = 403, "not_allowed"


def _bwrap_prefix(bwrap: str, workspace: Path, env: dict[str, str]) -> list[str]:
    argv = [
        bwrap,
        "--die-with-parent",
        "--new-session",
        "--unshare-all",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for link, target in (("/bin", "usr/bin"), ("/lib", "usr/lib"), ("/lib64", "usr/lib64")):
        if os.path.islink(link):
            argv += ["--symlink", target, link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    argv += ["--ro-bind-try", "/etc/alternatives", "/etc/alternatives"]
    argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # noqa: S108 - private
    argv += ["--bind", str(workspace), SANDBOX_ROOT, "--chdir", SANDBOX_ROOT, "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return [*argv, "--"]


def bubblewrap_works(bwrap: str | None) -> bool:
    """Whether bwrap can create its namespaces here (containers often forbid it)."""
    if bwrap is None:
        return False
    try:
        with tempfile.TemporaryDirectory(prefix="rb-bwrap-probe-") as probe:
            done = subprocess.run(  # noqa: S603 - fixed argv, no caller input
                [*_bwrap_prefix(bwrap, Path(probe), {"PATH": "/usr/bin:/bin"}), "/usr/bin/true"],
                capture_output=True,
                timeout=10,
                check=False,
            )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if done.returncode != 0:
        log.warning("bubblewrap_unusable", stderr=done.stderr.decode(errors="replace")[:300])
    return done.returncode == 0


class Runner:
    def __init__(self, *, allow: list[str], path: str, sandbox: str) -> None:
        self.programs: dict[str, str] = {}
        for name in allow:
            if "/" in name:
                raise ValueError(f"tools.exec_allow: {name!r} must be a program name, not a path")
            found = shutil.which(name, path=path)
            if found is None:
                log.warning("exec_program_missing", program=name, path=path)
                continue
            self.programs[name] = os.path.realpath(found)
        bwrap = shutil.which("bwrap")
        if sandbox == "bubblewrap" and not bubblewrap_works(bwrap):
            raise RuntimeError("tools.sandbox is bubblewrap, but bwrap is missing or cannot run")
        self.mode: Mode = "bubblewrap" if sandbox != "none" and bubblewrap_works(bwrap) else "none"
        self.bwrap = bwrap

    def _guard_plain(self, args: list[str], workspace: Path) -> None:
        for arg in args:
            if arg.startswith("~"):
                raise PathRefused(f"argument {arg!r} starts with ~")
            value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
            p = PurePosixPath(value)
            if ".." in p.parts:
                raise PathRefused(f"argument {arg!r} contains '..'")
            if p.is_absolute() and not (
                p == PurePosixPath(workspace) or PurePosixPath(workspace) in p.parents
            ):
                raise PathRefused(f"argument {arg!r} is an absolute path outside the workspace")

    async def run(
        self, argv: list[str], *, workspace: Path, timeout_s: float, output_cap: int
    ) -> dict[str, Any]:
        program, args = argv[0], argv[1:]
        if any("\x00" in a for a in argv):
            raise PathRefused("an argument contains a NUL byte")
        real = self.programs.get(program)
        if real is None:
            allowed = ", ".join(sorted(self.programs)) or "none"
            raise NotAllowed(f"program {program!r} is not allowed (allowed: {allowed})")
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        if self.mode == "bubblewrap":
            assert self.bwrap is not None
            full = [*_bwrap_prefix(self.bwrap, workspace, {**env, "HOME": SANDBOX_ROOT}), real]
        else:
            self._guard_plain(args, workspace)
            env["HOME"] = str(workspace)
            full = [real]
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *full,
            *args,
            cwd=workspace,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, killed whole on timeout
        )
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _Capped(output_cap), _Capped(output_cap)
        timed_out = False
        try:
            await asyncio.wait_for(
                asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr), proc.wait()),
                timeout=timeout_s,
            )
        except TimeoutError:
            timed_out = True
        finally:
            if proc.returncode is None or timed_out:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        return {
            "exit_code": None if timed_out else proc.returncode,
            "timed_out": timed_out,
            "stdout": out.text(),
            "stderr": err.text(),
            "truncated": out.dropped > 0 or err.dropped > 0,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "sandbox": self.mode,
        }


class _Capped:
    """Keeps the first ``cap`` bytes of a stream, counts (and drops) the rest."""

    def __init__(self, cap: int) -> None:
        self.cap, self.buf, self.dropped = cap, bytearray(), 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while piece := await stream.read(65536):
            room = self.cap - len(self.buf)
            self.buf += piece[:room] if room > 0 else b""
            self.dropped += max(0, len(piece) - max(room, 0))

    def text(self) -> str:
        text = self.buf.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[... output truncated: {self.dropped} more bytes]"
        return text
