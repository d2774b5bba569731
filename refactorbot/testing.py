"""The real fleet as a process for tests and benchmarks: ``refactorbot up`` with every
service on a free port and its data in a temporary folder."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.kit.manifest import service_names
from services.kit.testing import check_servers_allowed, free_port

INTERNAL_TOKEN = "fleet-test-internal-token"  # noqa: S105 - tests and benchmarks only
ADMIN_KEY = "rb_fleet_test_admin_key_0123456789abcdef"


@dataclass
class RunningFleet:
    runner: subprocess.Popen[bytes]
    tmp: Path
    env: dict[str, str]
    ports: dict[str, int]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def master(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url("master_core"),
            timeout=30,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )

    def internal(self, name: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url(name), timeout=30, headers={"X-Internal-Token": INTERNAL_TOKEN}
        )

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.tmp / "data" / "fleet.json").read_text())
        return state

    def pid(self, name: str) -> int:
        return int(self.state()["services"][name]["pid"])

    def log(self, name: str) -> str:
        """The service's log, its rotated files (oldest first) included."""
        path = self.tmp / "logs" / f"{name}.log"
        older = sorted(path.parent.glob(f"{name}.log.*"), key=lambda p: -int(p.suffix[1:]))
        return "".join(p.read_text(errors="replace") for p in [*older, path])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError, KeyError, ValueError):
            if check():
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def fleet_process(
    tmp: Path,
    *,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float = 120,
    dashboard: bool = False,
) -> Iterator[RunningFleet]:
    """Run the fleet until the block ends, then stop it with SIGINT (as Ctrl-C would).
    Everything is as ``make run`` has it but the ports (free ones), the folders (in
    ``tmp``), known keys, and the dashboard (off unless asked: tests use AppTest)."""
    check_servers_allowed("fleet_process")
    ports = {name: free_port() for name in (*service_names(), "simulator", "dashboard")}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("REFACTORBOT_") and k != "OPENROUTER_API_KEY"
    }
    env.update({f"REFACTORBOT_{n.upper()}__PORT": str(p) for n, p in ports.items()})
    config = tmp / "refactorbot.yaml"
    config.write_text("log_level: INFO\n")
    env.update(
        {
            "REFACTORBOT_DATA_DIR": str(tmp / "data"),
            "REFACTORBOT_LOG_DIR": str(tmp / "logs"),
            "REFACTORBOT_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "REFACTORBOT_MASTER_CORE__ADMIN_API_KEY": ADMIN_KEY,
            "REFACTORBOT_FLEET__RESTART_BACKOFF_S": "0.2",
            "REFACTORBOT_DASHBOARD__ENABLED": "true" if dashboard else "false",
            "REFACTORBOT_CONFIG": str(config),
            **(extra_env or {}),
        }
    )
    out_path = tmp / "runner.out"
    with out_path.open("wb") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "refactorbot", "up"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    fleet = RunningFleet(runner, tmp, env, ports)
    try:

        def ready() -> bool:
            if runner.poll() is not None:  # the runner gave up: no point waiting
                raise AssertionError(f"refactorbot up exited with {runner.returncode}")
            return b"fleet is ready" in out_path.read_bytes()

        wait_until(ready, ready_timeout, "the fleet banner")
    except AssertionError:
        runner.kill()
        raise AssertionError(out_path.read_text()) from None
    try:
        yield fleet
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGINT)
            try:
                runner.wait(30)
            except subprocess.TimeoutExpired:
                runner.kill()
