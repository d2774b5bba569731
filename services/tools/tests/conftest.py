"""A tools slice on 127.0.0.1 with a workspace in tmp_path and a canary file outside it."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, free_port, serve_app, settings_for_tests
from services.memory.slice import create_slice as create_memory_slice
from services.tools.sandbox import NO_BWRAP_ENV, bubblewrap_works
from services.tools.slice import create_slice
from services.tools.web import Fetched

SECRET = "CANARY-7f3a9c-never-leaves"


class RecordingTransport:
    """Stands in for the network: records every connection asked for, answers canned."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, str]] = []
        self.pages: dict[str, Fetched] = {}

    async def __call__(
        self, url: str, *, host: str, ip: str, port: int, max_bytes: int, timeout_s: float
    ) -> Fetched:
        self.connections.append((url, ip))
        page = self.pages.get(url) or Fetched(404, {}, b"not found", False)
        return Fetched(page.status, page.headers, page.body[:max_bytes], len(page.body) > max_bytes)


class StubResolver:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return self.table[host]


@dataclass
class ToolsEnv:
    client: httpx.Client
    workspace: Path
    outside: Path  # a folder beside the workspace holding the canary
    transport: RecordingTransport
    resolver: StubResolver
    memory_url: str | None = None  # the memory slice, when started beside it

    def call(self, tool: str, **arguments: Any) -> httpx.Response:
        return self.client.post(f"/v1/tools/{tool}/call", json={"arguments": arguments})


EXEC_ALLOW = ["echo", "wc", "cat", "ls", "sh", "sleep", "head", "tail", "sort", "grep"]


@contextlib.contextmanager
def start_tools_env(
    tmp_path: Path, *, with_memory: bool = False, **tools: Any
) -> Iterator[ToolsEnv]:
    """A tools slice on a real port; ``tools`` overrides its settings. With ``with_memory``
    a memory slice runs beside it (its own SQLite file); without, the memory tools point
    at a port nothing listens on (and never at a fleet that may run on this machine)."""
    workspace = tmp_path / "ws"
    outside = tmp_path / "ws-evil"  # a sibling sharing the workspace's prefix
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text(SECRET)
    (tmp_path / "secret.txt").write_text(SECRET)
    settings = settings_for_tests(
        tmp_path,
        tools={
            "workspaces": {"default": str(workspace)},
            "exec_allow": EXEC_ALLOW,
            "output_cap_bytes": 4096,
            **tools,
        },
        memory={"port": free_port(), "consolidate_every_s": 0},
    )
    transport = RecordingTransport()
    resolver = StubResolver(
        {
            "example.test": ["93.184.216.34"],
            "internal.test": ["10.0.0.5"],
            "mixed.test": ["93.184.216.34", "127.0.0.1"],
            "metadata.test": ["169.254.169.254"],
            "v6local.test": ["::1"],
            "mapped.test": ["::ffff:192.168.1.1"],
        }
    )
    from services.tools.web import WebFetcher

    fetcher = WebFetcher(allow_hosts=[], max_redirects=3, resolver=resolver, transport=transport)
    app = create_app(create_slice(fetcher=fetcher), settings)
    with contextlib.ExitStack() as stack:
        memory_url = None
        if with_memory:
            memory = create_app(create_memory_slice(), settings)
            memory_url = stack.enter_context(serve_app(memory, port=settings.memory.port))
        url = stack.enter_context(serve_app(app))
        c = stack.enter_context(
            httpx.Client(base_url=url, headers={"X-Internal-Token": TEST_TOKEN}, timeout=30)
        )
        yield ToolsEnv(c, workspace.resolve(), outside, transport, resolver, memory_url)


def bubblewrap_usable() -> bool:
    hidden = os.environ.get(NO_BWRAP_ENV, "") not in ("", "0")
    return not hidden and bubblewrap_works(shutil.which("bwrap"))


NO_SANDBOX = "bubblewrap is not installed or cannot run here (apt-get install bubblewrap)"


@pytest.fixture
def tools_env(tmp_path: Path) -> Iterator[ToolsEnv]:
    """The default sandbox choice (auto), with exec allowed to run unsandboxed."""
    with start_tools_env(tmp_path, exec_unsandboxed=True) as env:
        yield env


@pytest.fixture(params=["guard", "bubblewrap"])
def exec_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ToolsEnv]:
    """exec in each mode: the guard (no sandbox, exec_unsandboxed) and bubblewrap."""
    if request.param == "bubblewrap":
        if not bubblewrap_usable():
            pytest.skip(NO_SANDBOX)
        with start_tools_env(tmp_path, sandbox="bubblewrap") as env:
            yield env
    else:
        with start_tools_env(tmp_path, sandbox="none", exec_unsandboxed=True) as env:
            yield env
