"""exec in both modes: the guard (no sandbox, ``exec_unsandboxed``) and bubblewrap; and
exec switched off when there is no sandbox and nobody asked for it unsandboxed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from services.tools.tests.conftest import (
    NO_SANDBOX,
    SECRET,
    ToolsEnv,
    bubblewrap_usable,
    start_tools_env,
)


def ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()["result"]


def mode(env: ToolsEnv) -> str:
    return env.client.get("/status").json()["details"]["exec_sandbox"]


def test_exec_runs_allowed_programs_only(exec_env: ToolsEnv) -> None:
    ok(exec_env.call("write_file", path="words.txt", content="a b c\nd e\n"))
    r = ok(exec_env.call("exec", argv=["wc", "-w", "words.txt"]))
    assert r["exit_code"] == 0 and r["stdout"].split()[0] == "5" and not r["timed_out"]
    refused = exec_env.call("exec", argv=["rm", "-rf", "."])
    assert refused.status_code == 403 and "not allowed" in refused.json()["error"]["message"]
    by_path = exec_env.call("exec", argv=["/bin/echo", "hi"])
    assert by_path.status_code == 403
    # no shell: metacharacters are plain arguments
    echoed = ok(exec_env.call("exec", argv=["echo", "$(id)", ";", "ls"]))
    assert echoed["stdout"] == "$(id) ; ls\n"
    # paths inside the workspace work, absolute ones too, and options with values
    ok(exec_env.call("write_file", path="src/a.py", content="import os\nx = 1\nimport re\n"))
    inside = str(exec_env.workspace / "src" / "a.py")
    found = ok(exec_env.call("exec", argv=["grep", "-n", "-e", "import", inside]))
    assert found["exit_code"] == 0 and found["stdout"].count("import") == 2
    sorted_ = ok(exec_env.call("exec", argv=["sort", "-r", "src/a.py"]))
    assert sorted_["stdout"].splitlines()[0] == "x = 1"
    head = ok(exec_env.call("exec", argv=["head", "-n1", "src/a.py"]))
    assert head["stdout"] == "import os\n"
    listing = ok(exec_env.call("exec", argv=["ls", "-R", "."]))
    assert "a.py" in listing["stdout"]
    recursive = ok(exec_env.call("exec", argv=["grep", "-rl", "x = 1", "."]))
    assert recursive["stdout"].strip() == "./src/a.py"


def test_exec_cannot_read_outside_the_workspace(exec_env: ToolsEnv) -> None:
    r = exec_env.call("exec", argv=["cat", str(exec_env.outside / "secret.txt")])
    assert SECRET not in r.text
    if mode(exec_env) == "bubblewrap":
        assert r.status_code == 200 and r.json()["result"]["exit_code"] != 0
    else:
        assert r.status_code == 400
        assert "outside the workspace" in r.json()["error"]["message"]


def test_exec_output_is_capped(exec_env: ToolsEnv) -> None:
    ok(exec_env.call("write_file", path="big.txt", content="z" * 100_000))
    loud = ok(exec_env.call("exec", argv=["cat", "big.txt"]))
    assert loud["truncated"] and "output truncated" in loud["stdout"]
    assert len(loud["stdout"].encode()) < 4096 + 100


def test_exec_refuses_oversized_argv(exec_env: ToolsEnv) -> None:
    r = exec_env.call("exec", argv=["echo", *(["x" * 9_000] * 10)])
    assert r.status_code == 413 and "exec_max_argv_bytes" in r.json()["error"]["message"]


@pytest.mark.integration
def test_exec_timeout_kills_the_process_group(tmp_path: Path) -> None:
    if not bubblewrap_usable():
        pytest.skip(NO_SANDBOX + ": the guard mode has no program that can run a child")
    with start_tools_env(tmp_path, sandbox="bubblewrap") as env:
        started = time.monotonic()
        r = ok(env.call("exec", argv=["sh", "-c", "sleep 30 & sleep 30"], timeout_s=0.5))
        assert r["timed_out"] and r["exit_code"] is None
        # the group was killed: nothing waited for the 30 s sleeps (a loose bound, not a figure)
        assert time.monotonic() - started < 20
        loud = ok(env.call("exec", argv=["head", "-c", "100000", "/dev/zero"]))
        assert loud["truncated"] and "output truncated" in loud["stdout"]


@pytest.mark.integration
def test_exec_sandbox_environment_network_and_processes(tmp_path: Path) -> None:
    if not bubblewrap_usable():
        pytest.skip(NO_SANDBOX)
    with start_tools_env(tmp_path, sandbox="bubblewrap") as env:
        r = ok(env.call("exec", argv=["sh", "-c", "env"]))
        names = {line.split("=", 1)[0] for line in r["stdout"].splitlines() if "=" in line}
        assert "REFACTORBOT_INTERNAL_TOKEN" not in names and "OPENROUTER_API_KEY" not in names
        assert names <= {"PATH", "HOME", "LANG", "LC_ALL", "PWD", "SHLVL", "_", "OLDPWD"}
        # a new PID namespace: the sandbox's own processes only, its shell near pid 1
        pids = ok(env.call("exec", argv=["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"]))
        own, count = (int(x) for x in pids["stdout"].split())
        assert own <= 3 and count <= 4, pids
        # no network: only a loopback interface, down
        net = ok(env.call("exec", argv=["cat", "/proc/net/dev"]))
        interfaces = [line.split(":")[0].strip() for line in net["stdout"].splitlines()[2:]]
        assert interfaces == ["lo"], net
        # read-only system, only the workspace writable
        ro = ok(env.call("exec", argv=["sh", "-c", "echo x > /usr/pwned"]))
        assert ro["exit_code"] != 0 and not Path("/usr/pwned").exists()
        rw = ok(env.call("exec", argv=["sh", "-c", "echo made > here.txt"]))
        assert rw["exit_code"] == 0 and (env.workspace / "here.txt").read_text() == "made\n"


@pytest.mark.integration
def test_guard_runs_as_an_unprivileged_user_with_limits(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the service is not root here, so exec cannot switch user")
    with start_tools_env(tmp_path, sandbox="none", exec_unsandboxed=True) as env:
        details = env.client.get("/status").json()["details"]
        assert details["exec_user"] == "nobody" and details["exec_sandbox"] == "none"
        ok(env.call("write_file", path="open.txt", content="readable\n"))
        ok(env.call("write_file", path="private.txt", content="root only\n"))
        os.chmod(env.workspace / "private.txt", 0o600)
        assert ok(env.call("exec", argv=["cat", "open.txt"]))["stdout"] == "readable\n"
        denied = ok(env.call("exec", argv=["cat", "private.txt"]))
        assert denied["exit_code"] != 0 and "Permission denied" in denied["stderr"]
        # the workspace's parents may be closed to that user: it starts inside it
        os.chmod(tmp_path, 0o700)
        inside = str(env.workspace / "open.txt")
        assert ok(env.call("exec", argv=["wc", "-l", inside]))["stdout"].split()[0] == "1"


@pytest.mark.integration
def test_guard_limits_reach_the_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The resource limits apply to what runs (checked with a program that prints them)."""
    from services.tools import exec_policy

    monkeypatch.setitem(
        exec_policy.POLICIES,
        "python3",
        exec_policy.ArgPolicy(flags=frozenset(), operands="text", parse_options=False),
    )
    code = (
        "import resource as r;"
        "print(*[r.getrlimit(getattr(r, n))[0] for n in "
        "('RLIMIT_CPU','RLIMIT_AS','RLIMIT_FSIZE','RLIMIT_NPROC','RLIMIT_NOFILE','RLIMIT_CORE')])"
    )
    limits = {
        "exec_cpu_s": 7, "exec_memory_mb": 300, "exec_file_mb": 3, "exec_processes": 20,
        "exec_open_files": 50,
    }  # fmt: skip
    with start_tools_env(
        tmp_path, sandbox="none", exec_unsandboxed=True, exec_allow=["python3"], **limits
    ) as env:
        r = ok(env.call("exec", argv=["python3", "-c", code]))
        assert r["stdout"].split() == ["7", str(300 << 20), str(3 << 20), "20", "50", "0"], r


