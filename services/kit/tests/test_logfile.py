"""Log files rotated by size: bounded files, nothing lost between them, raw output and crash
tracebacks rotated with the JSON lines, one writer per file, secrets never written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.kit.logfile import LOG_FILE_ENV, RotatingLogFile, rotate_if_over
from services.kit.logging import redact_event

ROOT = Path(__file__).resolve().parents[3]


def rotated(path: Path) -> list[Path]:
    """``path`` and its rotated files, oldest first."""
    return [*sorted(path.parent.glob(path.name + ".*"), key=lambda p: -int(p.suffix[1:])), path]


def lines_of(files: list[Path]) -> list[str]:
    return [line for f in files for line in f.read_text().splitlines()]


def run_child(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_files_are_bounded_and_keep_the_newest_lines_in_order(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    log = RotatingLogFile(path, max_bytes=1024, backup_count=3, watch_s=None)
    try:
        for i in range(500):
            log.write_line(f"line {i:04d} " + "x" * 40)
    finally:
        log.close()
    files = rotated(path)
    assert [f.name for f in files] == ["svc.log.3", "svc.log.2", "svc.log.1", "svc.log"]
    assert all(f.stat().st_size <= 1024 for f in files)
    kept = [int(line.split()[1]) for line in lines_of(files)]
    assert kept == list(range(kept[0], 500))  # the newest, none lost between the files
    assert kept[0] > 400


def test_stdlib_records_share_the_file(tmp_path: Path) -> None:
    import logging

    path = tmp_path / "svc.log"
    handler = RotatingLogFile(path, max_bytes=2048, backup_count=2, watch_s=None)
    logger = logging.getLogger("test_logfile.stdlib")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for i in range(600):
            logger.warning("record %d", i)
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = rotated(path)
    assert len(files) == 3 and all(f.stat().st_size <= 2048 for f in files)
    assert lines_of(files)[-1] == "record 599"


def test_runner_side_rotation_only_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "fleet.log"
    assert not rotate_if_over(path, max_bytes=100, backup_count=2)  # no file yet
    path.write_text("a" * 50)
    assert not rotate_if_over(path, max_bytes=100, backup_count=2)
    path.write_text("a" * 100)
    assert rotate_if_over(path, max_bytes=100, backup_count=2)
    assert not path.exists() and (tmp_path / "fleet.log.1").stat().st_size == 100


def test_a_held_file_is_not_rotated_or_shared_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    held = RotatingLogFile(path, max_bytes=1024, backup_count=2, watch_s=None)
    try:
        held.write_line("x" * 2000)  # over the limit, but ours
        assert not rotate_if_over(path, max_bytes=1024, backup_count=2)
        child = run_child(
            """
            import sys
            from services.kit.logfile import RotatingLogFile
            log = RotatingLogFile(sys.argv[1], max_bytes=1024, backup_count=2, watch_s=None)
            log.write_line("from the second process")
            print(log.path)
            """,
            {},
            str(path),
        )
        assert child.returncode == 0, child.stderr
        own = Path(child.stdout.strip())
        assert own.parent == tmp_path and own.name.startswith("svc.") and own != path
        assert own.read_text() == "from the second process\n"
        assert "second process" not in path.read_text()
    finally:
        held.close()


SERVICE_LIKE = """
    import logging, sys
    import structlog
    from services.kit.config import load_settings
    from services.kit.logging import configure_logging
    settings = load_settings()
    configure_logging("svc", "INFO", settings.logging)
    log = structlog.get_logger("svc")
    for i in range(300):
        log.info("request", n=i, path="/v1/x", authorization="Bearer sk-or-v1-PLANTEDxx0123456")
    logging.getLogger("uvicorn.error").warning("stdlib line")
    print("raw print", flush=True)
    raise RuntimeError("crashed after logging")
