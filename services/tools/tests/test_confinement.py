"""Path confinement, attacked: a corpus of traversal payloads (generated, plus Debian's
wfuzz traversal wordlist when installed) against every file tool, symlinks made on disk,
and a link swapped back and forth while calls run. The bar: 0 escapes, 0 server errors."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

import pytest

from services.tools.tests.conftest import SECRET, ToolsEnv

WFUZZ = Path("/usr/share/wfuzz/wordlist/Injections/Traversal.txt")


def generated(ws: Path, outside: Path) -> list[str]:
    ups = ["../" * n for n in range(1, 13)]
    ups += ["..", "./..", "a/../..", "a/b/../../..", "a/./../../", ".//..//", "...//../"]
    targets = ["etc/passwd", "ws-evil/secret.txt", "secret.txt", ""]
    payloads = [f"{u}/{t}".rstrip("/") for u, t in itertools.product(ups, targets)]
    payloads += [
        "/etc/passwd",
        "/etc",
        "//etc/passwd",
        "/",
        str(outside / "secret.txt"),  # the prefix sibling, absolute
        str(ws) + "-evil/secret.txt",
        str(ws) + "/../ws-evil/secret.txt",
        str(ws.parent / "secret.txt"),
        "../ws-evil/secret.txt",
        "~",
        "~/secret.txt",
        "~root/.bashrc",
        "..\\..\\etc\\passwd",
        "..\\ws-evil\\secret.txt",
        "a\\..\\..\\secret.txt",
        "notes.txt\x00.png",
        "\x00",
        "../\x00/etc/passwd",
        "x" * 5000,
        "a/" + "b" * 300 + "/c",
        "%2e%2e/%2e%2e/etc/passwd",
        "..%2f..%2fetc%2fpasswd",
        "..%252f..%252fetc%252fpasswd",
        "%c0%ae%c0%ae/etc/passwd",
        "....//....//etc/passwd",
        "..;/etc/passwd",
        "/proc/self/environ",
        "/dev/zero",
        "../../../../../../proc/self/cwd/secret.txt",
    ]
    return payloads


def corpus(ws: Path, outside: Path) -> list[str]:
    payloads = generated(ws, outside)
    if WFUZZ.exists():
        payloads += [
            line.rstrip("\n").replace("%00", "\x00")
            for line in WFUZZ.read_text(errors="replace").splitlines()
            if line.strip()
        ]
    return list(dict.fromkeys(payloads))


def attempts(path: str) -> list[tuple[str, dict]]:
    return [
        ("read_file", {"path": path}),
        ("write_file", {"path": path + "-written" if path else "x", "content": "pwned"}),
        ("edit_file", {"path": path, "old_text": "CANARY", "new_text": "pwned"}),
        ("list_dir", {"path": path}),
        ("search_files", {"path": path, "text": "CANARY"}),
    ]


def canaries_intact(tmp: Path) -> None:
    assert (tmp / "secret.txt").read_text() == SECRET
    assert (tmp / "ws-evil" / "secret.txt").read_text() == SECRET
    written = [p for p in tmp.rglob("*-written") if not p.is_relative_to(tmp / "ws")]
    assert written == []


def test_traversal_corpus(tools_env: ToolsEnv) -> None:
    ws, outside = tools_env.workspace, tools_env.outside
    (ws / "a" / "b").mkdir(parents=True)
    payloads = corpus(ws, outside)
    assert len(payloads) >= 100
    statuses: dict[int, int] = {}
    for path in payloads:
        for tool, args in attempts(path):
            r = tools_env.client.post(f"/v1/tools/{tool}/call", json={"arguments": args})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (tool, path, r.text)
            assert SECRET not in r.text, (tool, path)
            if r.status_code == 200 and tool in ("write_file",):
                # what was written must be inside the workspace
                dest = ws / r.json()["result"]["path"]
                assert dest.resolve().is_relative_to(ws)
    canaries_intact(ws.parent)
    print(f"\ntraversal corpus: {len(payloads)} payloads x 5 tools, statuses {statuses}")


@pytest.fixture
def links(tools_env: ToolsEnv) -> ToolsEnv:
    ws, outside = tools_env.workspace, tools_env.outside
    os.symlink(outside, ws / "evil_dir")  # a folder link out
    os.symlink(outside / "secret.txt", ws / "evil_file")  # a file link out
    os.symlink("/etc", ws / "etc_link")
    os.symlink(ws.parent / "nowhere.txt", ws / "dangling")  # would create a file outside
    (ws / "real").mkdir()
    (ws / "real" / "ok.txt").write_text("fine")
    os.symlink(ws / "real" / "ok.txt", ws / "inner_link")  # even inside links are refused
    return tools_env


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("read_file", {"path": "evil_file"}),
        ("read_file", {"path": "evil_dir/secret.txt"}),
        ("read_file", {"path": "etc_link/passwd"}),
        ("read_file", {"path": "inner_link"}),
        ("write_file", {"path": "evil_file", "content": "pwned"}),
        ("write_file", {"path": "evil_dir/new.txt", "content": "pwned"}),
        ("write_file", {"path": "dangling", "content": "pwned"}),
        ("write_file", {"path": "evil_dir/sub/new.txt", "content": "pwned"}),
        ("edit_file", {"path": "evil_file", "old_text": "CANARY", "new_text": "x"}),
        ("edit_file", {"path": "evil_dir/secret.txt", "old_text": "CANARY", "new_text": "x"}),
        ("list_dir", {"path": "evil_dir"}),
        ("list_dir", {"path": "etc_link"}),
        ("search_files", {"path": "evil_dir", "text": "CANARY"}),
    ],
)
def test_symlinks_out_are_refused(links: ToolsEnv, tool: str, args: dict) -> None:
    r = links.call(tool, **args)
    assert r.status_code == 400, r.text
    assert (
        "symbolic link" in r.json()["error"]["message"]
        or "not a folder" in r.json()["error"]["message"]
    )
    assert SECRET not in r.text
    canaries_intact(links.workspace.parent)
    assert not (links.workspace.parent / "nowhere.txt").exists()


def test_search_and_list_do_not_follow_links(links: ToolsEnv) -> None:
    found = links.call("search_files", text="CANARY").json()["result"]
    assert found["matches"] == []
    listing = links.call("list_dir").json()["result"]["entries"]
    kinds = {e["name"]: e["type"] for e in listing}
    assert kinds["evil_dir"] == "symlink" and kinds["evil_file"] == "symlink"


def test_link_swapped_during_calls_never_escapes(tools_env: ToolsEnv) -> None:
    """A folder flips between a real one and a link out while reads and writes run."""
    ws = tools_env.workspace
    flip = ws / "flip"
    real = ws / "flip_real"
    real.mkdir()
    (real / "secret.txt").write_text("inside")
    stop = threading.Event()

    def swapper() -> None:
        # flip is in turn a real folder (inside) and a link to the canary's folder
        while not stop.is_set():
            try:
                os.rename(real, flip)
                time.sleep(0.002)
                os.rename(flip, real)
                os.symlink(tools_env.outside, flip)
                time.sleep(0.002)
                os.unlink(flip)
            except OSError:
                pass

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    outcomes: dict[int, int] = {}
    try:
        for i in range(300):
            r = tools_env.call("read_file", path="flip/secret.txt")
            assert r.status_code < 500 and SECRET not in r.text
            outcomes[r.status_code] = outcomes.get(r.status_code, 0) + 1
            w = tools_env.call(
                "write_file", path=f"flip/out{i}.txt", content="pwned", create_dirs=False
            )
            assert w.status_code < 500
    finally:
        stop.set()
        thread.join()
    assert list(tools_env.outside.iterdir()) == [tools_env.outside / "secret.txt"]
    canaries_intact(ws.parent)
    # the race was really run: some reads got through, others met the link
    assert outcomes.get(200) and outcomes.get(400), outcomes
