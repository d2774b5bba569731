"""The preloading fork server: children run as ``python -m`` would, in their own session,
output to their log, exits reported (SIGKILL included), and the runner survives it dying."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from refactorbot.fleet import ForkServer

CHILD = """
import os, sys, time
print("argv", sys.argv[1:], "env", os.environ.get("RB_FS_TEST"), "stdin", repr(sys.stdin.read()))
print("session leader", os.getsid(0) == os.getpid(), flush=True)
if sys.argv[1:] == ["sleep"]:
    time.sleep(60)
sys.exit(3)
"""


@pytest.fixture
def module(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "rb_fs_child.py").write_text(CHILD)
    return {**os.environ, "PYTHONPATH": f"{tmp_path}:{os.getcwd()}"}


async def test_children_run_as_python_dash_m(tmp_path: Path, module: dict[str, str]) -> None:
    server = await ForkServer.start(["json"], module, tmp_path / "fs.log", 30)
    try:
        log = tmp_path / "child.log"
        child = await server.spawn(["rb_fs_child", "a", "b"], {**module, "RB_FS_TEST": "x"}, log)
        assert await asyncio.wait_for(child.wait(), 30) == 3
        text = log.read_text()
        assert "argv ['a', 'b'] env x stdin ''" in text and "session leader True" in text
        sleeper = await server.spawn(["rb_fs_child", "sleep"], module, tmp_path / "s.log")
        await asyncio.sleep(0.2)
        assert os.getpgid(sleeper.pid) == sleeper.pid  # its own group: the runner signals it
        os.kill(sleeper.pid, signal.SIGKILL)
        assert await asyncio.wait_for(sleeper.wait(), 30) == -signal.SIGKILL
        broken = await server.spawn(["no_such_module_rb"], module, tmp_path / "b.log")
        assert await asyncio.wait_for(broken.wait(), 30) == 1
        assert "No module named no_such_module_rb" in (tmp_path / "b.log").read_text()
    finally:
        await server.close()


async def test_a_dead_server_leaves_children_watched(
    tmp_path: Path, module: dict[str, str]
) -> None:
    server = await ForkServer.start(["json"], module, tmp_path / "fs.log", 30)
    child = await server.spawn(["rb_fs_child", "sleep"], module, tmp_path / "c.log")
    server.proc.kill()
    await server.proc.wait()
    with pytest.raises(OSError):
        await asyncio.wait_for(server.spawn(["rb_fs_child"], module, tmp_path / "d.log"), 10)
    os.kill(child.pid, signal.SIGKILL)
    assert await asyncio.wait_for(child.wait(), 10) == -1  # seen gone by polling its pid
    await server.close()


async def test_a_server_that_cannot_preload_says_why(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    (tmp_path / "rb_fs_threads.py").write_text("import threading, time\n"
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n")  # fmt: skip
    with pytest.raises(RuntimeError, match="started a thread"):
        await ForkServer.start(["rb_fs_threads"], env, tmp_path / "fs.log", 30)
    assert sys.executable  # the runner then starts fresh processes (see Fleet.start)
