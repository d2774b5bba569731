"""A process's log file: rotated by size, a bounded number of files, and holding everything
the process writes, JSON log lines and raw output (a crash traceback) alike.

The fleet runner starts each process with its stdout and stderr on ``logs/<name>.log`` and
names that file in ``REFACTORBOT_LOG_FILE``. The process then opens the file itself
(:func:`open_log_file`): log lines go through :class:`RotatingLogFile`, a
``RotatingFileHandler`` that counts what it writes instead of asking the file each time,
and after every rollover file descriptors 1 and 2 are pointed at the new file, so whatever
the interpreter, uvicorn or a library prints lands in the current file and rotates with
it. A background check once a second also rotates output written around the handler.

One file, one writer: the file is locked (``flock``) while a process writes it; a second
process given the same name writes ``<name>.<pid>.log`` instead of sharing the file.

``python -m services.kit.logfile MODULE ARGS...`` runs a Python module (the Streamlit
dashboard) with its output in the rotating file named by ``REFACTORBOT_LOG_FILE``.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import runpy
import sys
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

LOG_FILE_ENV = "REFACTORBOT_LOG_FILE"
WATCH_S = 1.0  # how often output written around the handler is measured

_open_files: dict[str, RotatingLogFile] = {}
_open_lock = threading.Lock()


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class RotatingLogFile(RotatingFileHandler):
    """``path`` rotated to ``path.1`` ... ``path.<backup_count>`` past ``max_bytes``.

    With ``capture_output`` the process's stdout and stderr (descriptors 1 and 2) follow
    the current file. :meth:`write_line` takes an already rendered line (structlog);
    :meth:`emit` serves the standard library's records.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        max_bytes: int,
        backup_count: int,
        capture_output: bool = False,
        watch_s: float | None = WATCH_S,
    ) -> None:
        if max_bytes <= 0 or backup_count <= 0:
            raise ValueError("max_bytes and backup_count must be positive (else no rotation)")
        self.capture_output = capture_output
        self.requested = Path(path)
        self._size = 0
        super().__init__(path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        self._closed = threading.Event()
        if watch_s:
            threading.Thread(
                target=self._watch, args=(watch_s,), name="log-rotation", daemon=True
            ).start()

    def _open(self) -> io.TextIOWrapper:
        stream = super()._open()
        if not _try_lock(stream.fileno()):
            # another process writes this file: never share it, take one of our own
            stream.close()
            base = Path(self.requested)
            self.baseFilename = str(base.with_name(f"{base.stem}.{os.getpid()}{base.suffix}"))
            stream = super()._open()
            _try_lock(stream.fileno())
        if self.capture_output:
            for std in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    std.flush()
            os.dup2(stream.fileno(), 1)
            os.dup2(stream.fileno(), 2)
        self._size = os.fstat(stream.fileno()).st_size
        return stream

    @property
    def path(self) -> Path:
        """The file written now (``<name>.<pid>.log`` when another process had the name)."""
        return Path(self.baseFilename)

    def write_line(self, line: str) -> None:
        """Append one line, rotating first when it would take the file past the limit."""
        data = line + "\n"
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            try:
                if self.stream is None:
                    self.stream = self._open()
                if self._size > 0 and self._size + len(data) > self.maxBytes:
                    self.doRollover()
                stream = self.stream
                assert stream is not None  # reopened by doRollover
                stream.write(data)
                stream.flush()
                self._size += len(data)  # characters: JSON lines are ASCII
            except OSError:
                pass  # a full disk must not fail the request that logged

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except Exception:
            self.handleError(record)

    def check(self) -> None:
        """Measure the file (raw output counts too) and rotate it if it is over the limit."""
        with self.lock:  # type: ignore[union-attr]
            if self.stream is None:
                return
            with contextlib.suppress(OSError):
                self._size = os.fstat(self.stream.fileno()).st_size
                if self._size >= self.maxBytes:
                    self.doRollover()

    def _watch(self, every_s: float) -> None:
        while not self._closed.wait(every_s):
            self.check()

    def close(self) -> None:
        self._closed.set()
        super().close()


def open_log_file(
    path: Path | str, *, max_bytes: int, backup_count: int, capture_output: bool = True
) -> RotatingLogFile:
    """The process's rotating log file at ``path``, opened once however often asked."""
    key = str(Path(path).resolve())
    with _open_lock:
        handler = _open_files.get(key)
        if handler is None or handler._closed.is_set():
            handler = RotatingLogFile(
                key, max_bytes=max_bytes, backup_count=backup_count, capture_output=capture_output
            )
            _open_files[key] = handler
        return handler


def log_file_from_env() -> Path | None:
    """The file named in ``REFACTORBOT_LOG_FILE`` (set by the fleet runner), if any."""
    value = os.environ.get(LOG_FILE_ENV)
    return Path(value) if value else None


def rotate_if_over(path: Path, *, max_bytes: int, backup_count: int) -> bool:
    """Rotate ``path`` (for a writer that appends and closes, like the fleet runner) when it
    has reached ``max_bytes`` and no process holds it; True when it was rotated."""
    try:
        if path.stat().st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    with path.open("ab") as f:
        if not _try_lock(f.fileno()):
            return False  # a live process writes it and rotates it itself
        rotator = RotatingFileHandler(path, backupCount=backup_count, delay=True)
        rotator.doRollover()
        rotator.close()
    return True


def run_module(argv: list[str]) -> Any:
    """Run ``python -m argv[0] argv[1:]`` in this process, its output in the log file."""
    path = log_file_from_env()
    if path is not None:
        from services.kit.config import ConfigError, load_settings

        try:
            cfg = load_settings().logging
        except ConfigError as exc:
            sys.exit(f"{argv[0]}: {exc}")
        open_log_file(path, max_bytes=cfg.max_bytes, backup_count=cfg.backup_count)
    sys.argv = list(argv)
    return runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m services.kit.logfile MODULE [ARGS...]")
    run_module(sys.argv[1:])
