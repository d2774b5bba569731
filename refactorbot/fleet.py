"""The fleet runner: starts every service as a local process, waits until each is ready,
restarts any that dies (with backoff), and stops them all cleanly.

Small on purpose: asyncio subprocesses, one watcher task per service, one process group per
child so a stop leaves no orphans.
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
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from services.kit.config import Settings, SimulatorSettings
from services.kit.credentials import ADMIN_KEY_FILE
from services.kit.logfile import LOG_FILE_ENV, rotate_if_over
from services.kit.manifest import service_entry, service_names

STABLE_AFTER_S = 30.0  # a process up this long gets its restart backoff reset
POLL_S = 0.15  # readiness poll interval
STATE_FILE = "fleet.json"
DASHBOARD_APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
LOG_MARK = "--- fleet: started"  # written to a child's log before each (re)start


class FleetError(RuntimeError):
    """A service would not start; the message names it and shows its log's tail."""


@dataclass
class ProcessSpec:
    """One supervised process: what to run, where it answers 200 when ready, its log file."""

    name: str
    argv: list[str]
    ready_url: str
    log_name: str

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.ready_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def port(self) -> int | None:
        return urlsplit(self.ready_url).port


class ForkedProcess:
    """A child of the fork server, with the part of asyncio's Process the runner uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._done = asyncio.Event()

    def exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    async def wait(self) -> int:
        await self._done.wait()
        assert self.returncode is not None
        return self.returncode


class ForkServer:
    """The runner's side of :mod:`refactorbot.forkserver`: ask it for children, learn
    when they exit. If it dies, its children are watched by polling their pids."""

    def __init__(self, proc: asyncio.subprocess.Process, preload_s: float) -> None:
        self.proc = proc
        self.preload_s = preload_s
        self.children: dict[int, ForkedProcess] = {}
        self._asked: dict[int, asyncio.Future[ForkedProcess]] = {}
        self._ids = 0
        self._orphans: set[asyncio.Task[None]] = set()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, modules: list[str], env: dict[str, str], log: Path, timeout_s: float
    ) -> ForkServer:
        """Start the server and wait until it has preloaded; OSError/RuntimeError if not."""
        with log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "refactorbot.forkserver", *modules,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                env=env, start_new_session=True,
            )  # fmt: skip
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"the fork server did not preload within {timeout_s:g}s") from None
        hello = json.loads(line or b"{}")
        if not hello.get("ready"):
            proc.kill()
            await proc.wait()
            raise RuntimeError(
                f"the fork server could not start: {hello.get('error', 'no answer')}"
            )
        return cls(proc, float(hello.get("preload_s", 0.0)))

    async def spawn(self, argv: list[str], env: dict[str, str], log: Path) -> ForkedProcess:
        """A child running ``python -m argv[0] argv[1:]`` with ``env``, output to ``log``."""
        if self._reader.done():
            raise OSError("the fork server has stopped")
        assert self.proc.stdin is not None
        self._ids += 1
        asked: asyncio.Future[ForkedProcess] = asyncio.get_running_loop().create_future()
        self._asked[self._ids] = asked
        request = {"id": self._ids, "argv": argv, "env": env, "log": str(log)}
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        await self.proc.stdin.drain()
        return await asked

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "exited" in message:  # always after the answer that named the pid
                child = self.children.pop(message["exited"], None)
                if child is not None:
                    child.exited(int(message["code"]))
            elif "id" in message:
                asked = self._asked.pop(message["id"])
                if "pid" in message:
                    child = self.children[message["pid"]] = ForkedProcess(message["pid"])
                    asked.set_result(child)
                else:
                    asked.set_exception(OSError(message.get("error", "fork failed")))
        for asked in self._asked.values():
            if not asked.done():
                asked.set_exception(OSError("the fork server has stopped"))
        for child in list(self.children.values()):  # orphans now: watch their pids
            self._orphans.add(asyncio.get_running_loop().create_task(_poll_exit(child)))

    async def close(self) -> None:
        """End the server (its children are stopped by the runner, not here)."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.gather(self._reader, return_exceptions=True)


