"""Helpers for tests: settings in a temporary folder and an app served on a real port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from aiohttp import web
from fastapi import FastAPI

from services.kit.config import Settings, load_settings

TEST_TOKEN = "test-internal-token"  # noqa: S105 - a fixed token for tests only


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def settings_for_tests(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings whose data and logs live under ``tmp_path``, with a known internal token."""
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "log_dir": tmp_path / "logs",
        "internal_token": TEST_TOKEN,
    }
    base.update(overrides)
    return load_settings(**base)


_servers_refused: str | None = None  # set while a test marked ``unit`` runs


@contextlib.contextmanager
def refuse_servers(why: str) -> Iterator[None]:
    """While the block runs, starting a server (or a service process) raises."""
    global _servers_refused
    before, _servers_refused = _servers_refused, why
    try:
        yield
    finally:
        _servers_refused = before


def check_servers_allowed(what: str) -> None:
    """Raise when a server may not start now (a ``unit`` test is running)."""
    if _servers_refused is not None:
        raise RuntimeError(f"{what}: {_servers_refused}")


@contextlib.contextmanager
def serve_app(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 in a thread; yield its base URL."""
    check_servers_allowed("serve_app")
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.asynccontextmanager
async def fake_upstream(
    routes: dict[tuple[str, str], Callable[[web.Request], Awaitable[web.StreamResponse]]],
) -> AsyncIterator[str]:
    """A small aiohttp server on 127.0.0.1 standing in for an outside API; yields its URL.

    ``routes`` maps ``(method, path)`` to a handler.
    """
    check_servers_allowed("fake_upstream")
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def start_service(
    name: str, data_dir: Path, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``python -m services.NAME`` as a real process on ``port``, data in ``data_dir``;
    returns once it answers /health, i.e. started with its database migrated (for crash
    tests: kill it with SIGKILL, start it again)."""
    check_servers_allowed(f"start_service({name!r})")
    env = {
        **os.environ,
        "REFACTORBOT_DATA_DIR": str(data_dir),
        "REFACTORBOT_LOG_DIR": str(data_dir),
        "REFACTORBOT_INTERNAL_TOKEN": TEST_TOKEN,
        f"REFACTORBOT_{name.upper()}__PORT": str(port),
        "REFACTORBOT_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    proc = subprocess.Popen(  # noqa: S603 - our own module, a fixed name
        [sys.executable, "-m", f"services.{name}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} on start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{name} did not become ready")


POSTGRES_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=2"


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on 127.0.0.1:5432 (dropped afterwards), as a
    SQLAlchemy URL; the test is skipped, saying why, when no PostgreSQL answers."""
    import uuid

    import pytest

    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({exc.__class__.__name__})")
    name = f"rb_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()
