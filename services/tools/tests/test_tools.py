"""The tools slice through HTTP: registry, each built-in, validation, limits, the log."""

from __future__ import annotations

import json

import httpx
import pytest

from services.tools.tests.conftest import ToolsEnv
from services.tools.web import Fetched


def ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()["result"]


def test_registry_and_openai_definitions(tools_env: ToolsEnv) -> None:
    tools = tools_env.client.get("/v1/tools").json()
    names = {t["name"] for t in tools["data"]}
    assert names == {
        "read_file", "write_file", "edit_file", "list_dir", "search_files", "exec", "web_fetch",
        "remember", "recall",
    }  # fmt: skip
    perms = {t["name"]: t["permission"] for t in tools["data"]}
    assert perms["exec"] == "execute" and perms["web_fetch"] == "network"
    assert perms["read_file"] == "read" and perms["edit_file"] == "write"
    assert perms["remember"] == perms["recall"] == "memory"
    assert {t["function"]["name"] for t in tools["tools"]} == names  # all enabled
    openai = tools_env.client.get("/v1/tools/openai").json()["tools"]
    read = next(t for t in openai if t["function"]["name"] == "read_file")
    assert read["type"] == "function"
    assert read["function"]["parameters"]["required"] == ["path"]
    status = tools_env.client.get("/status").json()["details"]
    assert status["exec_sandbox"] in ("bubblewrap", "none") and status["exec_available"]
    assert "wc" in status["exec_programs"]


def test_file_tools_round_trip(tools_env: ToolsEnv) -> None:
    w = ok(tools_env.call("write_file", path="notes/todo.txt", content="one\ntwo\nthree\n"))
    assert w == {"path": "notes/todo.txt", "bytes_written": 14, "created": True}
    assert (tools_env.workspace / "notes/todo.txt").read_text() == "one\ntwo\nthree\n"
    r = ok(tools_env.call("read_file", path="notes/todo.txt", offset=2, limit=1))
    assert r["content"] == "two\n" and r["lines_returned"] == 1 and not r["truncated"]
    e = ok(tools_env.call("edit_file", path="notes/todo.txt", old_text="two", new_text="2"))
    assert e["replacements"] == 1
    assert (tools_env.workspace / "notes/todo.txt").read_text() == "one\n2\nthree\n"
    listing = ok(tools_env.call("list_dir", path="notes"))
    assert listing["entries"] == [{"name": "todo.txt", "type": "file", "size": 12}]
    found = ok(tools_env.call("search_files", glob="*.txt", text="THREE"))
    assert found["matches"] == [{"path": "notes/todo.txt", "line": 3, "text": "three"}]
    by_glob = ok(tools_env.call("search_files", glob="notes/*.txt"))
    assert by_glob["matches"] == [{"path": "notes/todo.txt"}]
    # absolute paths are fine when they name something inside the workspace
    inside = str(tools_env.workspace / "notes" / "todo.txt")
    assert ok(tools_env.call("read_file", path=inside))["content"].startswith("one")


def test_edit_refuses_ambiguity_and_missing_text(tools_env: ToolsEnv) -> None:
    ok(tools_env.call("write_file", path="a.py", content="x = 1\nx = 1\n"))
    twice = tools_env.call("edit_file", path="a.py", old_text="x = 1", new_text="x = 2")
    assert twice.status_code == 409 and "occurs 2 times" in twice.json()["error"]["message"]
    assert (tools_env.workspace / "a.py").read_text() == "x = 1\nx = 1\n"  # untouched
    both = ok(
        tools_env.call("edit_file", path="a.py", old_text="x = 1", new_text="y", replace_all=True)
    )
    assert both["replacements"] == 2
    missing = tools_env.call("edit_file", path="a.py", old_text="zzz", new_text="y")
    assert missing.status_code == 404
    assert tools_env.call("read_file", path="nope.txt").status_code == 404


def test_limits_are_enforced_and_marked(tools_env: ToolsEnv) -> None:
    big = "x" * 10_000 + "\n"
    ok(tools_env.call("write_file", path="big.txt", content=big))
    r = ok(tools_env.call("read_file", path="big.txt"))
    assert r["truncated"] and "output truncated" in r["content"]
    assert len(r["content"].encode()) < 4096 + 100
    huge = tools_env.call("write_file", path="huge.txt", content="y" * (1 << 20 + 1))
    assert huge.status_code == 413


