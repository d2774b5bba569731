"""``refactorbot`` command line: parsing, and talking to a (fake) master_core."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from refactorbot import cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFACTORBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REFACTORBOT_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("REFACTORBOT_API_KEY", raising=False)
    monkeypatch.delenv("REFACTORBOT_MASTER_CORE__ADMIN_API_KEY", raising=False)


def test_parses_commands() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["serve", "session"])
    assert args.fn is cli.cmd_serve and args.name == "session"
    assert parser.parse_args(["serve", "simulator"]).name == "simulator"
    args = parser.parse_args(["chat", "hi there", "--session", "s1"])
    assert (args.fn, args.message, args.session) == (cli.cmd_chat, "hi there", "s1")
    args = parser.parse_args(["keys", "create", "--name", "ci", "--admin"])
    assert (args.fn, args.name, args.admin) == (cli.cmd_keys_create, "ci", True)
    assert parser.parse_args(["status", "--api-key", "k"]).api_key == "k"
    assert parser.parse_args(["up"]).fn is cli.cmd_up


@pytest.mark.parametrize("argv", [[], ["serve", "nope"], ["keys", "create"], ["chat"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2


def test_status_when_nothing_listens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("REFACTORBOT_MASTER_CORE__URL", f"http://127.0.0.1:{port}")
    with pytest.raises(SystemExit) as info:
        cli.main(["status", "--api-key", "rb_x"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert f"cannot reach master_core at http://127.0.0.1:{port}" in err
    assert "is the fleet running? start it with `make run`" in err
    assert "Traceback" not in err


def test_bad_config_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REFACTORBOT_LOG_LEVEL", "LOUD")
    with pytest.raises(SystemExit) as info:
        cli.main(["up"])
    assert info.value.code == 2
    assert "log_level" in capsys.readouterr().err


class FakeMaster(BaseHTTPRequestHandler):
    routes: dict[tuple[str, str], tuple[int, Any]] = {}
    seen: list[tuple[str, str, str | None, Any]] = []

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.seen.append((method, self.path, self.headers.get("Authorization"), body))
        code, payload = self.routes[(method, self.path)]
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def master(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeMaster]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeMaster)
    monkeypatch.setenv(
        "REFACTORBOT_MASTER_CORE__URL", f"http://127.0.0.1:{server.server_address[1]}"
    )
    FakeMaster.routes, FakeMaster.seen = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FakeMaster
    server.shutdown()
    server.server_close()


def test_status_prints_a_table(
    master: type[FakeMaster], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "admin_api_key").write_text("rb_fromfile\n")
    master.routes[("GET", "/v1/fleet/status")] = (
        200,
        {
            "ok": True,
            "services": {
                "session": {
                    "ok": True,
                    "url": "http://127.0.0.1:8105",
                    "error": None,
                    "status": {
                        "name": "session",
                        "version": "1.2.0",
                        "healthy": True,
                        "uptime_s": 3725.0,
                    },
                },
            },
        },
    )
    cli.main(["status"])
    out = capsys.readouterr().out
    assert out.split("\n")[0].split() == ["service", "ok", "version", "uptime", "url"]
    assert out.split("\n")[1].split() == [
        "session",
        "yes",
        "1.2.0",
        "1h02m",
        "http://127.0.0.1:8105",
    ]
    assert master.seen[0][2] == "Bearer rb_fromfile"


def test_chat_prints_reply_and_session_hint(
    master: type[FakeMaster], capsys: pytest.CaptureFixture[str]
) -> None:
    master.routes[("POST", "/v1/chat")] = (
        200,
        {
            "session_id": "s_42",
            "reply": "Hello back!",
            "model": "openai/gpt-4o-mini",
            "turn_id": "t1",
            "usage": {
                "prompt_tokens": 5,
                "completion_tokens": 3,
                "total_tokens": 8,
                "cost_usd": 0.00001,
            },
        },
    )
    cli.main(["chat", "Hello!", "--api-key", "rb_k"])
    captured = capsys.readouterr()
    assert captured.out == "Hello back!\n"
    assert "s_42" in captured.err and "8 tokens" in captured.err
    assert "--session s_42" in captured.err
    assert master.seen[0][2:] == ("Bearer rb_k", {"message": "Hello!"})
    cli.main(["chat", "again", "--api-key", "rb_k", "--session", "s_42"])
    assert master.seen[1][3] == {"message": "again", "session_id": "s_42"}


def test_chat_error_envelope(master: type[FakeMaster], capsys: pytest.CaptureFixture[str]) -> None:
    master.routes[("POST", "/v1/chat")] = (
        401,
        {"error": {"code": "unauthorized", "message": "invalid API key", "request_id": "r1"}},
    )
    with pytest.raises(SystemExit) as info:
        cli.main(["chat", "hi", "--api-key", "rb_wrong"])
    assert info.value.code == 1
    assert capsys.readouterr().err.strip() == "error 401: invalid API key"


def test_python_dash_m_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "refactorbot", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0
    assert "serve" in result.stdout and "status" in result.stdout


def _made(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    cli.main(argv)
    return capsys.readouterr().out.strip()


def test_keys_create_list_rotate_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    from master_core.keys import find_key, open_master_db
    from services.kit.config import load_settings

    admin = _made(capsys, ["keys", "create", "--name", "ops", "--admin"])
    bot = _made(capsys, ["keys", "create", "--name", "bot", "--expires-in-days", "7"])
    listing = _made(capsys, ["keys", "list"]).splitlines()
    assert listing[0].split()[:4] == ["id", "name", "admin", "state"]
    rows = {line.split()[1]: line.split() for line in listing[1:]}
    assert rows["bot"][2:4] == ["no", "active"] and rows["ops"][2:4] == ["yes", "active"]
    assert admin not in "\n".join(listing) and bot not in "\n".join(listing)
    bot_id, ops_id = rows["bot"][0], rows["ops"][0]

    new = _made(capsys, ["keys", "rotate", bot_id])
    assert new.startswith("rb_") and new != bot
    db = open_master_db(load_settings())
    try:
        with db.session() as s:
            assert find_key(session=s, raw=bot) is None
            assert find_key(session=s, raw=new) is not None
    finally:
        db.dispose()
    cli.main(["keys", "revoke", bot_id])
    assert "revoked" in capsys.readouterr().err
    assert _made(capsys, ["keys", "list"]).count("revoked") == 1

    for argv, message in [
        (["keys", "revoke", ops_id], "error 409: key"),  # the last live admin key
        (["keys", "revoke", "0123456789abcdef"], "error 404: no API key"),
        (["keys", "rotate", bot_id], "error 409: key"),  # revoked
        (["keys", "create", "--name", "a\tb"], "printable"),
    ]:
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 1, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)


def test_keys_parsing() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["keys", "list"]).fn is cli.cmd_keys_list
    assert parser.parse_args(["keys", "revoke", "abc"]).id == "abc"
    assert parser.parse_args(["keys", "rotate", "abc"]).fn is cli.cmd_keys_rotate
    args = parser.parse_args(["keys", "create", "--name", "n", "--expires-in-days", "30"])
    assert args.expires_in_days == 30
    for bad in (["keys", "create", "--name", "n", "--expires-in-days", "0"], ["keys", "revoke"]):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(bad)
        assert info.value.code == 2
