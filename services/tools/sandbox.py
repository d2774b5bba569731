"""Running allowed programs for the exec tool: no shell, a scrubbed environment, a time
limit, resource limits, capped output, and the whole process group killed when time is up.

Two modes, reported in the tools slice's ``/status``:

- ``bubblewrap``: the program runs under ``bwrap`` with every namespace unshared (no
  network, its own PID namespace), ``/usr`` read-only, a private ``/tmp``, and only the
  workspace mounted writable, at ``/workspace``. Nothing outside the workspace can be read
  or written.
- ``none``: no sandbox. exec is then **unavailable** unless ``tools.exec_unsandboxed`` is
  set (and every start logs a warning when it is). Even then the arguments are not trusted:
  each program needs an argument policy (:mod:`services.tools.exec_policy`), every path is
  checked with the workspace's no-link walk, and the program runs as an unprivileged user
  (``tools.exec_user``) when the service is root, in the workspace, with limits on CPU
  time, memory, file size, processes and open files.

``REFACTORBOT_EXEC_NO_BWRAP=1`` makes the slice behave as if bubblewrap were not installed
(CI runs the suite once that way, so the guard mode is always tested).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import pwd
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import structlog

from services.tools.config import ToolsSettings
from services.tools.exec_policy import POLICIES, check_arguments
from services.tools.workspace import PathRefused, TooLarge, ToolFailure, Workspace

log = structlog.get_logger("tools.sandbox")
Mode = Literal["bubblewrap", "none"]
SANDBOX_ROOT = "/workspace"
KILL_GRACE_S = 5.0  # after the kill, how long the output pipes may take to reach EOF


NO_BWRAP_ENV = "REFACTORBOT_EXEC_NO_BWRAP"


class NotAllowed(ToolFailure):
    status, code = 403, "not_allowed"


class ExecUnavailable(ToolFailure):
    status, code = 403, "exec_unavailable"


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
    def __init__(self, settings: ToolsSettings) -> None:
        self.settings = settings
        self.programs: dict[str, str] = {}
        for name in settings.exec_allow:
            if "/" in name:
                raise ValueError(f"tools.exec_allow: {name!r} must be a program name, not a path")
            found = shutil.which(name, path=settings.exec_path)
            if found is None:
                log.warning("exec_program_missing", program=name, path=settings.exec_path)
                continue
            self.programs[name] = os.path.realpath(found)
        hidden = os.environ.get(NO_BWRAP_ENV, "") not in ("", "0")
        bwrap = None if hidden else shutil.which("bwrap")
        works = bubblewrap_works(bwrap) if settings.sandbox != "none" else False
        if settings.sandbox == "bubblewrap" and not works:
            raise RuntimeError("tools.sandbox is bubblewrap, but bwrap is missing or cannot run")
        self.mode: Mode = "bubblewrap" if works else "none"
        self.bwrap = bwrap
        unsandboxed = self.mode == "none" and settings.exec_unsandboxed
        self.user = self._unprivileged_user() if unsandboxed else None
        self.unavailable_reason: str | None = None
        if self.mode == "none" and not settings.exec_unsandboxed:
            why = "bubblewrap is not installed" if bwrap is None else "bubblewrap cannot run here"
            if settings.sandbox == "none":
                why = "tools.sandbox is none"
            self.unavailable_reason = (
                f"exec is unavailable: no sandbox ({why}). Install bubblewrap "
                "(apt-get install bubblewrap), or set tools.exec_unsandboxed: true to run "
                "allow-listed programs under argument policies only"
            )
        elif self.mode == "none":
            # a fresh logger: this is said at every start, to wherever logs go now
            structlog.get_logger("tools.sandbox").warning(
                "exec_unsandboxed",
                message="exec runs WITHOUT a sandbox (tools.exec_unsandboxed is on): only "
                "argument policies, an unprivileged user and resource limits stand between "
                "the model and this machine",
                user=self.user[0] if self.user else None,
                programs_without_policy=sorted(set(self.programs) - set(POLICIES)),
            )

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    def usable_programs(self) -> list[str]:
        """The allowed programs exec will run in this mode."""
        if self.mode == "none":
            return sorted(p for p in self.programs if p in POLICIES)
        return sorted(self.programs)

    def _unprivileged_user(self) -> tuple[str, int, int] | None:
        """Whom programs run as: ``tools.exec_user`` when the service is root, else the
        service's own user (which cannot switch)."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(self.settings.exec_user)
        except KeyError:
            raise RuntimeError(
                f"tools.exec_user {self.settings.exec_user!r} does not exist; exec will not "
                "run programs as root"
            ) from None
        if entry.pw_uid == 0:
            raise RuntimeError(f"tools.exec_user {self.settings.exec_user!r} is root")
        return entry.pw_name, entry.pw_uid, entry.pw_gid

    def _limits(self) -> list[tuple[int, int]]:
        s = self.settings
        wanted = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_CPU, s.exec_cpu_s),
            (resource.RLIMIT_AS, s.exec_memory_mb << 20),
            (resource.RLIMIT_FSIZE, s.exec_file_mb << 20),
            (resource.RLIMIT_NOFILE, s.exec_open_files),
        ]
        if self.mode == "none":
            # counts every process of the user: a program cannot fork a crowd
            wanted.append((resource.RLIMIT_NPROC, s.exec_processes))
        out = []
        for which, value in wanted:
            _, hard = resource.getrlimit(which)
            out.append((which, value if hard == resource.RLIM_INFINITY else min(value, hard)))
        return out

    def check(self, argv: list[str], workspace: Workspace) -> tuple[str, list[str]]:
        """The program's real path and the arguments to run it with, or a 4xx refusal."""
        if self.unavailable_reason is not None:
            raise ExecUnavailable(self.unavailable_reason)
        program, args = argv[0], argv[1:]
        if any("\x00" in a for a in argv):
            raise PathRefused("an argument contains a NUL byte")
        size = sum(len(a.encode("utf-8", errors="surrogatepass")) + 1 for a in argv)
        if size > self.settings.exec_max_argv_bytes:
            raise TooLarge(
                f"argv is {size} bytes; the limit is {self.settings.exec_max_argv_bytes} "
                "(tools.exec_max_argv_bytes)"
            )
        real = self.programs.get(program)
        if real is None:
            allowed = ", ".join(self.usable_programs()) or "none"
            raise NotAllowed(f"program {program!r} is not allowed (allowed: {allowed})")
        if self.mode == "bubblewrap":
            return real, [_in_sandbox(a, workspace.root) for a in args]
        policy = POLICIES.get(program)
        if policy is None:
            raise NotAllowed(
                f"program {program!r} has no argument policy, so it runs only under the "
                f"bubblewrap sandbox (allowed here: {', '.join(self.usable_programs())})"
            )
        return real, check_arguments(program, args, policy, workspace)

    async def run(
        self, argv: list[str], *, workspace: Workspace, timeout_s: float, output_cap: int
    ) -> dict[str, Any]:
        real, args = self.check(argv, workspace)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        extra: dict[str, Any] = {}
        if self.mode == "bubblewrap":
            assert self.bwrap is not None
            env_in = {**env, "HOME": SANDBOX_ROOT}
            full = [*_bwrap_prefix(self.bwrap, workspace.root, env_in), real]
        else:
            env["HOME"] = str(workspace.root)
            full = [real]
            if self.user is not None:
                # the process starts in the workspace (chdir happens before the switch), so
                # relative paths work even where the user could not walk the parents
                _, uid, gid = self.user
                extra = {"user": uid, "group": gid, "extra_groups": []}
        limits = self._limits()
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *full,
            *args,
            cwd=workspace.root,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, killed whole on timeout
            preexec_fn=functools.partial(_apply_limits, limits),
            **extra,
        )
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _Capped(output_cap), _Capped(output_cap)
        tasks = [
            asyncio.ensure_future(out.drain(proc.stdout)),
            asyncio.ensure_future(err.drain(proc.stderr)),
            asyncio.ensure_future(proc.wait()),
        ]
        timed_out = False
        try:
            # the drains are never cancelled mid-stream: a reader left with a full buffer
            # stops reading, the pipe never reaches EOF and wait() would never return
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            if pending:
                timed_out = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                # dead now: the drains reach EOF (the rest of the output is counted, dropped)
                _, pending = await asyncio.wait(pending, timeout=KILL_GRACE_S)
        finally:
            for task in tasks:
                task.cancel()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            if any(not t.done() or t.cancelled() for t in tasks[:2]):
                # something outside the group still holds a pipe: let go of it
                transport = getattr(proc, "_transport", None)
                if transport is not None:
                    transport.close()
            await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "exit_code": None if timed_out else proc.returncode,
            "timed_out": timed_out,
            "stdout": out.text(),
            "stderr": err.text(),
            "truncated": out.dropped > 0 or err.dropped > 0,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "sandbox": self.mode,
        }


def _in_sandbox(arg: str, root: Path) -> str:
    """An absolute path into the workspace names the same thing at /workspace inside."""
    prefix = str(root)
    if arg == prefix or arg.startswith(prefix + "/"):
        return SANDBOX_ROOT + arg[len(prefix) :]
    return arg


def _apply_limits(limits: list[tuple[int, int]]) -> None:
    """In the child, after the user switch and before exec: lower its limits."""
    for which, value in limits:
        resource.setrlimit(which, (value, value))


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