@pytest.mark.parametrize(
    ("tool", "arguments", "field", "rule"),
    [
        ("read_file", {"path": 5}, "arguments.path", "type"),
        ("read_file", {}, "arguments", "required"),
        ("read_file", {"path": "a", "offset": 0}, "arguments.offset", "minimum"),
        ("read_file", {"path": "a", "colour": "red"}, "arguments", "additionalProperties"),
        ("exec", {"argv": []}, "arguments.argv", "minItems"),
        ("exec", {"argv": ["echo", 3]}, "arguments.argv[1]", "type"),
        ("write_file", {"path": "a"}, "arguments", "required"),
    ],
)
def test_arguments_are_validated_against_the_schema(
    tools_env: ToolsEnv, tool: str, arguments: dict, field: str, rule: str
) -> None:
    r = tools_env.client.post(f"/v1/tools/{tool}/call", json={"arguments": arguments})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_arguments"
    assert error["message"].startswith(field + ":") and f"(rule: {rule})" in error["message"]
    log = tools_env.client.get("/v1/executions", params={"tool": tool}).json()["data"][0]
    assert log["outcome"] == "invalid_arguments"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost.test/",  # unknown to the resolver: refused, no connection
        "http://internal.test/admin",
        "http://mixed.test/",
        "http://metadata.test/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://v6local.test/",
        "http://mapped.test/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://[fd00::1]/",
        "http://100.64.0.1/",
        "file:///etc/passwd",
        "ftp://example.test/x",
        "http://user:pw@example.test/",
    ],
)
def test_web_fetch_refuses_private_addresses_without_connecting(
    tools_env: ToolsEnv, url: str
) -> None:
    r = tools_env.call("web_fetch", url=url)
    assert 400 <= r.status_code < 500, r.text
    assert tools_env.transport.connections == []


def test_web_fetch_public_page_and_checked_redirects(tools_env: ToolsEnv) -> None:
    t = tools_env.transport
    t.pages["http://example.test/"] = Fetched(
        200, {"Content-Type": "text/html; charset=utf-8"}, b"<h1>hello</h1>", False
    )
    page = ok(tools_env.call("web_fetch", url="http://example.test/"))
    assert page["content"] == "<h1>hello</h1>" and page["status"] == 200
    assert t.connections == [("http://example.test/", "93.184.216.34")]  # pinned address
    t.pages["http://example.test/go"] = Fetched(
        302, {"Location": "http://internal.test/"}, b"", False
    )
    hop = tools_env.call("web_fetch", url="http://example.test/go")
    assert hop.status_code == 403 and "10.0.0.5" in hop.json()["error"]["message"]
    assert ("http://internal.test/", "10.0.0.5") not in t.connections


def test_execution_log_redacts_secrets_and_filters(tools_env: ToolsEnv) -> None:
    ok(
        tools_env.call(
            "write_file", path="cfg.txt", content="key sk-or-v1-abcdef1234567890 and Bearer xyz"
        )
    )
    tools_env.call("read_file", path="nope")
    log = tools_env.client.get("/v1/executions").json()
    assert log["count"] == 2
    write = next(e for e in log["data"] if e["tool"] == "write_file")
    assert "sk-or-v1" not in write["arguments"] and "[redacted]" in write["arguments"]
    assert write["outcome"] == "ok" and write["bytes_out"] > 0
    failed = tools_env.client.get("/v1/executions", params={"outcome": "not_found"}).json()
    assert failed["count"] == 1 and failed["data"][0]["tool"] == "read_file"
    metrics = httpx.get(str(tools_env.client.base_url) + "/metrics").text
    assert 'tool_calls_total{outcome="ok",tool="write_file"} 1.0' in metrics


def test_disabled_tools_are_refused_and_not_offered(tools_env: ToolsEnv) -> None:
    r = tools_env.client.patch("/v1/tools/exec", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert tools_env.call("exec", argv=["echo", "x"]).status_code == 403
    offered = {
        t["function"]["name"] for t in tools_env.client.get("/v1/tools/openai").json()["tools"]
    }
    assert "exec" not in offered
    assert tools_env.client.patch("/v1/tools/nope", json={"enabled": True}).status_code == 404
    assert tools_env.client.patch("/v1/tools/exec", json={"timeout_s": -1}).status_code == 422
    bad_ws = tools_env.client.post(
        "/v1/tools/read_file/call", json={"arguments": {"path": "a"}, "workspace": "other"}
    )
    assert bad_ws.status_code == 404
    json.dumps(bad_ws.json())