async def _poll_exit(child: ForkedProcess) -> None:
    while True:
        try:
            os.kill(child.pid, 0)
        except ProcessLookupError:
            child.exited(-1)  # its exit status went to the dead server
            return
        except PermissionError:
            pass
        await asyncio.sleep(0.5)


def preload_modules(settings: Settings) -> list[str]:
    """What the fork server imports: the shared stack and every service's code."""
    modules = [
        "refactorbot.cli", "services.kit.app", "services.kit.serve", "services.kit.logfile",
        "uvicorn", "uvicorn.loops.uvloop", "uvicorn.protocols.http.httptools_impl",
        "uvicorn.protocols.websockets.websockets_impl", "uvicorn.lifespan.on",
        *(f"{service_entry(name).package}.slice" for name in service_names()),
    ]  # fmt: skip
    if settings.openrouter.api_key is None:
        modules.append("openrouter_gateway.simulator")
    return modules


@dataclass
class _Child:
    spec: ProcessSpec
    proc: asyncio.subprocess.Process | ForkedProcess | None = None
    started_at: float = 0.0  # wall clock, for fleet.json
    up_since: float = 0.0  # monotonic, for the backoff reset
    restarts: int = 0
    backoff: float = 0.0
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


def simulator_args(sim: SimulatorSettings) -> list[str]:
    """The simulator's command line from the config's ``simulator`` section."""
    args = ["--host", sim.host, "--port", str(sim.port), "--latency-ms", str(sim.latency_ms)]
    if sim.scenarios_dir is not None:
        args += ["--scenarios-dir", str(sim.scenarios_dir)]
    if sim.default_scenario is not None:
        args += ["--default-scenario", sim.default_scenario]
    return args


