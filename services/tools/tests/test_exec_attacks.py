"""A hostile-exec corpus, run in both modes (the guard and bubblewrap): 0 escapes, and
every refusal a 4xx naming the reason.

An escape is: a canary from outside the workspace (a file's content, an environment
variable of the service) in an answer, a line of the host's /etc/passwd in an answer, or a
file created outside the workspace. The classes: options that run other programs or open
files named in files, values glued to options, clusters and abbreviations, symbolic links
(given and met by recursion), absolute and ``..`` paths, devices and ``/proc``, the
environment, ``--`` handling, bad numbers, NUL bytes and very long arguments.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from services.tools.tests.conftest import (
    NO_SANDBOX,
    SECRET,
    ToolsEnv,
    bubblewrap_usable,
    start_tools_env,
)

ENV_CANARY = "ENV-CANARY-5d1e-never-leaves"
PASSWD_LINE = "root:x:0:0"
TMP_MARK = "/tmp/rb-exec-escape"
OUT = "{outside}"  # replaced by the canary folder beside the workspace
WS = "{workspace}"  # replaced by the workspace's absolute path

CORPUS: list[list[str]] = [
    # options that run another program
    ["sort", "--compress-program=sh", "data.txt"],
    ["sort", "--compress-prog=sh", "data.txt"],
    ["sort", "--compress=sh", "-S", "1", "data.txt"],
    ["sort", "--compress-program", "sh", "data.txt"],
    ["tail", "--pid=1", "-f", "data.txt"],
    ["sort", "--random-source=/etc/passwd", "-R", "data.txt"],
    ["sort", "-T", "/tmp", "data.txt"],
    # options that open files named inside a file
    ["wc", "--files0-from=names0"],
    ["wc", "--files0-from", "names0"],
    ["sort", "--files0-from=names0"],
    ["wc", "--files0-from=-"],
    ["grep", "-f", "/etc/passwd", "data.txt"],
    ["grep", "--file=/etc/passwd", "data.txt"],
    ["grep", "--file", f"{OUT}/secret.txt", "data.txt"],
    # values glued to short options, clusters
    ["sort", f"-o{TMP_MARK}", "data.txt"],
    ["sort", "-o", TMP_MARK, "data.txt"],
    ["sort", f"--output={TMP_MARK}", "data.txt"],
    ["sort", "-ro", TMP_MARK, "data.txt"],
    ["grep", "-f/etc/passwd", "data.txt"],
    ["grep", "-rf/etc/passwd", "."],
    ["grep", "-nf", "../secret.txt", "data.txt"],
    ["cat", "-n/etc/passwd"],
    ["head", "-c/etc/passwd"],
    ["head", "-n", "1; cat /etc/passwd", "data.txt"],
    ["grep", "-m", "$(cat /etc/passwd)", "x", "data.txt"],
    ["ls", "-w", "../x"],
    ["head", "-99999999999999999999999", "data.txt"],
    # options after operands are still options (GNU permutes them)
    ["cat", "data.txt", "-n", "/etc/passwd"],
    ["grep", "x", "data.txt", f"--file={OUT}/secret.txt"],
    # -- handling
    ["cat", "--", "/etc/passwd"],
    ["grep", "--", "-e", "/etc/passwd"],
    ["grep", "-e", "x", "--", "/etc/passwd"],
    ["sort", "-k1", "--", "/etc/shadow"],
    ["cat", "--", "-/../../etc/passwd"],
    # symbolic links: given, inside a path, met by recursion, asked to be followed
    ["cat", "link"],
    ["cat", "dlink/secret.txt"],
    ["head", "dlink/secret.txt"],
    ["wc", "link"],
    ["grep", "CANARY", "link"],
    ["grep", "CANARY", "dlink"],
    ["grep", "-r", "CANARY", "."],
    ["grep", "-rl", "CANARY"],
    ["grep", "-R", "CANARY", "."],
    ["grep", "--dereference-recursive", "CANARY", "."],
    ["ls", "-L", "dlink"],
    ["ls", "--dereference", "dlink"],
    ["ls", "-lR", "dlink/"],
    ["ls", "-H", "dlink"],
    ["cat", "nested/up/secret.txt"],
    # absolute paths and ..
    ["cat", "/etc/passwd"],
    ["cat", "../secret.txt"],
    ["cat", "../ws-evil/secret.txt"],
    ["cat", f"{OUT}/secret.txt"],
    ["cat", f"{WS}-evil/secret.txt"],
    ["cat", f"{WS}/../secret.txt"],
    ["cat", "./../secret.txt"],
    ["cat", "a/../../secret.txt"],
    ["cat", "~/secret.txt"],
    ["cat", "~root/.bashrc"],
    ["cat", "$HOME/../secret.txt"],
    ["cat", "\\etc\\passwd"],
    ["cat", "/workspace/../etc/passwd"],
    ["ls", "/"],
    ["ls", "-d", "/root"],
    ["ls", "--hide=x", "/etc"],
    ["grep", "--include=*", "-r", "root", "/etc"],
    ["grep", "-d", "recurse", "root", "/etc"],
    ["grep", "-r", "root", "/etc/passwd"],
    # devices, fifos and /proc
    ["cat", "/dev/zero"],
    ["cat", "/dev/stdin"],
    ["head", "-c", "4096", "/proc/self/environ"],
    ["cat", "/proc/1/environ"],
    ["cat", "/proc/self/root/etc/passwd"],
    ["cat", "/proc/self/cwd/../secret.txt"],
    ["cat", "fifo"],
    ["tail", "-f", "data.txt"],
    ["tail", "-F", "data.txt"],
    ["tail", "--follow=name", "data.txt"],
    # the environment and programs
    ["env", "X=1", "cat", "/etc/passwd"],
    ["LD_PRELOAD=/tmp/x.so", "cat", "data.txt"],
    ["/bin/sh", "-c", "id"],
    ["../../bin/sh"],
    ["sh", "-c", "cat /etc/passwd ../secret.txt; env; touch " + TMP_MARK],
    ["echo", "$RB_ENV_CANARY", "${RB_ENV_CANARY}"],
    ["cat", "data.txt\x00/etc/passwd"],
    ["cat", *(["data.txt"] * 200), "x" * 9_000, "y" * 9_000, "z" * 9_000],
]


def _expand(argv: list[str], env: ToolsEnv) -> list[str]:
    return [a.replace(OUT, str(env.outside)).replace(WS, str(env.workspace)) for a in argv]


def _prepare(env: ToolsEnv) -> None:
    ws = env.workspace
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "data.txt").write_text("b\na\nCANARY-not-secret\n")
    (ws / "names0").write_bytes(f"{env.outside}/secret.txt\x00../secret.txt\x00".encode())
    os.symlink(env.outside / "secret.txt", ws / "link")
    os.symlink(env.outside, ws / "dlink")
    (ws / "nested").mkdir()
    os.symlink(env.outside, ws / "nested" / "up")
    os.mkfifo(ws / "fifo")


@pytest.fixture(params=["guard", "bubblewrap"])
def hostile_env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RB_ENV_CANARY", ENV_CANARY)
    if request.param == "bubblewrap":
        if not bubblewrap_usable():
            pytest.skip(NO_SANDBOX)
        settings = {"sandbox": "bubblewrap"}
    else:
        settings = {"sandbox": "none", "exec_unsandboxed": True}
    with start_tools_env(tmp_path, default_timeout_s=2, **settings) as env:
        _prepare(env)
        yield env


def test_hostile_exec_corpus(hostile_env: ToolsEnv, tmp_path: Path) -> None:
    env = hostile_env
    assert len(CORPUS) >= 50
    before = sorted(p for p in tmp_path.rglob("*") if env.workspace not in (p, *p.parents))
    statuses: Counter[int] = Counter()
    escapes: list[str] = []
    for raw in CORPUS:
        argv = _expand(raw, env)
        r = env.call("exec", argv=argv, timeout_s=1)
        statuses[r.status_code] += 1
        shown = f"{raw[:4]!r} -> {r.status_code} {r.text[:300]}"
        assert r.status_code < 500, shown
        for canary in (SECRET, ENV_CANARY, PASSWD_LINE):
            if canary in r.text:
                escapes.append(f"{canary} in {shown}")
        if r.status_code >= 400:
            error = r.json()["error"]
            assert error["code"] and len(error["message"]) > 10, shown
        assert not Path(TMP_MARK).exists(), shown
    after = sorted(p for p in tmp_path.rglob("*") if env.workspace not in (p, *p.parents))
    assert after == before, "a file appeared or vanished outside the workspace"
    assert escapes == []
    mode = env.client.get("/status").json()["details"]["exec_sandbox"]
    print(f"\nexec corpus, {mode}: {len(CORPUS)} cases, statuses {dict(sorted(statuses.items()))}")
    if mode == "none":
        # without a sandbox nearly everything is refused before anything runs
        assert statuses[200] <= 6, statuses
