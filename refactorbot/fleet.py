"""The fleet runner: starts every service as a local process, waits until each is ready,
restarts any that dies (with backoff), and stops them all cleanly.

Small on purpose: asyncio subprocesses, one watcher task per service, process groups so a
stop leaves no orphans.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from services.kit.config import Settings
from services.kit.manifest import SERVICE_NAMES

STABLE_AFTER_S = 30.0  # a process up this long gets its restart backoff reset
ADMIN_KEY_FILE = "admin_api_key"


class FleetError(RuntimeError):
    """A service would not start; the message names it and shows its log's tail."""


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    ready_url: str
    log_name: str


@dataclass
class _Child:
    spec: ProcessSpec
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


def default_specs(settings: Settings) -> list[ProcessSpec]:
    """The simulator (only without an OpenRouter key), then every service in start order."""
    specs = []
    if settings.openrouter.api_key is None:
        sim = settings.simulator
        specs.append(ProcessSpec(
            "openrouter_simulator", [sys.executable, "-m", "openrouter_gateway.simulator"],
            f"http://{sim.host}:{sim.port}/health", "openrouter_simulator.log"))
    for name in SERVICE_NAMES:
        specs.append(ProcessSpec(
            name, [sys.executable, "-m", "refactorbot", "serve", name],
            settings.service(name).base_url + "/ready", f"{name}.log"))
    return specs