def default_specs(settings: Settings) -> list[ProcessSpec]:
    """The simulator (only without an OpenRouter key), then every service in start order."""
    specs = []
    if settings.openrouter.api_key is None:
        sim = settings.simulator
        specs.append(
            ProcessSpec(
                "openrouter_simulator",
                [
                    sys.executable,
                    "-m",
                    "services.kit.logfile",  # its output into the rotating log file
                    "openrouter_gateway.simulator",
                    *simulator_args(sim),
                ],
                f"http://{sim.host}:{sim.port}/health",
                "openrouter_simulator.log",
            )
        )
    for name in service_names():
        specs.append(
            ProcessSpec(
                name,
                [sys.executable, "-m", "refactorbot", "serve", name],
                settings.service(name).base_url + "/ready",
                f"{name}.log",
            )
        )
    dash = settings.dashboard
    if dash.enabled:
        specs.append(
            ProcessSpec(
                "dashboard",
                [
                    sys.executable,
                    "-m",
                    "services.kit.logfile",  # Streamlit's output into the rotating log file
                    "streamlit",
                    "run",
                    str(DASHBOARD_APP),
                    "--server.address",
                    dash.host,
                    "--server.port",
                    str(dash.port),
                    "--server.headless",
                    "true",
                    "--browser.gatherUsageStats",
                    "false",
                ],
                f"http://{dash.host}:{dash.port}/_stcore/health",
                "dashboard.log",
            )
        )
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
    """Make the data and log folders; return the children's extra environment and admin key."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    token = (
        settings.internal_token.get_secret_value()
        if settings.internal_token
        else secrets.token_urlsafe(32)
    )
    admin = (
        settings.master_core.admin_api_key.get_secret_value()
        if settings.master_core.admin_api_key
        else load_or_create_admin_key(settings.data_dir)
    )
    env = {
        "REFACTORBOT_INTERNAL_TOKEN": token,
        "REFACTORBOT_MASTER_CORE__ADMIN_API_KEY": admin,
        "REFACTORBOT_DATA_DIR": str(settings.data_dir.resolve()),
        "REFACTORBOT_LOG_DIR": str(settings.log_dir.resolve()),
        "PYTHONUNBUFFERED": "1",
        # each child rotates its own log file; these keep it to the runner's limits
        "REFACTORBOT_LOGGING__MAX_BYTES": str(settings.logging.max_bytes),
        "REFACTORBOT_LOGGING__BACKUP_COUNT": str(settings.logging.backup_count),
    }
    return env, admin


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _killpg(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Fleet:
    """Supervises ``specs`` (default: the whole fleet from ``settings``)."""

    def __init__(
        self,
        settings: Settings,
        specs: list[ProcessSpec] | None = None,
        *,
        out: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings
        self.specs = specs if specs is not None else default_specs(settings)
        # the fork server preloads the services' code: worth it for the fleet itself
        self.preload = settings.fleet.preload and specs is None
        names = [s.log_name for s in self.specs]
        if len(set(names)) != len(names):  # a rotating file has one writer, never two
            raise ValueError(f"two processes would write the same log file: {names}")
        extra_env, self.admin_key = fleet_env(settings)
        self.env = {**os.environ, **extra_env}
        self.out = out
        self.children = {
            s.name: _Child(s, backoff=settings.fleet.restart_backoff_s) for s in self.specs
        }
        self.started_at = _now()
        self.forkserver: ForkServer | None = None

    # --- logging and state ---------------------------------------------------------------------
    def log(self, message: str) -> None:
        """Print a timestamped line and append it to ``log_dir/fleet.log`` (rotated too)."""
        line = f"{_now()} {message}"
        self.out(line)
        path = self.settings.log_dir / "fleet.log"
        self._rotate_if_over(path)
        with path.open("a") as f:
            f.write(line + "\n")

    def _rotate_if_over(self, path: Path) -> None:
        cfg = self.settings.logging
        rotate_if_over(path, max_bytes=cfg.max_bytes, backup_count=cfg.backup_count)

    @property
    def state_file(self) -> Path:
        return self.settings.data_dir / STATE_FILE

    def pid(self, name: str) -> int | None:
        proc = self.children[name].proc
        return proc.pid if proc else None

    def restarts(self, name: str) -> int:
        return self.children[name].restarts

    def log_path(self, name: str) -> Path:
        return self.settings.log_dir / self.children[name].spec.log_name

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "services": {
                name: {
                    "pid": self.pid(name),
                    "port": c.spec.port,
                    "url": c.spec.base_url,
                    "ready_url": c.spec.ready_url,
                    "log": str(self.log_path(name)),
                    "restarts": c.restarts,
                    "started_at": datetime.fromtimestamp(c.started_at)
                    .astimezone()
                    .isoformat(timespec="seconds"),
                }
                for name, c in self.children.items()
            },
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_file)

    def _log_tail(self, name: str, lines: int = 20) -> str:
        path = self.log_path(name)
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return "  (no log)"
        if LOG_MARK not in text:  # the child rotated its file since it started
            with contextlib.suppress(OSError):
                text = Path(f"{path}.1").read_text(errors="replace") + text
        run = text.rsplit(LOG_MARK, 1)[-1].splitlines()[1:]  # this run's lines only
        return "\n".join("  " + line for line in run[-lines:]) or "  (nothing logged)"

    def _failure(self, name: str, what: str) -> FleetError:
        return FleetError(
            f"{name} {what}; see {self.log_path(name)}, which ends with:\n{self._log_tail(name)}"
        )

    # --- processes -----------------------------------------------------------------------------
    async def _spawn(self, child: _Child) -> None:
        # The child's output goes to its own file from its first byte (an import error
        # included); the child then rotates that file itself (services.kit.logfile), so
        # no line passes through this process. A crash-looping child that dies before it
        # opens its log is rotated here, between runs.
        path = self.log_path(child.spec.name)
        self._rotate_if_over(path)
        with path.open("ab") as log:
            log.write(f"{LOG_MARK} {_now()} {' '.join(child.spec.argv)}\n".encode())
            log.flush()
        argv = child.spec.argv
        if self.forkserver is not None and argv[:2] == [sys.executable, "-m"]:
            with contextlib.suppress(OSError):  # a stopped server: a fresh process instead
                child.proc = await self.forkserver.spawn(
                    argv[2:], {**self.env, LOG_FILE_ENV: str(path)}, path
                )
                child.started_at, child.up_since = time.time(), time.monotonic()
                return
        with path.open("ab") as log:
            child.proc = await asyncio.create_subprocess_exec(
                *child.spec.argv,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env={**self.env, LOG_FILE_ENV: str(path)},
                start_new_session=True,
            )
        child.started_at, child.up_since = time.time(), time.monotonic()

    @staticmethod
    async def _probe(session: aiohttp.ClientSession, url: str) -> bool:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
                return resp.status == 200
        return False

    async def _start_forkserver(self) -> None:
        if not self.preload:
            return
        try:
            began = time.monotonic()
            self.forkserver = await ForkServer.start(
                preload_modules(self.settings),
                self.env,
                self.settings.log_dir / "forkserver.log",
                self.settings.fleet.ready_timeout_s,
            )
            self.log(
                f"shared code preloaded in {self.forkserver.preload_s:.1f}s "
                f"({time.monotonic() - began:.1f}s with interpreter start); forking services"
            )
        except (OSError, RuntimeError, ValueError) as exc:
            self.log(f"preloading failed ({exc}); starting each service as a fresh process")

    async def start(self) -> None:
        """Start every process and wait until all are ready; on failure stop them all."""
        try:
            await self._start_forkserver()
            for child in self.children.values():
                await self._spawn(child)
            self._write_state()
            await self._wait_all_ready()
        except BaseException:
            await self.stop()
            raise
        for child in self.children.values():
            child.watcher = asyncio.create_task(self._watch(child))

    async def _wait_all_ready(self) -> None:
        deadline = time.monotonic() + self.settings.fleet.ready_timeout_s
        pending = list(self.children.values())
        async with aiohttp.ClientSession() as session:
            while True:
                for child in pending:
                    assert child.proc is not None
                    if child.proc.returncode is not None:
                        raise self._failure(
                            child.spec.name,
                            f"exited with code {child.proc.returncode} during start-up",
                        )
                ready = await asyncio.gather(
                    *(self._probe(session, c.spec.ready_url) for c in pending)
                )
                pending = [c for c, ok in zip(pending, ready, strict=True) if not ok]
                if not pending:
                    return
                if time.monotonic() > deadline:
                    others = [c.spec.name for c in pending[1:]]
                    also = f" (also not ready: {', '.join(others)})" if others else ""
                    raise self._failure(
                        pending[0].spec.name,
                        f"was not ready at {pending[0].spec.ready_url} after "
                        f"{self.settings.fleet.ready_timeout_s:g}s{also}",
                    )
                await asyncio.sleep(POLL_S)

    async def _watch(self, child: _Child) -> None:
        """Restart the process whenever it exits, with doubling backoff."""
        fleet = self.settings.fleet
        name = child.spec.name
        while True:
            assert child.proc is not None
            code = await child.proc.wait()
            _killpg(child.proc.pid, signal.SIGKILL)  # whatever it left behind in its group
            if time.monotonic() - child.up_since >= STABLE_AFTER_S:
                child.backoff = fleet.restart_backoff_s
            self.log(
                f"{name} exited with code {code}; restarting in {child.backoff:g}s "
                f"(restart {child.restarts + 1}); log: {self.log_path(name)}"
            )
            while True:
                await asyncio.sleep(child.backoff)
                child.backoff = min(child.backoff * 2, fleet.restart_backoff_max_s)
                child.restarts += 1
                try:
                    await self._spawn(child)
                    break
                except OSError as exc:
                    self.log(f"{name} could not be started: {exc}; retrying in {child.backoff:g}s")
            self._write_state()
            self.log(f"{name} restarted (pid {child.proc.pid}, restarts {child.restarts})")

    async def stop(self) -> None:
        """SIGTERM every process group in reverse start order, SIGKILL what is left."""
        watchers = [c.watcher for c in self.children.values() if c.watcher is not None]
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        started = [c for c in reversed(list(self.children.values())) if c.proc is not None]
        for child in started:
            assert child.proc is not None
            if child.proc.returncode is None:
                _killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.fleet.stop_timeout_s

        async def reap(child: _Child) -> None:
            assert child.proc is not None
            try:
                await asyncio.wait_for(child.proc.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.log(
                    f"{child.spec.name} did not stop within "
                    f"{self.settings.fleet.stop_timeout_s:g}s; killing it"
                )
            _killpg(child.proc.pid, signal.SIGKILL)  # the leader, or anything it left behind
            await child.proc.wait()

        await asyncio.gather(*(reap(c) for c in started))
        if self.forkserver is not None:
            await self.forkserver.close()
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()


def banner(settings: Settings, fleet: Fleet) -> str:
    """What a user needs once the fleet is up: URLs, folders, LLM mode, the admin key."""
    width = max(len(n) for n in [*fleet.children, "admin key"]) + 2
    lines = ["", "RefactorBot fleet is ready"]
    lines += [f"  {name.ljust(width)} {c.spec.base_url}" for name, c in fleet.children.items()]
    key_where = (
        str(settings.data_dir / ADMIN_KEY_FILE)
        if settings.master_core.admin_api_key is None
        else "REFACTORBOT_MASTER_CORE__ADMIN_API_KEY (from your config)"
    )
    master = settings.master_core.base_url
    lines += [
        "",
        f"  {'data'.ljust(width)} {settings.data_dir}",
        f"  {'logs'.ljust(width)} {settings.log_dir}",
        f"  {'LLM mode'.ljust(width)} {settings.llm_mode}",
        f"  {'admin key'.ljust(width)} {key_where}",
        "",
        "Try a chat turn:",
        f'  curl -s {master}/v1/chat -H "Authorization: Bearer {fleet.admin_key}" '
        '-H "Content-Type: application/json" -d \'{"message": "Hello!"}\'',
        "",
        "Ctrl-C stops the fleet.",
    ]
    return "\n".join(lines)


def _running_runner(state_file: Path) -> int | None:
    """The pid of another live runner that owns ``state_file``, if any."""
    try:
        pid = int(json.loads(state_file.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


async def run_fleet(
    settings: Settings,
    *,
    on_ready: Callable[[Fleet], object] | None = None,
    specs: list[ProcessSpec] | None = None,
    out: Callable[[str], None] = print,
) -> None:
    """Start the fleet, print the banner, run until SIGINT/SIGTERM, then stop it.

    Raises FleetError (with everything already stopped) when a service does not start.
    """
    other = _running_runner(settings.data_dir / STATE_FILE)
    if other is not None:
        raise FleetError(
            f"a fleet is already running (runner pid {other}, "
            f"{settings.data_dir / STATE_FILE}); stop it first"
        )
    fleet = Fleet(settings, specs, out=out)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        out(
            f"starting {len(fleet.children)} processes (LLM: {settings.llm_mode}); "
            f"logs in {settings.log_dir}"
        )
        starting = asyncio.create_task(fleet.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not stopped.done():
            stopped.cancel()
            starting.result()  # raises FleetError if start failed (everything already stopped)
            out(banner(settings, fleet))
            if on_ready is not None:
                result = on_ready(fleet)
                if asyncio.iscoroutine(result):
                    await result
            await stop.wait()
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, FleetError):
                await starting
        out("stopping the fleet ...")
    finally:
        await fleet.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)
    out("stopped")
