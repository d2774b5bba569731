"""The fleet runner, with small fake services (http.server) instead of the real fleet."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from refactorbot.fleet import LOG_MARK, Fleet, FleetError, ProcessSpec
from services.kit.config import Settings, load_settings

# A fake service: prints the admin key it was given, optionally leaves a grandchild in its
# process group (writing its pid to a file), then serves HTTP on the given port.
CHILD = textwrap.dedent("""
    import http.server, os, subprocess, sys
    port, grandchild_file = int(sys.argv[1]), sys.argv[2]
    print("admin key:", os.environ["REFACTORBOT_MASTER_CORE__ADMIN_API_KEY"], flush=True)
    if grandchild_file != "-":
        gc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open(grandchild_file, "w").write(str(gc.pid))
    http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                    http.server.SimpleHTTPRequestHandler).serve_forever()
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_spec(name: str) -> ProcessSpec:
    port = free_port()
    return ProcessSpec(
        name,
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        f"http://127.0.0.1:{port}/",
        f"{name}.log",
    )


def child_spec(tmp_path: Path, name: str, grandchild_file: str = "-") -> ProcessSpec:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    port = free_port()
    return ProcessSpec(
        name,
        [sys.executable, str(script), str(port), grandchild_file],
        f"http://127.0.0.1:{port}/",
        f"{name}.log",
    )


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    fleet = {
        "ready_timeout_s": 8,
        "restart_backoff_s": 0.1,
        "restart_backoff_max_s": 0.4,
        "stop_timeout_s": 3,
    }
    return load_settings(
        data_dir=tmp_path / "data", log_dir=tmp_path / "logs", fleet=fleet, **overrides
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for an init that does not reap is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


async def eventually(check: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_starts_ready_then_stop_leaves_no_process(tmp_path: Path) -> None:
    gc_file = tmp_path / "grandchild.pid"
    specs = [http_spec("alpha"), child_spec(tmp_path, "beta", str(gc_file))]
    settings = make_settings(tmp_path)
    fleet = Fleet(settings, specs, out=lambda _: None)
    await fleet.start()
    try:
        assert all(ready(s.ready_url) for s in specs)
        state = json.loads((settings.data_dir / "fleet.json").read_text())
        assert state["pid"] == os.getpid()
        assert state["services"]["alpha"]["port"] == specs[0].port
        assert state["services"]["beta"]["url"] == specs[1].base_url
        pids = [fleet.pid("alpha"), fleet.pid("beta"), int(gc_file.read_text())]
        assert all(p is not None and alive(p) for p in pids)
        env = (settings.log_dir / "beta.log").read_text()
        assert f"admin key: {fleet.admin_key}" in env
    finally:
        await fleet.stop()
    await eventually(lambda: not any(alive(p) for p in pids if p))  # grandchild included
    assert not (settings.data_dir / "fleet.json").exists()


async def test_killed_child_is_restarted(tmp_path: Path) -> None:
    specs = [http_spec("alpha"), http_spec("beta")]
    settings = make_settings(tmp_path)
    lines: list[str] = []
    fleet = Fleet(settings, specs, out=lines.append)
    await fleet.start()
    try:
        old = fleet.pid("beta")
        assert old is not None
        os.kill(old, signal.SIGKILL)
        await eventually(lambda: fleet.restarts("beta") == 1 and fleet.pid("beta") != old)
        await eventually(lambda: ready(specs[1].ready_url))
        assert fleet.restarts("alpha") == 0
        fleet_log = (settings.log_dir / "fleet.log").read_text()
        assert "beta exited with code -9" in fleet_log
        assert "beta restarted" in fleet_log
        assert any("beta exited" in line for line in lines)
        await eventually(
            lambda: (
                json.loads((settings.data_dir / "fleet.json").read_text())["services"]["beta"][
                    "pid"
                ]
                == fleet.pid("beta")
            )
        )
    finally:
        await fleet.stop()
    assert not alive(old)


async def test_child_failing_at_start_up_stops_everything(tmp_path: Path) -> None:
    good = http_spec("alpha")
    bad = ProcessSpec(
        "broken",
        [sys.executable, "-c", "print('config is wrong', flush=True); raise SystemExit(3)"],
        f"http://127.0.0.1:{free_port()}/ready",
        "broken.log",
    )
    settings = make_settings(tmp_path)
    fleet = Fleet(settings, [good, bad], out=lambda _: None)
    with pytest.raises(FleetError) as info:
        await fleet.start()
    message = str(info.value)
    assert "broken exited with code 3" in message
    assert str(settings.log_dir / "broken.log") in message
    assert "config is wrong" in message  # the log's tail
    pid = fleet.pid("alpha")
    assert pid is not None and not alive(pid)
    assert not (settings.data_dir / "fleet.json").exists()


async def test_child_never_ready_times_out(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.fleet.ready_timeout_s = 0.5
    silent = ProcessSpec(
        "silent",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        f"http://127.0.0.1:{free_port()}/ready",
        "silent.log",
    )
    fleet = Fleet(settings, [silent], out=lambda _: None)
    with pytest.raises(FleetError, match=r"silent was not ready .* after 0.5s"):
        await fleet.start()
    pid = fleet.pid("silent")
    assert pid is not None and not alive(pid)


def test_admin_key_generated_0600_and_reused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = Fleet(settings, [http_spec("alpha")], out=lambda _: None)
    path = settings.data_dir / "admin_api_key"
    assert first.admin_key.startswith("rb_") and len(first.admin_key) > 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings.log_dir.is_dir()
    second = Fleet(settings, [http_spec("alpha")], out=lambda _: None)
    assert second.admin_key == first.admin_key
    assert first.env["REFACTORBOT_INTERNAL_TOKEN"] != second.env["REFACTORBOT_INTERNAL_TOKEN"]
    assert first.env["REFACTORBOT_DATA_DIR"] == str(settings.data_dir)
    assert first.env["PYTHONUNBUFFERED"] == "1"


def test_configured_secrets_are_used(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, internal_token="tok", master_core={"admin_api_key": "rb_given"}
    )
    fleet = Fleet(settings, [http_spec("alpha")], out=lambda _: None)
    assert fleet.admin_key == "rb_given"
    assert fleet.env["REFACTORBOT_INTERNAL_TOKEN"] == "tok"
    assert not (settings.data_dir / "admin_api_key").exists()


def test_default_specs_simulator_only_without_openrouter_key(tmp_path: Path) -> None:
    from refactorbot.fleet import default_specs
    from services.kit.manifest import SERVICE_NAMES

    offline = default_specs(make_settings(tmp_path))
    assert [s.name for s in offline] == ["openrouter_simulator", *SERVICE_NAMES, "dashboard"]
    assert offline[0].ready_url == "http://127.0.0.1:8199/health"
    assert offline[-2].argv[-3:] == ["refactorbot", "serve", "master_core"]
    assert offline[-1].ready_url == "http://127.0.0.1:8501/_stcore/health"
    online = default_specs(
        make_settings(tmp_path, openrouter={"api_key": "sk-x"}, dashboard={"enabled": False})
    )
    assert [s.name for s in online] == list(SERVICE_NAMES)


RUNNER = textwrap.dedent("""
    import asyncio, sys
    from refactorbot.fleet import ProcessSpec, run_fleet
    from services.kit.config import load_settings
    settings = load_settings(data_dir=sys.argv[1], log_dir=sys.argv[2])
    specs = [ProcessSpec(f"svc{i}", [sys.executable, "-m", "http.server", port, "--bind",
                                     "127.0.0.1"], f"http://127.0.0.1:{port}/", f"svc{i}.log")
             for i, port in enumerate(sys.argv[3:])]
    asyncio.run(run_fleet(settings, specs=specs))
""")


def test_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    data, logs = tmp_path / "data", tmp_path / "logs"
    ports = [str(free_port()), str(free_port())]
    proc = subprocess.Popen(
        [sys.executable, str(script), str(data), str(logs), *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        out = []
        for line in proc.stdout:
            out.append(line)
            if "Ctrl-C stops the fleet" in line:
                break
        banner = "".join(out)
        assert "svc0" in banner and "Authorization: Bearer rb_" in banner
        state = json.loads((data / "fleet.json").read_text())
        pids = [s["pid"] for s in state["services"].values()]
        assert state["pid"] == proc.pid and all(alive(p) for p in pids)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in rest
    assert "Traceback" not in err
    assert not any(alive(p) for p in pids)
    assert not (data / "fleet.json").exists()


def _rotated(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(path.name + "*"))


async def test_a_real_service_rotates_its_log_within_the_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("REFACTORBOT_SESSION__PORT", str(port))
    settings = make_settings(
        tmp_path,
        internal_token="tok",
        logging={"max_bytes": 2048, "backup_count": 2},
        session={"port": port},
    )
    spec = ProcessSpec(
        "session",
        [sys.executable, "-m", "refactorbot", "serve", "session"],
        f"http://127.0.0.1:{port}/ready",
        "session.log",
    )
    settings.fleet.ready_timeout_s = 30
    fleet = Fleet(settings, [spec], out=lambda _: None)
    await fleet.start()
    try:
        for i in range(60):  # each request logs a ~230 byte line: several rollovers
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/sessions/none-{i}",
                headers={"X-Internal-Token": "tok", "X-Request-ID": f"rotation-{i}"},
            )
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=5).close()
        log = settings.log_dir / "session.log"
        await eventually(lambda: "rotation-59" in log.read_text())
        assert _rotated(log) == ["session.log", "session.log.1", "session.log.2"]
        files = [settings.log_dir / n for n in _rotated(log)]
        assert all(f.stat().st_size <= 2048 for f in files)
        lines = [line for f in files for line in f.read_text().splitlines()]
        events = [json.loads(line) for line in lines if not line.startswith(LOG_MARK)]
        assert all(e["service"] == "session" for e in events)
        assert fleet.pid("session") is not None and fleet.restarts("session") == 0
    finally:
        await fleet.stop()


CRASHER = textwrap.dedent("""
    import structlog
    from services.kit.config import load_settings
    from services.kit.logging import configure_logging
    configure_logging("crasher", "INFO", load_settings().logging)
    for i in range(100):
        structlog.get_logger().info("filling", n=i, padding="p" * 100)
    raise RuntimeError("the start-up failed after the log rotated")
""")


async def test_crash_traceback_after_a_rotation_is_in_the_start_failure(tmp_path: Path) -> None:
    script = tmp_path / "crasher.py"
    script.write_text(CRASHER)
    settings = make_settings(tmp_path, logging={"max_bytes": 2048, "backup_count": 3})
    spec = ProcessSpec(
        "crasher",
        [sys.executable, str(script)],
        f"http://127.0.0.1:{free_port()}/ready",
        "crasher.log",
    )
    fleet = Fleet(settings, [spec], out=lambda _: None)
    with pytest.raises(FleetError) as info:
        await fleet.start()
    message = str(info.value)
    assert "crasher exited with code 1" in message
    assert "RuntimeError: the start-up failed after the log rotated" in message
    assert _rotated(settings.log_dir / "crasher.log") == [
        "crasher.log",
        "crasher.log.1",
        "crasher.log.2",
        "crasher.log.3",
    ]


def test_two_processes_never_share_a_log_file(tmp_path: Path) -> None:
    one, two = http_spec("alpha"), http_spec("beta")
    two.log_name = one.log_name
    with pytest.raises(ValueError, match="same log file"):
        Fleet(make_settings(tmp_path), [one, two], out=lambda _: None)