@pytest.mark.integration
def test_exec_is_unavailable_without_a_sandbox_by_default(tmp_path: Path) -> None:
    with start_tools_env(tmp_path, sandbox="none") as env:
        details = env.client.get("/status").json()["details"]
        assert details["exec_sandbox"] == "none" and details["exec_available"] is False
        assert "exec_unsandboxed" in details["exec_unavailable_reason"]
        listed = {t["name"]: t for t in env.client.get("/v1/tools").json()["data"]}
        assert listed["exec"]["available"] is False and listed["exec"]["enabled"] is True
        assert "bubblewrap" in listed["exec"]["unavailable_reason"]
        assert listed["read_file"]["available"] is True
        offered = {
            t["function"]["name"] for t in env.client.get("/v1/tools/openai").json()["tools"]
        }
        assert "exec" not in offered and "read_file" in offered
        r = env.call("exec", argv=["echo", "hi"])
        assert r.status_code == 403 and r.json()["error"]["code"] == "tool_unavailable"
        assert "install bubblewrap" in r.json()["error"]["message"].lower()


@pytest.mark.integration
def test_guard_refuses_programs_without_a_policy(tmp_path: Path) -> None:
    with start_tools_env(tmp_path, sandbox="none", exec_unsandboxed=True) as env:
        programs = env.client.get("/status").json()["details"]["exec_programs"]
        assert "sh" not in programs and "sleep" not in programs and "cat" in programs
        r = env.call("exec", argv=["sh", "-c", "id"])
        assert r.status_code == 403 and "no argument policy" in r.json()["error"]["message"]


@pytest.mark.integration
def test_unsandboxed_exec_warns_at_every_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        with start_tools_env(tmp_path, sandbox="none", exec_unsandboxed=True):
            pass
    err = capsys.readouterr()
    assert (err.out + err.err).count("exec_unsandboxed") >= 2


@pytest.mark.integration
def test_a_flooding_program_times_out_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Output faster than it is read, past the time limit: the call still ends at the
    limit with the output capped (a reader left full would wait for EOF forever)."""
    from services.tools import exec_policy

    monkeypatch.setitem(
        exec_policy.POLICIES,
        "yes",
        exec_policy.ArgPolicy(flags=frozenset(), operands="text", parse_options=False),
    )
    with start_tools_env(
        tmp_path, sandbox="none", exec_unsandboxed=True, exec_allow=["yes"]
    ) as env:
        # a hang would surface as the service's own 504, which ok() refuses
        r = ok(env.call("exec", argv=["yes", "flood"], timeout_s=0.5))
        assert r["timed_out"] and r["truncated"] and r["stdout"].startswith("flood\n")