"""


def test_json_lines_raw_output_and_crash_traceback_rotate_together(tmp_path: Path) -> None:
    path = tmp_path / "svc.log"
    env = {
        LOG_FILE_ENV: str(path),
        "REFACTORBOT_LOGGING__MAX_BYTES": "4096",
        "REFACTORBOT_LOGGING__BACKUP_COUNT": "2",
        "REFACTORBOT_CONFIG": str(tmp_path / "none.yaml"),
    }
    (tmp_path / "none.yaml").write_text("{}\n")
    child = run_child(SERVICE_LIKE, env)
    assert child.returncode == 1
    assert child.stdout == "" and child.stderr == ""  # all of it went to the file
    files = rotated(path)
    assert [f.name for f in files] == ["svc.log.2", "svc.log.1", "svc.log"]
    assert all(f.stat().st_size <= 4096 + 2048 for f in files)  # a traceback may overshoot
    text = path.read_text()
    assert "RuntimeError: crashed after logging" in text and "raw print" in text
    events = [json.loads(line) for line in lines_of(files) if line.startswith("{")]
    assert events[-1]["event"] == "stdlib line" and events[-1]["logger"] == "uvicorn.error"
    assert events[-2]["n"] == 299 and events[-2]["service"] == "svc"
    assert "PLANTED" not in "".join(f.read_text() for f in files)


RAW_WRITER = """
import sys, time
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    print("raw " + "y" * 200, flush=True)
    time.sleep(0.002)
print("done", flush=True)
"""


def test_a_wrapped_module_has_its_raw_output_rotated(tmp_path: Path) -> None:
    """``python -m services.kit.logfile MODULE``, as the dashboard (Streamlit) runs."""
    (tmp_path / "raw_writer.py").write_text(RAW_WRITER)
    (tmp_path / "none.yaml").write_text("{}\n")
    path = tmp_path / "dashboard.log"
    proc = subprocess.run(
        [sys.executable, "-m", "services.kit.logfile", "raw_writer", "2.5"],
        env={
            **os.environ,
            "PYTHONPATH": f"{ROOT}:{tmp_path}",
            LOG_FILE_ENV: str(path),
            "REFACTORBOT_LOGGING__MAX_BYTES": "8192",
            "REFACTORBOT_LOGGING__BACKUP_COUNT": "2",
            "REFACTORBOT_CONFIG": str(tmp_path / "none.yaml"),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    files = rotated(path)
    assert [f.name for f in files] == ["dashboard.log.2", "dashboard.log.1", "dashboard.log"]
    assert path.read_text().endswith("done\n")


def test_bad_rotation_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="backup_count"):
        RotatingLogFile("/tmp/never-created.log", max_bytes=1024, backup_count=0, watch_s=None)


def event(**fields: object) -> dict[str, object]:
    return redact_event(None, "info", {"event": "x", **fields})


def test_redaction_drops_contents_and_credentials_keeps_counts() -> None:
    out = event(
        content="my password is hunter2",
        messages=[{"role": "user", "content": "hi"}],
        arguments={"path": "a.txt", "content": "sk-or-v1-PLANTED0123456789"},
        authorization="Bearer rb_abcdefghijklmnopqrstuvwxyz",
        api_key="k",
        headers={"x": "y"},
        prompt_tokens=12,
        message_count=3,
        api_key_id="key_1",
        status=200,
        path="/v1/chat",
    )
    assert out["content"] == out["messages"] == out["arguments"] == "[redacted]"
    assert out["authorization"] == out["api_key"] == out["headers"] == "[redacted]"
    assert out["prompt_tokens"] == 12 and out["message_count"] == 3 and out["status"] == 200
    assert out["api_key_id"] == "key_1" and out["path"] == "/v1/chat"


def test_redaction_scrubs_secret_shapes_and_echoed_input_everywhere() -> None:
    out = event(
        error="upstream said: invalid key sk-or-v1-PLANTED0123456789 (Bearer abc.def)",
        rows=[{"model": "m", "password": "p", "n": 1}],
        exception="ValidationError: [type=string_type, input_value='my secret text', "
        "input_type=str]",
        event_note="rb_" + "a" * 43,
    )
    assert "PLANTED" not in str(out["error"]) and "abc.def" not in str(out["error"])
    assert out["rows"] == [{"model": "m", "password": "[redacted]", "n": 1}]
    assert "my secret text" not in str(out["exception"])
    assert "input_value=[redacted]" in str(out["exception"])
    assert out["event_note"] == "[redacted]"


def test_long_fields_are_cut_a_traceback_keeps_its_end() -> None:
    out = event(error="e" * 10_000, exception="start " + "t" * 10_000 + " LastLine: boom")
    assert len(str(out["error"])) < 4_100 and str(out["error"]).endswith("chars cut]")
    assert str(out["exception"]).endswith("LastLine: boom")
