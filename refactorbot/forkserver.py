"""A preloading fork server for the fleet runner: one process imports the code every
service shares (FastAPI, SQLAlchemy, pydantic, uvicorn, the kit, every slice) once, then
forks each service from itself, as preload servers do.

Why: a fresh interpreter spends seconds of CPU importing that stack, ten times over on a
two-core machine, and each holds its own copy of the same pages. A forked child starts
with the imports done and shares those pages with its siblings until it writes to them
(copy on write; ``gc.freeze()`` keeps the collector from touching them).

Each child is exactly what ``python -m MODULE ARGS`` would run (``runpy``), in its own
session (so the runner can signal its process group), with stdin from /dev/null, stdout
and stderr appended to its log file, and the environment the runner gives it. The server
itself starts no thread and opens no database, so forking it is safe; it checks.

Protocol, one JSON object per line. The runner writes ``{"id", "argv", "env", "log"}`` to
the server's stdin; the server answers on stdout ``{"ready": true, "preload_s"}`` once,
then ``{"id", "pid"}`` (or ``{"id", "error"}``) per request, and ``{"exited": pid,
"code"}`` whenever a child ends (it is their parent and reaps them). End of stdin ends the
server; its children live on until the runner stops them.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import runpy
import select
import signal
import sys
import threading
import time
import traceback
from typing import Any


def _send(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def preload(modules: list[str]) -> list[str]:
    """Import ``modules``; return those that failed (a child imports them itself)."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a bad module must not take the server down
            failed.append(f"{name}: {exc.__class__.__name__}: {exc}")
    return failed


def _run_child(request: dict[str, Any], inherited: list[int]) -> None:
    """In the forked child: become ``python -m argv[0] argv[1:]``; never returns."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        for fd in inherited:  # the server's wake-up pipe
            with contextlib.suppress(OSError):
                os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(devnull, 0)  # replaces the command pipe
        os.dup2(log, 1)  # replaces the answer pipe
        os.dup2(log, 2)
        for fd in (devnull, log):
            if fd > 2:
                os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(modules: list[str]) -> None:
    """Preload, then fork a child per request until stdin ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner stops us by closing stdin
    began = time.perf_counter()
    failed = preload(modules)
    gc.collect()
    gc.freeze()  # the collector leaves the preloaded objects (and their pages) alone
    if threading.active_count() > 1:
        _send({"error": "a preloaded module started a thread; forking is not safe"})
        return
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _send({"ready": True, "preload_s": round(time.perf_counter() - began, 3), "failed": failed})
    pending = b""
    while True:
        try:
            readable, _, _ = select.select([0, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            _reap()
        if 0 not in readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return  # the runner is gone or done
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            try:
                pid = os.fork()
            except OSError as exc:
                _send({"id": request["id"], "error": str(exc)})
                continue
            if pid == 0:
                _run_child(request, [wake_r, wake_w])
            _send({"id": request["id"], "pid": pid})
        _reap()


if __name__ == "__main__":
    serve(sys.argv[1:])