def load_or_create_admin_key(data_dir: Path) -> str:
    """The admin key saved in ``data_dir``; made (mode 0600) on first use."""
    path = data_dir / ADMIN_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    key = "rb_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def fleet_env(settings: Settings) -> tuple[dict[str, str], str]:
    """Environment for every child (secrets, absolute folders) and the admin key."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    token = (settings.internal_token.get_secret_value() if settings.internal_token
             else secrets.token_urlsafe(32))
    admin = (settings.master_core.admin_api_key.get_secret_value()
             if settings.master_core.admin_api_key else load_or_create_admin_key(settings.data_dir))
    env = {
        "REFACTORBOT_INTERNAL_TOKEN": token,
        "REFACTORBOT_MASTER_CORE__ADMIN_API_KEY": admin,
        "REFACTORBOT_DATA_DIR": str(settings.data_dir),
        "REFACTORBOT_LOG_DIR": str(settings.log_dir),
        "PYTHONUNBUFFERED": "1",
    }
    return env, admin


class Fleet:
    def __init__(self, settings: Settings, specs: list[ProcessSpec] | None = None, *,
                 env: dict[str, str] | None = None, out: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.specs = specs if specs is not None else default_specs(settings)
        self.env = {**os.environ, **(env or {})}
        self.out = out
        self.children = {s.name: _Child(s, backoff=settings.fleet.restart_backoff_s)
                         for s in self.specs}
        self._stopping = False
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    # --- logging and state ---------------------------------------------------------------------
    def log(self, message: str) -> None:
        line = f"{datetime.now(UTC).isoformat(timespec='seconds')} {message}"
        self.out(line)
        with (self.settings.log_dir / "fleet.log").open("a") as f:
            f.write(line + "\n")

    @property
    def state_file(self) -> Path:
        return self.settings.data_dir / "fleet.json"

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "services": {
                name: {"pid": c.proc.pid if c.proc else None, "ready_url": c.spec.ready_url,
                       "restarts": c.restarts, "started_at": c.started_at}
                for name, c in self.children.items()
            },
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_file)

    def log_path(self, name: str) -> Path:
        return self.settings.log_dir / self.children[name].spec.log_name

    def _log_tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- processes -----------------------------------------------------------------------------
    async def _spawn(self, child: _Child) -> None:
        with self.log_path(child.spec.name).open("ab") as log:
            child.proc = await asyncio.create_subprocess_exec(
                *child.spec.argv, stdout=log, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL, env=self.env, start_new_session=True,
            )
        child.started_at = time.time()

    async def _wait_ready(self, child: _Child, session: aiohttp.ClientSession,
                          deadline: float) -> None:
        name = child.spec.name
        while True:
            assert child.proc is not None
            if child.proc.returncode is not None:
                raise FleetError(f"{name} exited with code {child.proc.returncode} during "
                                 f"start-up; its log ({self.log_path(name)}) ends with:\n"
                                 f"{self._log_tail(name)}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(child.spec.ready_url,
                                       timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise FleetError(f"{name} was not ready at {child.spec.ready_url} after "
                                 f"{self.settings.fleet.ready_timeout_s:.0f}s; its log "
                                 f"({self.log_path(name)}) ends with:\n{self._log_tail(name)}")
            await asyncio.sleep(0.15)

    async def start(self) -> None:
        """Start every process and wait until all are ready; on failure stop them all."""
        for child in self.children.values():
            await self._spawn(child)
        self._write_state()
        deadline = time.monotonic() + self.settings.fleet.ready_timeout_s
        try:
            async with aiohttp.ClientSession() as session:
                await asyncio.gather(*(self._wait_ready(c, session, deadline)
                                       for c in self.children.values()))
        except BaseException:
            await self.stop()
            raise
        for child in self.children.values():
            child.watcher = asyncio.create_task(self._watch(child))

    async def _watch(self, child: _Child) -> None:
        """Restart the process whenever it exits, with doubling backoff."""
        fleet = self.settings.fleet
        while True:
            assert child.proc is not None
            code = await child.proc.wait()
            if self._stopping:
                return
            if time.time() - child.started_at > STABLE_AFTER_S:
                child.backoff = fleet.restart_backoff_s
            self.log(f"{child.spec.name} exited with code {code}; restarting in "
                     f"{child.backoff:.1f}s (restart {child.restarts + 1}); "
                     f"log: {self.log_path(child.spec.name)}")
            await asyncio.sleep(child.backoff)
            if self._stopping:
                return
            child.backoff = min(child.backoff * 2, fleet.restart_backoff_max_s)
            child.restarts += 1
            await self._spawn(child)
            self._write_state()
            self.log(f"{child.spec.name} restarted (pid {child.proc.pid})")

    async def stop(self) -> None:
        """SIGTERM every process group in reverse start order, SIGKILL what is left."""
        self._stopping = True
        for child in self.children.values():
            if child.watcher is not None:
                child.watcher.cancel()
        running = [c for c in reversed(list(self.children.values()))
                   if c.proc is not None and c.proc.returncode is None]
        for child in running:
            assert child.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGTERM)

        async def reap(child: _Child) -> None:
            assert child.proc is not None
            try:
                await asyncio.wait_for(child.proc.wait(), self.settings.fleet.stop_timeout_s)
            except TimeoutError:
                self.log(f"{child.spec.name} did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                await child.proc.wait()

        await asyncio.gather(*(reap(c) for c in running))
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()


def banner(settings: Settings, fleet: Fleet, admin_key: str) -> str:
    width = max(len(n) for n in fleet.children) + 2
    lines = ["", "RefactorBot fleet is ready"]
    for name, child in fleet.children.items():
        url = child.spec.ready_url.rsplit("/", 1)[0]
        lines.append(f"  {name.ljust(width)} {url}")
    key_hint = (str(settings.data_dir / ADMIN_KEY_FILE) if settings.master_core.admin_api_key
                is None else "REFACTORBOT_MASTER_CORE__ADMIN_API_KEY")
    master = settings.master_core.base_url
    lines += [
        f"  {'data'.ljust(width)} {settings.data_dir}",
        f"  {'logs'.ljust(width)} {settings.log_dir}",
        f"  {'LLM mode'.ljust(width)} {settings.llm_mode}",
        f"  {'admin key'.ljust(width)} {key_hint}",
        "",
        "Try a chat turn:",
        f"  curl -s {master}/v1/chat -H \"Authorization: Bearer {admin_key}\" "
        "-H \"Content-Type: application/json\" -d '{\"message\": \"Hello!\"}'",
        "",
        "Ctrl-C stops the fleet.",
    ]
    return "\n".join(lines)


async def run_fleet(settings: Settings, *, out: Callable[[str], None] = print) -> None:
    """Start the fleet, print the banner, run until SIGINT/SIGTERM, then stop it."""
    env, admin_key = fleet_env(settings)
    fleet = Fleet(settings, env=env, out=out)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    out(f"starting {len(fleet.children)} processes; logs in {settings.log_dir}")
    starting = asyncio.create_task(fleet.start())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if stopped.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, FleetError):
            await starting
        await fleet.stop()
        out("stopped")
        return
    stopped.cancel()
    starting.result()  # raises FleetError if start failed (everything already stopped)
    out(banner(settings, fleet, admin_key))
    await stop.wait()
    out("stopping the fleet ...")
    await fleet.stop()
    out("stopped")
